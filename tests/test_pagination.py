"""Root keyset pagination: every order, forwards and backwards, no gaps or repeats."""

import pytest

from tests.factories import make_customer

# Every test here runs on the compiled read path and field by field (tests/conftest.py).
BOTH_PATHS = True

NAMES = ["Zoe", "adam", "Émile", "bob", "Carl", "carl", "Dora", "eve", "Fay", "Gus", "Hal"]

QUERY = """
query($first: Int, $after: String, $last: Int, $before: String, $order: CustomerOrder) {
  customers(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { number lastName createdAt } }
  }
}
"""


async def seed(engine) -> list:
    return [await make_customer(engine, first_name="X", last_name=n) for n in NAMES]


async def walk_forward(gql, order, size=3) -> list[str]:
    seen, after = [], None
    while True:
        data = await gql.data(QUERY, {"first": size, "after": after, "order": order})
        page = data["customers"]
        assert page["totalCount"] == len(NAMES)
        seen += [e["node"]["number"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        after = page["pageInfo"]["endCursor"]


async def walk_backward(gql, order, size=4) -> list[str]:
    seen, before = [], None
    while True:
        data = await gql.data(QUERY, {"last": size, "before": before, "order": order})
        page = data["customers"]
        seen = [e["node"]["number"] for e in page["edges"]] + seen
        if not page["pageInfo"]["hasPreviousPage"]:
            return seen
        before = page["pageInfo"]["startCursor"]


@pytest.mark.parametrize("field", ["NAME", "NUMBER", "CREATED_AT", "UPDATED_AT"])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_keyset_walks_are_complete_and_agree(gql, engine, field, direction):
    rows = await seed(engine)
    order = {"field": field, "direction": direction}
    forward = await walk_forward(gql, order)
    assert sorted(forward) == sorted(r.number for r in rows)
    assert len(set(forward)) == len(forward)
    assert await walk_backward(gql, order) == forward


async def test_name_order_is_case_insensitive(gql, engine):
    await seed(engine)
    data = await gql.data(QUERY, {"first": 100, "order": {"field": "NAME"}})
    names = [e["node"]["lastName"] for e in data["customers"]["edges"]]
    assert names == [
        "adam",
        "bob",
        "Carl",
        "carl",
        "Dora",
        "Émile",
        "eve",
        "Fay",
        "Gus",
        "Hal",
        "Zoe",
    ]


async def test_first_zero_returns_no_edges(gql, engine):
    await seed(engine)
    data = await gql.data(QUERY, {"first": 0})
    assert data["customers"]["edges"] == []
    assert data["customers"]["pageInfo"]["hasNextPage"] is True


async def test_cursor_stable_under_inserts(gql, engine):
    await seed(engine)
    order = {"field": "NUMBER", "direction": "ASC"}
    first = await gql.data(QUERY, {"first": 3, "order": order})
    cursor = first["customers"]["pageInfo"]["endCursor"]
    await make_customer(engine, first_name="New", last_name="Comer")  # sorts last by number
    second = await gql.data(QUERY, {"first": 3, "after": cursor, "order": order})
    numbers = [e["node"]["number"] for e in first["customers"]["edges"]]
    numbers += [e["node"]["number"] for e in second["customers"]["edges"]]
    assert numbers == sorted(numbers) and len(set(numbers)) == 6
