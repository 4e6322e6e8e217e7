"""Messages and numbers as a person reads them, the same on both read paths."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from sqlalchemy import text

from server.app import create_app
from tests.conftest import GraphQLClient, gid
from tests.factories import make_customer, make_order

LINES = """query($n: String!) { order(number: $n) { lines { position taxRate } } }"""


@pytest.fixture(params=[True, False], ids=["compiled", "field_by_field"])
async def both(request, engine, settings, admin_token):
    app = create_app(
        engine=engine, settings=dataclasses.replace(settings, compiled_reads=request.param)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield GraphQLClient(c, admin_token)


async def test_tax_rates_print_without_trailing_zeros(both, engine):
    customer = await make_customer(engine)
    order = await make_order(engine, customer.id, lines=3)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE order_line SET tax_rate = CASE position WHEN 1 THEN 0.1"
                " WHEN 2 THEN 0.0725 ELSE 0 END WHERE order_id = :id"
            ),
            {"id": order.id},
        )
    lines = (await both.data(LINES, {"n": order.number}))["order"]["lines"]
    assert [line["taxRate"] for line in lines] == ["0.1", "0.0725", "0"]


async def test_an_id_of_another_type_says_an_order_id(both, engine):
    customer = await make_customer(engine)
    order = await make_order(engine, customer.id)
    body = await both(
        "query($id: ID!) { customer(id: $id) { number } }", {"id": gid("Order", order.id)}
    )
    assert body["errors"][0]["message"] == "'id' is an Order ID; expected Customer."


async def test_a_bad_global_id_is_said_once(both):
    body = await both('{ node(id: "xyz") { id } }')
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].count("GlobalID") + error["message"].count("global ID") == 1, error
