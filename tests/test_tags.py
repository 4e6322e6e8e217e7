"""Tags: add/remove on many customers, the rules, the catalogue with counts, the filter,
the search facet, timeline events, and who may do what; on both read paths."""

import pytest
from sqlalchemy import text

from tests.conftest import gid
from tests.factories import make_customer, make_user

BOTH_PATHS = True

ADD = """mutation($ids: [ID!]!, $tags: [String!]!) {
  customerTagsAdd(input: {customerIds: $ids, tags: $tags}) {
    customers { number tags version } userErrors { field code message } } }"""
REMOVE = ADD.replace("customerTagsAdd", "customerTagsRemove")
TAGS = "query($p: String, $n: Int) { tags(prefix: $p, first: $n) { name customerCount } }"
FIND = """query($f: CustomerFilter) { customers(filter: $f, first: 50) {
  nodes { number tags } } }"""


@pytest.fixture
async def people(engine):
    rep, rep_token = await make_user(engine, role="SALES_REP", email="rep@example.com")
    ada = await make_customer(engine, first_name="Ada", sales_rep_id=rep)
    bob = await make_customer(engine, first_name="Bob", sales_rep_id=rep)
    cy = await make_customer(engine, first_name="Cy")
    return {
        "ada": ada,
        "bob": bob,
        "cy": cy,
        "ids": {n: gid("Customer", c.id) for n, c in (("ada", ada), ("bob", bob), ("cy", cy))},
        "rep_token": rep_token,
    }


async def add(gql, ids, tags, query=ADD):
    return await gql.data(query, {"ids": ids, "tags": tags})


async def test_add_sorts_dedupes_and_keeps_one_spelling(gql, people):
    ids = people["ids"]
    data = await add(gql, [ids["ada"]], [" VIP ", "wholesale", "vip", "Église"])
    payload = data["customerTagsAdd"]
    assert payload["userErrors"] == []
    assert payload["customers"][0]["tags"] == ["VIP", "wholesale", "Église"]  # code points
    # A new spelling of an existing tag takes the existing one.
    data = await add(gql, [ids["bob"]], ["vip", "Alpha"])
    assert data["customerTagsAdd"]["customers"][0]["tags"] == ["Alpha", "VIP"]
    found = await gql.data(TAGS)
    assert {t["name"]: t["customerCount"] for t in found["tags"]} == {
        "Alpha": 1,
        "VIP": 2,
        "wholesale": 1,
        "Église": 1,
    }
    assert [t["name"] for t in found["tags"]] == ["Alpha", "VIP", "wholesale", "Église"]


async def test_events_only_for_customers_that_changed(gql, people, engine):
    ids = people["ids"]
    await add(gql, [ids["ada"]], ["vip"])
    data = await add(gql, [ids["ada"], ids["bob"]], ["VIP"])
    by_number = {c["number"]: c for c in data["customerTagsAdd"]["customers"]}
    assert by_number[people["ada"].number]["version"] == 2  # unchanged by the second call
    assert by_number[people["bob"].number]["version"] == 2
    async with engine.connect() as conn:
        kinds = (
            await conn.execute(
                text("SELECT customer_id, kind, data FROM timeline_event ORDER BY id")
            )
        ).all()
    assert [(k[0], k[1], k[2]) for k in kinds] == [
        (people["ada"].id, "TAGS_ADDED", {"tags": ["vip"]}),
        (people["bob"].id, "TAGS_ADDED", {"tags": ["vip"]}),
    ]
    data = await add(gql, [ids["ada"], ids["cy"]], ["VIP", "absent"], REMOVE)
    assert [c["tags"] for c in data["customerTagsRemove"]["customers"]] == [[], []]
    async with engine.connect() as conn:
        last = (
            await conn.execute(text("SELECT customer_id, kind, data FROM timeline_event"))
        ).all()
    assert (people["ada"].id, "TAGS_REMOVED", {"tags": ["vip"]}) in [tuple(r) for r in last]
    assert not any(r[0] == people["cy"].id for r in last)


@pytest.mark.parametrize(
    "tags,field",
    [
        (["x" * 41], ["input", "tags", "0"]),
        (["ok", "   "], ["input", "tags", "1"]),
        (["bad\ttag"], ["input", "tags", "0"]),
        ([], ["input", "tags"]),
    ],
)
async def test_bad_tags_write_nothing(gql, people, engine, tags, field):
    data = await add(gql, [people["ids"]["ada"]], tags)
    payload = data["customerTagsAdd"]
    assert payload["customers"] == []
    assert payload["userErrors"][0]["field"] == field
    assert payload["userErrors"][0]["code"] in ("INVALID", "REQUIRED")
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM timeline_event"))).scalar() == 0


async def test_at_most_50_tags_all_or_nothing(gql, people, engine):
    ids = people["ids"]
    assert (await add(gql, [ids["ada"]], [f"t{i}" for i in range(49)]))["customerTagsAdd"][
        "userErrors"
    ] == []
    data = await add(gql, [ids["bob"], ids["ada"]], ["x", "y"])
    errors = data["customerTagsAdd"]["userErrors"]
    assert errors[0]["code"] == "INVALID" and "at most 50" in errors[0]["message"]
    async with engine.connect() as conn:
        bob_tags = (
            await conn.execute(
                text("SELECT tags FROM customer WHERE id = :i"), {"i": people["bob"].id}
            )
        ).scalar()
    assert bob_tags == []  # Bob was valid, but the call is one transaction


async def test_card_number_refused_as_a_tag(gql, people, engine):
    data = await add(gql, [people["ids"]["ada"]], ["4111 1111 1111 1111"])
    assert data["customerTagsAdd"]["userErrors"][0]["code"] == "CARD_NUMBER_REFUSED"
    async with engine.connect() as conn:
        found = (
            await conn.execute(text("SELECT count(*) FROM customer WHERE tags <> '{}'"))
        ).scalar()
    assert found == 0


async def test_filter_any_all_none(gql, people):
    ids = people["ids"]
    await add(gql, [ids["ada"], ids["bob"]], ["vip"])
    await add(gql, [ids["bob"], ids["cy"]], ["Wholesale"])

    async def names(f):
        data = await gql.data(FIND, {"f": {"tags": f}})
        return sorted(n["number"] for n in data["customers"]["nodes"])

    ada, bob, cy = people["ada"].number, people["bob"].number, people["cy"].number
    assert await names({"any": ["VIP"]}) == sorted([ada, bob])
    assert await names({"any": ["vip", "wholesale"]}) == sorted([ada, bob, cy])
    assert await names({"all": ["vip", "WHOLESALE"]}) == [bob]
    assert await names({"none": ["vip"]}) == [cy]
    assert await names({"none": ["never-used"]}) == sorted([ada, bob, cy])
    assert await names({"any": ["never-used"]}) == []
    assert await names({"any": ["vip"], "none": ["wholesale"]}) == [ada]


async def test_filter_refuses_a_tag_too_long(gql, people):
    body = await gql(FIND, {"f": {"tags": {"none": ["x" * 41]}}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_rep_tags_only_own_customers_and_counts_only_them(gql, people):
    ids = people["ids"]
    await add(gql, [ids["cy"]], ["vip"])
    rep = gql.as_(people["rep_token"])
    data = await rep.data(ADD, {"ids": [ids["ada"], ids["cy"]], "tags": ["vip"]})
    assert data["customerTagsAdd"]["userErrors"][0]["code"] == "NOT_FOUND"
    data = await rep.data(ADD, {"ids": [ids["ada"]], "tags": ["vip"]})
    assert data["customerTagsAdd"]["customers"][0]["tags"] == ["vip"]
    assert (await rep.data(TAGS))["tags"] == [{"name": "vip", "customerCount": 1}]
    assert (await gql.data(TAGS))["tags"] == [{"name": "vip", "customerCount": 2}]
    found = await rep.data(FIND, {"f": {"tags": {"any": ["vip"]}}})
    assert [n["number"] for n in found["customers"]["nodes"]] == [people["ada"].number]


async def test_site_user_cannot_tag(gql, engine, people):
    user_id, token = await make_user(engine, role="CUSTOMER", email="ada@example.com")
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE customer SET user_id = :u WHERE id = :c"),
            {"u": user_id, "c": people["ada"].id},
        )
    data = await gql.as_(token).data(ADD, {"ids": [people["ids"]["ada"]], "tags": ["me"]})
    assert data["customerTagsAdd"]["userErrors"][0]["code"] == "FORBIDDEN"


async def test_tags_prefix_and_limits(gql, people):
    await add(gql, [people["ids"]["ada"]], ["vip", "Victory", "wholesale", "50%_off"])
    found = await gql.data(TAGS, {"p": "VI"})
    assert [t["name"] for t in found["tags"]] == ["Victory", "vip"]
    assert [t["name"] for t in (await gql.data(TAGS, {"p": "50%"}))["tags"]] == ["50%_off"]
    assert (await gql.data(TAGS, {"p": "5_"}))["tags"] == []  # LIKE wildcards are literal
    assert len((await gql.data(TAGS, {"n": 2}))["tags"]) == 2
    body = await gql(TAGS, {"n": 5000})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_tags_facet_when_refining(gql, engine, people):
    # 401 customers tagged "bulk", 200 of them also "half": the search asks to refine.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO customer (first_name, tags)"
                " SELECT 'P' || i, CASE WHEN i % 2 = 0 THEN ARRAY['bulk', 'Half'] ELSE"
                " ARRAY['bulk'] END FROM generate_series(1, 401) AS i"
            )
        )
    data = await gql.data(
        """query($f: CustomerFilter) { customerSearch(filter: $f) { __typename
          ... on RefineSearch { tags { name customerCount } } } }""",
        {"f": {"tags": {"any": ["BULK"]}}},
    )
    assert data["customerSearch"]["tags"] == [
        {"name": "bulk", "customerCount": 401},
        {"name": "Half", "customerCount": 200},
    ]
