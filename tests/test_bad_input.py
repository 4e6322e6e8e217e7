"""Bad input gets a GraphQL error with a stable extensions.code, never a stack trace."""

import base64

import pytest

from tests.conftest import gid
from tests.factories import make_customer, make_order

# Every test here runs on the compiled read path and field by field (tests/conftest.py).
BOTH_PATHS = True


def codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


@pytest.mark.parametrize(
    "value",
    ["not-base64!!", "", base64.b64encode(b"no-colon").decode(), gid("Customer", "abc")],
)
async def test_malformed_global_id(gql, value):
    body = await gql("query($id: ID!) { customer(id: $id) { number } }", {"id": value})
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "global ID" in body["errors"][0]["message"] or "Customer" in body["errors"][0]["message"]


async def test_global_id_of_the_wrong_type(gql, engine):
    customer = await make_customer(engine)
    order = await make_order(engine, customer.id)
    body = await gql(
        "query($id: ID!) { customer(id: $id) { number } }", {"id": gid("Order", order.id)}
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "expected Customer" in body["errors"][0]["message"]


async def test_node_with_unknown_type(gql):
    body = await gql("query($id: ID!) { node(id: $id) { id } }", {"id": gid("Nope", 1)})
    assert body["errors"] and all(c in {"BAD_USER_INPUT"} for c in codes(body)), body


async def test_missing_id_is_null(gql):
    data = await gql.data(
        "query($id: ID!) { customer(id: $id) { number } node(id: $id) { id } }",
        {"id": gid("Customer", 999999)},
    )
    assert data == {"customer": None, "node": None}


async def test_node_and_nodes_resolve_every_type(gql, engine):
    customer = await make_customer(engine)
    order = await make_order(engine, customer.id)
    ids = [gid("Customer", customer.id), gid("Order", order.id), gid("Customer", 424242)]
    data = await gql.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }", {"ids": ids}
    )
    assert [n and n["__typename"] for n in data["nodes"]] == ["Customer", "Order", None]
    assert data["nodes"][0]["id"] == ids[0]


@pytest.mark.parametrize("first", [101, -1, 1000])
async def test_page_size_out_of_range(gql, first):
    body = await gql("query($f: Int) { customers(first: $f) { totalCount } }", {"f": first})
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "between 0 and 100" in body["errors"][0]["message"]


async def test_nested_page_size_out_of_range(gql, engine):
    customer = await make_customer(engine)
    body = await gql(
        "query($n: String) { customer(number: $n) { orders(first: 500) { totalCount } } }",
        {"n": customer.number},
    )
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_unknown_enum_value(gql):
    body = await gql("{ customers(orderBy: {field: SHOE_SIZE}) { totalCount } }")
    assert codes(body) == ["BAD_USER_INPUT"]
    body = await gql(
        "query($o: CustomerOrder) { customers(orderBy: $o) { totalCount } }",
        {"o": {"field": "SHOE_SIZE"}},
    )
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_bad_cursor(gql):
    body = await gql('{ customers(after: "garbage") { totalCount } }')
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "cursor" in body["errors"][0]["message"]


async def test_cursor_from_another_order_is_refused(gql, engine):
    await make_customer(engine)
    data = await gql.data("{ customers(first: 1) { pageInfo { endCursor } } }")
    cursor = data["customers"]["pageInfo"]["endCursor"]
    body = await gql(
        "query($c: String) { customers(after: $c, orderBy: {field: CREATED_AT}) { totalCount } }",
        {"c": cursor},
    )
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_customer_lookup_needs_exactly_one_key(gql):
    body = await gql('{ customer(number: "C-1", email: "a@b.c") { id } }')
    assert codes(body) == ["BAD_USER_INPUT"]
    body = await gql("{ customer { id } }")
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_syntax_and_unknown_field_errors_have_codes(gql):
    assert codes(await gql("{ customers(")) == ["GRAPHQL_PARSE_FAILED"]
    assert codes(await gql("{ shoeSize }")) == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.field_by_field_only
async def test_unexpected_error_is_masked(gql, monkeypatch, caplog):
    from resolvers import customers

    async def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(customers, "customer_page", boom)
    body = await gql("{ customers { totalCount } }")
    error = body["errors"][0]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    request_id = error["extensions"]["requestId"]
    assert "secret" not in str(body)
    assert request_id in caplog.text and "secret internals" in caplog.text


@pytest.mark.field_by_field_only
async def test_debug_mode_shows_the_real_error(engine, settings, admin_token, monkeypatch):
    import dataclasses

    import httpx

    from resolvers import customers
    from server.app import create_app

    async def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(customers, "customer_page", boom)
    app = create_app(engine=engine, settings=dataclasses.replace(settings, debug=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.post(
            "/graphql",
            json={"query": "{ customers { totalCount } }"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
    error = response.json()["errors"][0]
    assert error["message"] == "RuntimeError: secret internals"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
