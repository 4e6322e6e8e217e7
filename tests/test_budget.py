"""Query cost for clients and a leaky bucket of cost points per token and per anonymous
address (server/budget.py): `extensions.cost` on every answer, the same on both read
paths; over budget, HTTP 429 with Retry-After and THROTTLED before the query runs, while
other clients are served; the bucket refills with time."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest
from graphql import parse
from sqlalchemy import text

from server.app import create_app
from server.limits import query_cost
from server.settings import Settings
from tests.factories import make_user

BOTH_PATHS = True
PAGE = "{ customers(first: 20) { nodes { id displayName } } }"
COST = query_cost(parse(PAGE), None, {})


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    path = getattr(request, "param", "field_by_field")
    return Settings(
        database_url="unused",
        debug=False,
        compiled_reads=path == "compiled",
        cost_budget=20_000,
        cost_restore_rate=1_000.0,
    )


def client_for(app_engine, settings: Settings, address: str = "127.0.0.1", **budget):
    app = create_app(engine=app_engine, settings=replace(settings, **budget))
    transport = httpx.ASGITransport(app=app, client=(address, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def post(http: httpx.AsyncClient, query: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.post("/graphql", json={"query": query}, headers=headers)


async def test_every_answer_carries_its_cost(app_engine, engine, settings):
    _, token = await make_user(engine, email="cost@example.com")
    async with client_for(app_engine, settings) as http:
        first = await post(http, PAGE, token)
        second = await post(http, PAGE, token)
    assert first.status_code == second.status_code == 200, first.text
    if settings.compiled_reads:
        assert first.headers.get("x-customer-graph-path") == "compiled"
    body = first.json()
    assert "errors" not in body and body["data"]["customers"]["nodes"] == []
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == COST > 1
    assert cost["actualQueryCost"] is None
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == 20_000 and status["restoreRate"] == 1_000
    assert status["currentlyAvailable"] == 20_000 - COST
    later = second.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    assert 20_000 - 2 * COST <= later <= 20_000 - COST


async def test_over_budget_is_throttled_while_another_token_is_served(
    app_engine, engine, settings, counter
):
    _, spender = await make_user(engine, email="spender@example.com")
    _, other = await make_user(engine, email="other@example.com")
    budget = 2 * COST + COST // 2  # two pages, not three
    async with client_for(app_engine, settings, cost_budget=budget, cost_restore_rate=1.0) as http:
        assert (await post(http, PAGE, spender)).status_code == 200
        assert (await post(http, PAGE, spender)).status_code == 200
        counter.reset()
        throttled = await post(http, PAGE, spender)
        seen = list(counter.statements)
        assert throttled.status_code == 429, throttled.text
        body = throttled.json()
        assert "data" not in body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["THROTTLED"]
        available = budget - 2 * COST
        status = body["extensions"]["cost"]["throttleStatus"]
        assert available <= status["currentlyAvailable"] < available + 2
        wait = int(throttled.headers["retry-after"])
        assert COST - available - 2 <= wait <= COST - available
        # Only the bucket's statement ran: no token lookup, no read.
        assert [s for s in seen if "cost_bucket" not in s] == []
        served = await post(http, PAGE, other)
        assert served.status_code == 200 and "errors" not in served.json()


async def test_the_bucket_refills_with_time(app_engine, engine, settings):
    _, token = await make_user(engine, email="refill@example.com")
    async with client_for(
        app_engine, settings, cost_budget=COST, cost_restore_rate=float(COST) * 2
    ) as http:
        assert (await post(http, PAGE, token)).status_code == 200
        throttled = await post(http, PAGE, token)
        assert throttled.status_code == 429 and throttled.headers["retry-after"] == "1"
        await asyncio.sleep(0.6)  # COST * 2 points a second: full again
        again = await post(http, PAGE, token)
        assert again.status_code == 200, again.text


async def test_anonymous_clients_are_bucketed_by_address(app_engine, settings):
    query = "{ __typename }"  # costs 1 (every request does, at least)
    budget = {"cost_budget": 2, "cost_restore_rate": 0.01}
    async with (
        client_for(app_engine, settings, "10.0.0.1", **budget) as one,
        client_for(app_engine, settings, "10.0.0.2", **budget) as two,
    ):
        assert (await post(one, query)).status_code == 200
        assert (await post(one, query)).status_code == 200
        refused = await post(one, query)
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert int(refused.headers["retry-after"]) >= 90
        answer = await post(two, query)
        assert answer.status_code == 200
        assert answer.json()["data"] == {"__typename": "Query"}
        assert answer.json()["extensions"]["cost"]["requestedQueryCost"] == 1
        # A made-up token is no way out of the address's bucket, and adds no bucket.
        made_up = await post(one, query, "cg_not-a-real-token")
        assert made_up.status_code == 429


async def test_made_up_tokens_add_no_buckets(app_engine, engine, settings):
    budget = {"cost_budget": 5, "cost_restore_rate": 1}
    async with client_for(app_engine, settings, "10.0.0.9", **budget) as http:
        for i in range(5):
            await post(http, "{ __typename }", f"cg_made-up-{i}")
    async with engine.connect() as conn:
        keys = [r[0] for r in await conn.execute(text("SELECT key FROM cost_bucket"))]
    assert keys == ["addr:10.0.0.9"]


async def test_off_by_default_in_tests_and_when_zero(app_engine, settings):
    async with client_for(app_engine, settings, cost_budget=0) as http:
        answer = await post(http, "{ __typename }")
    assert answer.json() == {"data": {"__typename": "Query"}}


async def test_budgets_per_role(app_engine, engine, settings):
    _, rep = await make_user(engine, role="SALES_REP", email="rep@example.com")
    _, admin = await make_user(engine, email="boss@example.com")
    budgets = (("SALES_REP", float(COST), 1.0), ("ANONYMOUS", 5.0, 0.5))
    async with client_for(app_engine, settings, cost_budgets=budgets) as http:
        served = await post(http, PAGE, rep)
        status = served.json()["extensions"]["cost"]["throttleStatus"]
        assert status == {"maximumAvailable": COST, "currentlyAvailable": 0, "restoreRate": 1}
        assert (await post(http, PAGE, rep)).status_code == 429
        admin_status = (await post(http, PAGE, admin)).json()["extensions"]["cost"]
        assert admin_status["throttleStatus"]["maximumAvailable"] == 20_000  # the default
        anonymous = (await post(http, "{ __typename }")).json()["extensions"]["cost"]
        assert anonymous["throttleStatus"] == {
            "maximumAvailable": 5,
            "currentlyAvailable": 4,
            "restoreRate": 0.5,
        }


async def test_a_token_with_its_own_budget_is_throttled_by_it(app_engine, engine, settings):
    from resolvers.tokens import set_budget

    _, small = await make_user(engine, email="small@example.com")
    _, roomy = await make_user(engine, email="roomy@example.com")
    assert await set_budget(engine, small, (float(COST), 2.0))
    budgets = (("ADMIN", float(COST) * 10, 1.0),)  # the role's: ten pages
    async with client_for(app_engine, settings, cost_budgets=budgets) as http:
        first = (await post(http, PAGE, small)).json()["extensions"]["cost"]["throttleStatus"]
        assert first == {"maximumAvailable": COST, "currentlyAvailable": 0, "restoreRate": 2}
        throttled = await post(http, PAGE, small)
        assert throttled.status_code == 429
        error = throttled.json()["errors"][0]
        assert error["extensions"] == {"code": "THROTTLED", "retryAfter": COST // 2}
        assert int(throttled.headers["retry-after"]) == COST // 2
        # The role's budget still serves the role's other tokens.
        for _ in range(3):
            assert (await post(http, PAGE, roomy)).status_code == 200
        # Back to the role's: the bucket's maximum follows at once.
        assert await set_budget(engine, small, None)
        back = (await post(http, PAGE, small)).json()["extensions"]["cost"]["throttleStatus"]
        assert back["maximumAvailable"] == COST * 10


async def test_a_budget_must_have_both_figures_positive(engine):
    from sqlalchemy.exc import IntegrityError

    from server.settings import cost_budget

    for bad in ("5000", "0/10", "10/0", "-1/1", "a/b", "inf/1", ""):
        with pytest.raises(ValueError):
            cost_budget(bad)
    assert cost_budget("5000/12.5") == (5000.0, 12.5)
    user_id, _ = await make_user(engine, email="check@example.com")
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE api_token SET cost_budget = 10 WHERE user_id = :u"),
                               {"u": user_id})  # fmt: skip


async def test_websocket_operations_are_charged_from_the_same_bucket(app_engine, engine, settings):
    """A subscribe message costs what the same query costs over HTTP; over budget, that
    operation gets an error with THROTTLED and the connection stays open."""
    import orjson
    import websockets

    from tests.conftest import serve

    _, token = await make_user(engine, email="ws@example.com")
    budget = replace(settings, cost_budget=2 * COST + COST // 2, cost_restore_rate=0.01)
    app = create_app(engine=app_engine, settings=budget)
    async with serve(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            assert (await post(http, PAGE, token)).status_code == 200  # one page over HTTP
        async with websockets.connect(
            f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]
        ) as ws:
            init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
            await ws.send(orjson.dumps(init).decode())
            assert orjson.loads(await ws.recv())["type"] == "connection_ack"

            async def run(op_id: str) -> list[dict]:
                message = {"id": op_id, "type": "subscribe", "payload": {"query": PAGE}}
                await ws.send(orjson.dumps(message).decode())
                frames = []
                while True:
                    frame = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                    frames.append(frame)
                    if frame["type"] in ("complete", "error"):
                        return frames

            served = await run("1")  # the second page: served
            assert [f["type"] for f in served] == ["next", "complete"]
            assert served[0]["payload"]["data"]["customers"]["nodes"] == []
            refused = await run("2")  # the third: over budget
            assert [f["type"] for f in refused] == ["error"]
            (error,) = refused[0]["payload"]
            assert error["extensions"]["code"] == "THROTTLED"
            assert error["extensions"]["retryAfter"] >= 1
            assert error["extensions"]["cost"]["requestedQueryCost"] == COST
            await ws.send(orjson.dumps({"type": "ping"}).decode())
            assert orjson.loads(await ws.recv())["type"] == "pong"  # still open
