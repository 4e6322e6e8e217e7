"""No request holds a worker: a statement runs at most CUSTOMER_GRAPH_STATEMENT_TIMEOUT
(PostgreSQL's statement_timeout) and a whole request twice that (a wall-clock budget), on
both read paths and in mutations; the answer is a GraphQL error with code TIMEOUT.

A statement is made slow deterministically by holding a lock it needs from another session
(ACCESS EXCLUSIVE on the customer table blocks every read of it; the timeline's advisory
lock blocks a mutation after its first writes)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from resolvers.timeline import ORDER_LOCK
from server.app import create_app
from server.database import StatementCounter, make_engine
from server.settings import Settings
from tests.conftest import gid
from tests.factories import make_customer, make_sales_channel, make_user

TIMEOUT = 0.3  # seconds: statement timeout; a request's budget is twice that
PATIENCE = 5.0  # how long a test waits before calling the request stuck
CUSTOMERS = "{ customers(first: 5) { nodes { number firstName } } }"
CHANNELS = "{ salesChannels { code } }"
UPDATE = """mutation($input: CustomerUpdateInput!) { customerUpdate(input: $input) {
  customer { firstName version } userErrors { code } } }"""
LOCK_CUSTOMERS = "LOCK TABLE customer IN ACCESS EXCLUSIVE MODE"
LOCK_TIMELINE = f"SELECT pg_advisory_xact_lock({ORDER_LOCK})"


@pytest.fixture
async def timed_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The app's engine as `serve` builds it: PostgreSQL cancels statements after TIMEOUT."""
    engine = make_engine(database_url, pool_size=3, statement_timeout=TIMEOUT)
    yield engine
    await engine.dispose()


@contextlib.asynccontextmanager
async def client_for(engine: AsyncEngine, compiled: bool) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url="unused", compiled_reads=compiled, statement_timeout=TIMEOUT)
    transport = httpx.ASGITransport(app=create_app(engine=engine, settings=settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@contextlib.asynccontextmanager
async def holding(engine: AsyncEngine, lock_sql: str) -> AsyncIterator[None]:
    """Another session holds a lock until the block ends (then rolls back)."""
    async with engine.connect() as conn:
        await conn.execute(text(lock_sql))
        try:
            yield
        finally:
            await conn.rollback()


async def post(
    http: httpx.AsyncClient, token: str, query: str, variables: dict | None = None
) -> tuple[httpx.Response, float]:
    """The response and how long it took; fails instead of hanging."""
    start = time.monotonic()
    async with asyncio.timeout(PATIENCE):
        response = await http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
        )
    return response, time.monotonic() - start


def codes(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


@pytest.fixture
async def admin(engine: AsyncEngine) -> str:
    await make_customer(engine, first_name="Ada")
    await make_sales_channel(engine, "web")
    _, token = await make_user(engine, role="ADMIN", email="admin@example.com")
    return token


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "field_by_field"])
async def test_a_slow_read_answers_timeout(engine, timed_engine, admin, compiled):
    counter = StatementCounter(timed_engine)
    async with client_for(timed_engine, compiled) as http, holding(engine, LOCK_CUSTOMERS):
        counter.reset()
        response, took = await post(http, admin, CUSTOMERS)
    assert response.status_code == 200
    assert codes(response) == ["TIMEOUT"]
    assert response.json()["data"] is None
    assert took < 2 * TIMEOUT + 1.0, took
    if compiled:
        # The token lookup and the one compiled statement: the timeout is the answer, the
        # same slow work is not run again field by field.
        assert counter.count == 2, counter.statements
    async with client_for(timed_engine, compiled) as http:
        response, _ = await post(http, admin, CUSTOMERS)
    assert response.json()["data"]["customers"]["nodes"][0]["firstName"] == "Ada"


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "field_by_field"])
async def test_other_requests_are_answered_while_one_times_out(
    engine, timed_engine, admin, compiled
):
    async with client_for(timed_engine, compiled) as http, holding(engine, LOCK_CUSTOMERS):
        slow = asyncio.create_task(post(http, admin, CUSTOMERS))
        await asyncio.sleep(0.05)  # the slow request is waiting on the lock
        for _ in range(3):
            response, took = await post(http, admin, CHANNELS)
            assert response.json() == {"data": {"salesChannels": [{"code": "web"}]}}
            assert took < TIMEOUT, took
        assert not slow.done()
        response, _ = await slow
    assert codes(response) == ["TIMEOUT"]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "field_by_field"])
async def test_the_request_budget_bounds_what_statement_timeouts_do_not(engine, admin, compiled):
    """On an engine without statement_timeout (many statements, each under it, add up the
    same way), the request's wall-clock budget answers and cancels what is still running:
    the connection goes back to the pool usable and the server runs nothing of it."""
    async with client_for(engine, compiled) as http:
        async with holding(engine, LOCK_CUSTOMERS):
            response, took = await post(http, admin, CUSTOMERS)
            assert codes(response) == ["TIMEOUT"]
            assert 2 * TIMEOUT <= took < 2 * TIMEOUT + 1.0, took
            await asyncio.sleep(0.2)  # the cancel request reaches the server
            async with engine.connect() as conn:
                waiting = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                )
            assert waiting == 0
        assert engine.pool.checkedout() == 0
        response, _ = await post(http, admin, CUSTOMERS)
    assert response.json()["data"]["customers"]["nodes"][0]["firstName"] == "Ada"


async def test_a_mutation_that_times_out_writes_nothing(engine, timed_engine, admin):
    """customerUpdate changes the row, then waits for the timeline's advisory lock past the
    statement timeout: the whole transaction rolls back, the change included."""
    row = await make_customer(engine, first_name="Grace")
    variables = {"input": {"id": gid("Customer", row.id), "firstName": "Changed"}}
    async with client_for(timed_engine, compiled=True) as http:
        async with holding(engine, LOCK_TIMELINE):
            response, took = await post(http, admin, UPDATE, variables)
        assert codes(response) == ["TIMEOUT"]
        assert took < 2 * TIMEOUT + 1.0, took
        assert await written(engine, row.id) == ("Grace", 1, 0)
        response, _ = await post(http, admin, UPDATE, variables)
    assert response.json()["data"]["customerUpdate"] == {
        "customer": {"firstName": "Changed", "version": 2},
        "userErrors": [],
    }


async def test_the_request_budget_does_not_cut_a_mutation_short(engine, admin):
    """A mutation's statements each have the statement timeout; cancelling it as a whole
    could answer TIMEOUT for a change that committed, so the budget lets it finish."""
    row = await make_customer(engine, first_name="Grace")
    variables = {"input": {"id": gid("Customer", row.id), "firstName": "Changed"}}
    async with client_for(engine, compiled=True) as http:
        async with holding(engine, LOCK_TIMELINE):
            update = asyncio.create_task(post(http, admin, UPDATE, variables))
            await asyncio.sleep(3 * TIMEOUT)  # past the budget, still waiting for the lock
            assert not update.done()
        response, _ = await update
    assert response.json()["data"]["customerUpdate"]["customer"] == {
        "firstName": "Changed",
        "version": 2,
    }
    assert await written(engine, row.id) == ("Changed", 2, 1)


async def written(engine: AsyncEngine, customer_id: int) -> tuple:
    """(first name, version, timeline events) as committed."""
    async with engine.connect() as conn:
        row = await conn.execute(
            text(
                "SELECT first_name, version, (SELECT count(*) FROM timeline_event)"
                " FROM customer WHERE id = :id"
            ),
            {"id": customer_id},
        )
        return tuple(row.one())
