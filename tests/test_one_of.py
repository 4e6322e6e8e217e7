"""`customer(by:)` and `order(by:)`: @oneOf inputs, the older arguments kept (deprecated)."""

from __future__ import annotations

import base64
import dataclasses

import httpx
import pytest

from server.app import create_app
from tests.conftest import GraphQLClient
from tests.factories import make_customer, make_order

CUSTOMER = "query($by: CustomerLookup) { customer(by: $by) { number email } }"


@pytest.fixture(params=[True, False], ids=["compiled", "field_by_field"])
async def both(request, engine, settings, admin_token):
    chosen = dataclasses.replace(settings, compiled_reads=request.param)
    app = create_app(engine=engine, settings=chosen)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield GraphQLClient(c, admin_token)


def codes(body) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_each_way_of_naming_a_customer(both, engine):
    row = await make_customer(engine, email="ada@example.com")
    expected = {"customer": {"number": row.number, "email": "ada@example.com"}}
    gid = base64.b64encode(f"Customer:{row.id}".encode()).decode()
    for by in ({"number": row.number}, {"email": "ada@example.com"}, {"id": gid}):
        assert await both.data(CUSTOMER, {"by": by}) == expected
    literal = f'{{ customer(by: {{number: "{row.number}"}}) {{ number email }} }}'
    assert await both.data(literal) == expected
    old = f'{{ customer(number: "{row.number}") {{ number email }} }}'
    assert await both.data(old) == expected  # the older arguments still answer


async def test_one_of_means_exactly_one(both, engine):
    row = await make_customer(engine, email="ada@example.com")
    two = await both(CUSTOMER, {"by": {"number": row.number, "email": "ada@example.com"}})
    assert codes(two) == ["BAD_USER_INPUT"] and two.get("data") is None
    none = await both(CUSTOMER, {"by": {}})
    assert codes(none) == ["BAD_USER_INPUT"]
    literal = '{ customer(by: {number: "C-1", email: "a@b.c"}) { number } }'
    assert codes(await both(literal)) == ["BAD_USER_INPUT"]
    mixed = f'{{ customer(by: {{number: "{row.number}"}}, email: "x@y.z") {{ number }} }}'
    assert codes(await both(mixed)) == ["BAD_USER_INPUT"]


async def test_order_by(both, engine):
    row = await make_customer(engine)
    order = await make_order(engine, row.id)
    body = await both.data(
        "query($n: String!) { order(by: {number: $n}) { number } }", {"n": order.number}
    )
    assert body == {"order": {"number": order.number}}


async def test_introspection_says_one_of(gql):
    body = await gql.data('{ __type(name: "CustomerLookup") { isOneOf } }')
    assert body == {"__type": {"isOneOf": True}}
