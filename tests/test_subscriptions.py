"""Live timeline over graphql-transport-ws, on a real uvicorn server on loopback.

Events are written the way every mutation writes them (resolvers.timeline.record, inside
the mutation's transaction) or by a real mutation over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import itertools

import httpx
import orjson
import pytest
import websockets

from resolvers.timeline import record
from server.app import create_app
from server.database import make_engine
from tests.conftest import gid, serve
from tests.factories import link_channel, make_customer, make_sales_channel, make_user

TIMELINE = """subscription($id: ID!, $since: String) {
  customerTimeline(customerId: $id, since: $since) { id kind summary cursor customer { number } }
}"""
ALL = """subscription($filter: TimelineEventFilter, $since: String) {
  timelineEvents(filter: $filter, since: $since) { kind summary customer { number } }
}"""


class Client:
    """A minimal graphql-transport-ws client."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, address: str, token: str | None):
        async with websockets.connect(
            f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]
        ) as ws:
            payload = {"authorization": f"Bearer {token}"} if token else {}
            await ws.send(orjson.dumps({"type": "connection_init", "payload": payload}).decode())
            frame = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(frame, str), "graphql-ws clients need text frames"
            ack = orjson.loads(frame)
            assert ack["type"] == "connection_ack", ack
            yield cls(ws)

    async def subscribe(self, query: str, variables: dict) -> str:
        op = str(next(self.ids))
        message = {
            "id": op,
            "type": "subscribe",
            "payload": {"query": query, "variables": variables},
        }
        await self.ws.send(orjson.dumps(message).decode())
        return op

    async def receive(self, wait: float = 5) -> dict:
        """The next message that is not a ping or a `complete`."""
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), wait)
            assert isinstance(frame, str), "graphql-ws clients need text frames"
            message = orjson.loads(frame)
            if message["type"] not in ("ping", "complete"):
                return message

    async def events(self, n: int, wait: float = 10) -> list[dict]:
        out = []
        while len(out) < n:
            message = await self.receive(wait)
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message
            out.append(next(iter(message["payload"]["data"].values())))
        return out

    async def nothing_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.ws.recv(), seconds)
        except TimeoutError:
            return True
        return False


async def write(engine, customer_id: int, summary: str, kind: str = "NOTE_ADDED") -> int:
    async with engine.begin() as conn:
        return await record(conn, customer_id, kind, summary, actor_id=None)


@pytest.fixture
async def live(engine, settings):
    app = create_app(engine=engine, settings=settings)
    async with serve(app) as address:
        yield address


async def subscribed(client: Client, query: str, variables: dict) -> str:
    op = await client.subscribe(query, variables)
    await asyncio.sleep(1.0)  # let the server register the subscriber before events are written
    return op


async def test_customer_timeline_delivers_committed_events_in_order(live, engine, admin_token):
    customer = await make_customer(engine)
    other = await make_customer(engine, first_name="Other")
    async with Client.connect(live, admin_token) as client:
        await subscribed(client, TIMELINE, {"id": gid("Customer", customer.id)})
        await write(engine, other.id, "not mine")
        for i in range(3):
            await write(engine, customer.id, f"event {i}")
        events = await client.events(3)
        assert [e["summary"] for e in events] == ["event 0", "event 1", "event 2"]
        assert all(e["customer"]["number"] == customer.number for e in events)


async def test_rolled_back_mutation_delivers_nothing(live, engine, admin_token):
    customer = await make_customer(engine)
    async with Client.connect(live, admin_token) as client:
        await subscribed(client, TIMELINE, {"id": gid("Customer", customer.id)})
        with pytest.raises(RuntimeError):
            async with engine.begin() as conn:
                await record(conn, customer.id, "NOTE_ADDED", "rolled back", actor_id=None)
                raise RuntimeError("the mutation failed after recording its event")
        await write(engine, customer.id, "committed")
        assert [e["summary"] for e in await client.events(1)] == ["committed"]
        assert await client.nothing_within(0.5)


async def test_mutation_on_one_instance_reaches_subscriber_on_another(
    live, engine, database_url, settings, admin_token
):
    """Two app instances with their own pools and LISTEN connections, one database."""
    a = await make_customer(engine, last_name="Twin")
    b = await make_customer(engine, last_name="Twin")
    other_engine = make_engine(database_url, pool_size=2)
    other_app = create_app(engine=other_engine, settings=settings)
    try:
        async with Client.connect(live, admin_token) as client:
            await subscribed(client, TIMELINE, {"id": gid("Customer", a.id)})
            transport = httpx.ASGITransport(app=other_app)
            async with httpx.AsyncClient(transport=transport, base_url="http://other") as http:
                response = await http.post(
                    "/graphql",
                    json={
                        "query": "mutation($ids: [ID!]!) { duplicateDismiss(input: "
                        "{customerIds: $ids}) { dismissedPairs } }",
                        "variables": {"ids": [gid("Customer", a.id), gid("Customer", b.id)]},
                    },
                    headers={"Authorization": f"Bearer {admin_token}"},
                )
                assert response.json()["data"]["duplicateDismiss"]["dismissedPairs"] == 1
            [event] = await client.events(1)
            assert event["kind"] == "DUPLICATE_DISMISSED"
    finally:
        await other_engine.dispose()


async def test_sales_rep_receives_only_their_customers(live, engine):
    rep_a, token_a = await make_user(engine, role="SALES_REP", email="a@reps.test")
    rep_b, _ = await make_user(engine, role="SALES_REP", email="b@reps.test")
    mine = await make_customer(engine, sales_rep_id=rep_a)
    theirs = await make_customer(engine, sales_rep_id=rep_b)
    async with Client.connect(live, token_a) as client:
        await subscribed(client, ALL, {})
        for i in range(3):
            await write(engine, theirs.id, f"theirs {i}")
            await write(engine, mine.id, f"mine {i}")
        events = await client.events(3)
        assert [e["summary"] for e in events] == ["mine 0", "mine 1", "mine 2"]
        assert await client.nothing_within(0.5)


async def test_filters_by_kind_and_sales_channel(live, engine, admin_token):
    web = await make_sales_channel(engine, "web")
    in_web = await make_customer(engine)
    elsewhere = await make_customer(engine)
    await link_channel(engine, in_web.id, web.id)
    async with Client.connect(live, admin_token) as client:
        variables = {
            "filter": {"kinds": ["ORDER_PLACED"], "salesChannels": [gid("SalesChannel", web.id)]}
        }
        await subscribed(client, ALL, variables)
        await write(engine, in_web.id, "note", kind="NOTE_ADDED")
        await write(engine, elsewhere.id, "order elsewhere", kind="ORDER_PLACED")
        await write(engine, in_web.id, "order in web", kind="ORDER_PLACED")
        assert [e["summary"] for e in await client.events(1)] == ["order in web"]


async def test_reconnect_with_since_replays_missed_events_then_live(live, engine, admin_token):
    customer = await make_customer(engine)
    variables = {"id": gid("Customer", customer.id)}
    async with Client.connect(live, admin_token) as client:
        await subscribed(client, TIMELINE, variables)
        await write(engine, customer.id, "before the drop")
        [seen] = await client.events(1)
    for i in range(50):  # written while disconnected
        await write(engine, customer.id, f"missed {i}")
    async with Client.connect(live, admin_token) as client:
        await subscribed(client, TIMELINE, {**variables, "since": seen["cursor"]})
        await write(engine, customer.id, "live after reconnect")
        events = await client.events(51)
        assert [e["summary"] for e in events] == [f"missed {i}" for i in range(50)] + [
            "live after reconnect"
        ]
        assert len({e["id"] for e in events}) == 51
        assert await client.nothing_within(0.5)


async def test_burst_of_a_thousand_events_arrives_complete_and_in_order(live, engine, admin_token):
    customer = await make_customer(engine)
    async with Client.connect(live, admin_token) as client:
        await subscribed(client, TIMELINE, {"id": gid("Customer", customer.id)})

        async def writer(start: int) -> None:
            for i in range(start, 1000, 4):
                await write(engine, customer.id, f"{i}")

        await asyncio.gather(*(writer(k) for k in range(4)))  # concurrent transactions
        events = await client.events(1000, wait=30)
        ids = [base64.b64decode(e["id"]).decode() for e in events]
        numeric = [int(x.split(":")[1]) for x in ids]
        assert numeric == sorted(numeric) and len(set(numeric)) == 1000


CHARGE = """mutation($input: LedgerEntryInput!) {
  ledgerCharge(input: $input) { userErrors { code } } }"""


async def test_concurrent_mutations_arrive_complete_and_in_order(live, engine, admin_token):
    """Mutations write their events with COMMIT (resolvers.timeline.commit): forty charges
    from ten connections at once still reach the subscriber all, once, in id order."""
    customer = await make_customer(engine)
    async with Client.connect(live, admin_token) as client:
        await subscribed(client, TIMELINE, {"id": gid("Customer", customer.id)})
        async with httpx.AsyncClient(
            base_url=f"http://{live}",
            headers={"Authorization": f"Bearer {admin_token}"},
            limits=httpx.Limits(max_connections=10),
            timeout=30,
        ) as http:

            async def charge(i: int) -> None:
                variables = {
                    "input": {
                        "customerId": gid("Customer", customer.id),
                        "amount": f"{i}.00",
                        "currency": "USD",
                    }
                }
                r = await http.post("/graphql", json={"query": CHARGE, "variables": variables})
                assert r.json() == {"data": {"ledgerCharge": {"userErrors": []}}}

            await asyncio.gather(*(charge(i) for i in range(1, 41)))
        events = await client.events(40, wait=30)
        numeric = [int(base64.b64decode(e["id"]).decode().split(":")[1]) for e in events]
        assert numeric == sorted(numeric) and len(set(numeric)) == 40
        assert sorted(e["summary"] for e in events) == sorted(
            f"Charge of {i}.00 USD" for i in range(1, 41)
        )
        assert await client.nothing_within(0.5)


async def test_bad_input_leaves_the_connection_usable(live, engine, admin_token):
    rep, rep_token = await make_user(engine, role="SALES_REP", email="rep@reps.test")
    customer = await make_customer(engine)  # not the rep's
    own = await make_customer(engine, sales_rep_id=rep)
    async with Client.connect(live, rep_token) as client:
        cases = [
            ({"id": gid("Customer", 999999)}, "NOT_FOUND"),
            ({"id": gid("Customer", customer.id)}, "NOT_FOUND"),  # out of scope looks missing
            ({"id": gid("Order", 1)}, "BAD_USER_INPUT"),
            ({"id": gid("Customer", own.id), "since": "%%%"}, "BAD_USER_INPUT"),
        ]
        for variables, code in cases:
            op = await client.subscribe(TIMELINE, variables)
            message = await client.receive()
            assert message["id"] == op
            errors = (
                message["payload"] if message["type"] == "error" else message["payload"]["errors"]
            )
            assert errors[0]["extensions"]["code"] == code, message
        await subscribed(client, TIMELINE, {"id": gid("Customer", own.id)})
        await write(engine, own.id, "still works")
        assert [e["summary"] for e in await client.events(1)] == ["still works"]


async def test_no_token_is_refused_per_subscription(live, engine):
    customer = await make_customer(engine)
    async with Client.connect(live, None) as client:
        await client.subscribe(TIMELINE, {"id": gid("Customer", customer.id)})
        message = await client.receive()
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_bad_token_closes_the_connection(live):
    async with websockets.connect(
        f"ws://{live}/graphql", subprotocols=["graphql-transport-ws"]
    ) as ws:
        init = {"type": "connection_init", "payload": {"authorization": "Bearer nope"}}
        await ws.send(orjson.dumps(init).decode())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 4403


async def test_subscription_limit_per_connection(engine, settings, admin_token):
    customer = await make_customer(engine)
    app = create_app(
        engine=engine, settings=dataclasses.replace(settings, subscriptions_per_connection=2)
    )
    async with serve(app) as address, Client.connect(address, admin_token) as client:
        for _ in range(2):
            await client.subscribe(TIMELINE, {"id": gid("Customer", customer.id)})
        await client.subscribe(TIMELINE, {"id": gid("Customer", customer.id)})
        message = await client.receive()
        assert message["type"] == "error" and "limit" in message["payload"][0]["message"]


async def test_slow_consumer_is_disconnected(engine, settings, admin_token):
    """A subscriber that falls behind more than the allowed events gets closed (1013)."""
    customer = await make_customer(engine)
    app = create_app(
        engine=engine, settings=dataclasses.replace(settings, subscription_max_pending=0)
    )
    async with serve(app) as address, Client.connect(address, admin_token) as client:
        await subscribed(client, TIMELINE, {"id": gid("Customer", customer.id)})
        await write(engine, customer.id, "one too many")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await client.receive()
        assert closed.value.rcvd.code == 1013
        assert "Slow consumer" in closed.value.rcvd.reason


async def test_subscriptions_over_http_are_refused_clearly(gql, engine):
    body = await gql("subscription { timelineEvents { kind } }")
    assert body["errors"][0]["extensions"]["code"] == "SUBSCRIPTION_NEEDS_WEBSOCKET"


async def test_shared_graphiql_links_open_graphiql(client):
    response = await client.get("/graphql?query=%7B__typename%7D", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()
