"""The compiled read path answers byte for byte what the field-by-field path answers.

Every query runs twice against the same data: through the compiled path (one SQL
statement) and through Strawberry with dataloaders (CUSTOMER_GRAPH_COMPILED off). The
response bodies must be identical bytes, for each role, including nulls, empty lists,
cursors and argument errors (which the compiled path leaves to Strawberry).
"""

from __future__ import annotations

import httpx
import orjson
import pytest
from sqlalchemy import text

from server.app import create_app
from server.settings import Settings
from tests.factories import (
    make_address,
    make_customer,
    make_event,
    make_ledger,
    make_order,
    make_user,
)
from tests.test_nested_reads import PAGE, seed_customers


@pytest.fixture
async def both(engine):
    """(compiled client, dataloader client)."""
    clients = []
    for compiled in (True, False):
        settings = Settings(database_url="unused", debug=False, compiled_reads=compiled)
        app = create_app(engine=engine, settings=settings)
        clients.append(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )
    yield clients
    for c in clients:
        await c.aclose()


async def post(client, token, query, variables=None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    return r.content


async def same(both, token, query, variables=None) -> bytes:
    compiled, loaders = both
    a = await post(compiled, token, query, variables)
    b = await post(loaders, token, query, variables)
    assert a == b, f"\ncompiled: {a[:2000]!r}\nloaders:  {b[:2000]!r}\nquery: {query}"
    return a


@pytest.fixture
async def world(engine):
    """Seeded customers plus the edge cases: nulls, empty lists, a rep, a site user."""
    customers = await seed_customers(engine, 6)
    async with engine.begin() as conn:  # seed_customers inserts explicit order ids
        await conn.execute(
            text("SELECT setval(pg_get_serial_sequence('orders', 'id'), max(id)) FROM orders")
        )
    rep_id, rep_token = await make_user(engine, role="SALES_REP", email="rep2@example.com")
    site_id, site_token = await make_user(engine, role="CUSTOMER", email="site@example.com")
    _admin_id, admin_token = await make_user(engine, role="ADMIN", email="boss@example.com")
    bare = await make_customer(
        engine,
        first_name=None,
        last_name=None,
        company_name='Ünïcode "Quote" Co\n',
        kind="BUSINESS",
        email="bare@example.com",
        sales_rep_id=rep_id,
        user_id=site_id,
        note="line1\nline2\t\\",
    )
    other = await make_customer(engine, first_name="Zed", email="zed@example.com")
    await make_order(engine, other.id, lines=3)
    await make_address(engine, other.id, region=None)
    await make_ledger(engine, other.id, ["12.50", "-2.25"], currency="USD")
    await make_ledger(engine, other.id, ["1.00"], currency="EUR")
    await make_event(engine, other.id, actor_id=rep_id)
    return {
        "customers": customers,
        "bare": bare,
        "other": other,
        "tokens": {"ADMIN": admin_token, "SALES_REP": rep_token, "CUSTOMER": site_token},
    }


ROLES = ["ADMIN", "SALES_REP", "CUSTOMER"]


@pytest.mark.parametrize("role", ROLES)
async def test_nested_page_is_identical(both, world, role):
    body = await same(both, world["tokens"][role], PAGE, {"n": 50})
    assert b'"errors"' not in body


async def test_compiled_page_is_one_statement(both, world, counter):
    counter.reset()
    body = await post(both[0], world["tokens"]["ADMIN"], PAGE, {"n": 50})
    assert orjson.loads(body)["data"]["customers"]["edges"]
    assert counter.count == 2, counter.statements  # the token lookup + the page
