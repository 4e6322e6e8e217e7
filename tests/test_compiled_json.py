"""JSON scalars (`TimelineEvent.data`, `Order.shippingAddress`), `TimelineEvent.cursor` and
`OrderLine` nodes on the compiled read path: byte-identical to the field-by-field path for
each role, and printed as PostgreSQL's jsonb prints them (models/types.py): keys in jsonb's
order, numbers as stored."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import text

from tests.conftest import gid
from tests.factories import make_order
from tests.test_compiled import ROLES, both, same, world  # noqa: F401 - fixtures

# Written in another key order than jsonb keeps, with numbers a float would change
# (1.10, 0.0000001 from 1e-7, an integer past 64 bits), escapes and a ", " inside a string.
DATA = (
    '{"zeta": 1.10, "nested": {"c": {}, "bb": true, "a": null}, "empty": [],'
    ' "a": [1e-7, 123456789012345678901234, -0.0, 2.50e3, "x, \\"y\\": z\\n\\u0001"],'
    ' "\u00e9": "caf\u00e9"}'
)
# jsonb's order: shorter keys first (in bytes: "é" is two), then bytewise; no blanks.
PRINTED = (
    '{"a":[0.0000001,123456789012345678901234,0.0,2500,"x, \\"y\\": z\\n\\u0001"],'
    '"\u00e9":"caf\u00e9","zeta":1.10,"empty":[],"nested":{"a":null,"c":{},"bb":true}}'
)
ADDRESS = '{"line1": "1 Rue, \\"A\\"", "city": "Lyon", "postalCode": "69001", "n": 7.50}'


@pytest.fixture
async def odd(world, engine):  # noqa: F811
    """The other customer's event and first order carry odd JSON; another order has none."""
    other = world["other"].id
    await make_order(engine, other, lines=1)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE timeline_event SET data = CAST(:d AS jsonb) WHERE customer_id = :c"),
            {"d": DATA, "c": other},
        )
        first = await conn.scalar(
            text("SELECT min(id) FROM orders WHERE customer_id = :c"), {"c": other}
        )
        await conn.execute(
            text("UPDATE orders SET shipping_address = CAST(:a AS jsonb) WHERE id = :o"),
            {"a": ADDRESS, "o": first},
        )
        await conn.execute(
            text("UPDATE orders SET shipping_address = NULL WHERE customer_id = :c AND id <> :o"),
            {"c": other, "o": first},
        )
        event = await conn.scalar(
            text("SELECT id FROM timeline_event WHERE customer_id = :c"), {"c": other}
        )
        line = await conn.scalar(
            text("SELECT min(id) FROM order_line WHERE order_id = :o"), {"o": first}
        )
    return {"event": event, "order": first, "line": line}


CUSTOMER = """query($n: String!) { customer(number: $n) {
  timeline { edges { cursor node { id data cursor kind } } }
  orders { nodes { number shippingAddress lines { id } } } } }"""


@pytest.mark.parametrize("role", ROLES)
async def test_json_fields_are_identical(both, world, odd, role):  # noqa: F811
    body = await same(
        both, world["tokens"][role], CUSTOMER, {"n": world["other"].number}, compiled=True
    )
    if role == "CUSTOMER":  # the site user's own customer is `bare`
        assert orjson.loads(body) == {"data": {"customer": None}}
        return
    assert f'"data":{PRINTED}'.encode() in body
    assert b'"shippingAddress":{"n":7.50,"city":"Lyon","line1":"1 Rue, \\"A\\"",' in body
    assert b'"shippingAddress":null' in body
    edge = orjson.loads(body)["data"]["customer"]["timeline"]["edges"][0]
    assert edge["cursor"] == edge["node"]["cursor"]


@pytest.mark.parametrize("role", ROLES)
async def test_json_fields_under_node_and_nodes(both, world, odd, role):  # noqa: F811
    token = world["tokens"][role]
    q = """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
      ... on TimelineEvent { data cursor }
      ... on Order { shippingAddress lines { id taxRate unitPrice { amount currency } } }
      ... on OrderLine { position sku description quantity taxRate
                         unitPrice { amount currency } lineTotal { amount currency } } } }"""
    ids = [
        gid("TimelineEvent", odd["event"]),
        gid("Order", odd["order"]),
        gid("OrderLine", odd["line"]),
        gid("OrderLine", 987654),
    ]
    body = await same(both, token, q, {"ids": ids}, compiled=True)
    nodes = orjson.loads(body)["data"]["nodes"]
    if role == "CUSTOMER":
        assert nodes == [None] * 4
    else:
        assert [n and n["__typename"] for n in nodes] == [
            "TimelineEvent",
            "Order",
            "OrderLine",
            None,
        ]
        assert nodes[2]["unitPrice"]["currency"] == "USD"
    one = "query($id: ID!) { node(id: $id) { ... on OrderLine { sku lineTotal { amount } } } }"
    await same(both, token, one, {"id": ids[2]}, compiled=True)


async def test_json_query_is_one_statement(both, world, odd, counter):  # noqa: F811
    from tests.test_compiled import post

    counter.reset()
    body = await post(both[0], world["tokens"]["ADMIN"], CUSTOMER, {"n": world["other"].number})
    assert PRINTED.encode() in body
    assert counter.count == 2, counter.statements  # the token lookup + the read
