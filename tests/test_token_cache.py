"""Who a token stands for, kept per worker while it listens for revocations
(resolvers/tokens.ViewerCache, migration 0021): a signed-in request skips the lookup's
round trip, and a revoked token, a deactivated user or a changed role stops counting as
soon as the change commits, whoever made it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import text

from server.app import create_app
from server.database import keeps_viewers
from tests.conftest import GraphQLClient
from tests.factories import make_customer, make_user

BOTH_PATHS = True
ME = "{ me { user { email role } } }"
PAGE = "{ customers(first: 5) { nodes { lastName } } }"


@pytest.fixture
async def http(app_engine, settings, database_url):
    # The owner's URL for /readyz's migration check (the app role may not read it).
    app = create_app(engine=app_engine, settings=replace(settings, migration_url=database_url))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            # /readyz makes the worker listen (as serve's start-up does): the cache is
            # trusted from then on.
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            yield client
    finally:
        await app.state.engine_ref["hub"].close()


def lookups(counter) -> int:
    return sum("api_token" in s for s in counter.statements)


async def until(check, seconds: float = 1.0) -> float:
    """Seconds until `check()` holds (at most `seconds`, the promise), else fail."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        assert loop.time() - started < seconds, "not within a second"
        await asyncio.sleep(0.02)
    return loop.time() - started


async def test_a_known_token_is_not_looked_up_again(http, engine, app_engine, counter, settings):
    _, token = await make_user(engine, email="cached@example.com")
    await make_customer(engine, last_name="Kept")
    gql = GraphQLClient(http, token)
    first = await gql.data(PAGE)
    counter.reset()
    second = await gql.data(PAGE)
    assert first == second == {"customers": {"nodes": [{"lastName": "Kept"}]}}
    assert lookups(counter) == 0, counter.statements
    if settings.compiled_reads and keeps_viewers(app_engine):  # the session keeps the viewer
        assert len(counter.statements) == 1, counter.statements
        assert counter.statements[0].startswith("SELECT convert_to("), counter.statements
    elif settings.compiled_reads:  # a transaction pooler: BEGIN and the viewer, then the read
        assert any("BEGIN READ ONLY; SELECT cg_set_viewer" in s for s in counter.statements)


async def test_a_revoked_token_stops_within_a_second(http, engine, counter):
    _, token = await make_user(engine, email="revoked@example.com")
    _, other = await make_user(engine, email="other@example.com")
    gql = GraphQLClient(http, token)
    assert (await gql.data(ME))["me"]["user"]["email"] == "revoked@example.com"
    await GraphQLClient(http, other).data(ME)
    async with engine.begin() as conn:  # plain SQL, as an operator might
        await conn.execute(text(
            "UPDATE api_token SET revoked_at = now() WHERE user_id = "
            "(SELECT id FROM app_user WHERE email = 'revoked@example.com')"))  # fmt: skip

    async def refused() -> bool:
        body = await gql(ME)
        return [e["extensions"]["code"] for e in body.get("errors", [])] == ["UNAUTHENTICATED"]

    await until(refused)
    counter.reset()
    assert (await GraphQLClient(http, other).data(ME))["me"]["user"]["email"] == "other@example.com"
    assert lookups(counter) == 0  # the other token stays cached


async def test_a_new_role_counts_at_once(http, engine):
    rep_id, token = await make_user(engine, role="SALES_REP", email="rep@example.com")
    await make_customer(engine, last_name="NotTheirs")
    gql = GraphQLClient(http, token)
    assert (await gql.data(PAGE))["customers"]["nodes"] == []  # a rep sees only their own
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE app_user SET role = 'ADMIN' WHERE id = :i"), {"i": rep_id})

    async def promoted() -> bool:
        return (await gql.data(PAGE))["customers"]["nodes"] == [{"lastName": "NotTheirs"}]

    await until(promoted)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE app_user SET is_active = false WHERE id = :i"), {"i": rep_id}
        )

    async def signed_out() -> bool:
        return "errors" in await gql(ME)

    await until(signed_out)


async def test_without_the_listen_connection_every_token_is_looked_up(
    http, engine, counter, app_engine
):
    _, token = await make_user(engine, email="lost@example.com")
    gql = GraphQLClient(http, token)
    await gql.data(ME)
    async with engine.begin() as conn:  # kill the worker's LISTEN connection
        await conn.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%'"))  # fmt: skip
    await asyncio.sleep(0.2)
    counter.reset()
    await gql.data(ME)
    await gql.data(ME)
    # Looked up until the worker listens again (its own reconnect), then cached again.
    assert lookups(counter) >= 1


NOTE = """mutation($id: ID!) { customerAddNote(input: {customerId: $id, note: "hi"}) {
  userErrors { code } } }"""


async def test_a_known_mutation_from_a_known_token_takes_no_lookup(http, engine, counter):
    from tests.conftest import gid

    _, token = await make_user(engine, email="writer@example.com")
    customer = await make_customer(engine)
    gql = GraphQLClient(http, token)
    variables = {"id": gid("Customer", customer.id)}
    first = await gql.data(NOTE, variables)
    counter.reset()
    second = await gql.data(NOTE, variables)
    assert first == second == {"customerAddNote": {"userErrors": []}}
    assert lookups(counter) == 0, counter.statements
    # Nor a read transaction before handing it to Strawberry (compiled front).
    assert not any("BEGIN READ ONLY" in s for s in counter.statements), counter.statements
    async with engine.begin() as conn:  # revoked: the next mutation is refused
        await conn.execute(text("UPDATE api_token SET revoked_at = now()"))

    async def refused() -> bool:
        body = await gql(NOTE, variables)
        return [e["extensions"]["code"] for e in body.get("errors", [])] == ["UNAUTHENTICATED"]

    await until(refused)
