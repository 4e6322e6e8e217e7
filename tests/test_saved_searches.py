"""Saved searches: create/update/delete, sharing, running them through the viewer's scope,
counts, Customer.savedSearches in a fixed number of statements, and stale filters."""

import pytest
from sqlalchemy import text

from tests.conftest import gid
from tests.factories import link_channel, make_address, make_customer, make_sales_channel, make_user

BOTH_PATHS = True

FIELDS = "id name filter shared editable customerCount problem owner { email }"
CREATE = f"""mutation($input: SavedSearchCreateInput!) {{ savedSearchCreate(input: $input) {{
  savedSearch {{ {FIELDS} }} userErrors {{ field code message }} }} }}"""
UPDATE = f"""mutation($input: SavedSearchUpdateInput!) {{ savedSearchUpdate(input: $input) {{
  savedSearch {{ {FIELDS} }} userErrors {{ field code message }} }} }}"""
DELETE = """mutation($id: ID!) { savedSearchDelete(input: {id: $id}) {
  deletedId userErrors { field code message } } }"""
LIST = f"{{ savedSearches {{ {FIELDS} }} }}"
RUN = """query($s: ID!, $f: CustomerFilter) { customers(savedSearch: $s, filter: $f, first: 50) {
  totalCount nodes { number } } }"""
SEARCH = """query($s: ID!) { customerSearch(savedSearch: $s) { __typename
  ... on CustomerSearchMatches { customers { nodes { number } } } } }"""
MEMBERS = """query($n: Int) { customers(first: $n) { nodes { number savedSearches { name } } } }"""


@pytest.fixture
async def world(engine, admin_token):
    rep, rep_token = await make_user(engine, role="SALES_REP", email="rep@example.com")
    other, other_token = await make_user(engine, role="SALES_REP", email="other@example.com")
    web = await make_sales_channel(engine, "web")
    a = await make_customer(engine, first_name="Ann", tags=["vip"], sales_rep_id=rep)
    b = await make_customer(engine, first_name="Bea", tags=["vip"], sales_rep_id=other)
    c = await make_customer(engine, first_name="Cy", sales_rep_id=rep)
    await make_address(engine, a.id, country="US")
    await make_address(engine, b.id, country="US")
    await make_address(engine, c.id, country="FR")
    await link_channel(engine, c.id, web.id)
    return {
        "a": a.number,
        "b": b.number,
        "c": c.number,
        "rep": rep_token,
        "other": other_token,
        "web": web,
    }


async def create(gql, **input):
    return (await gql.data(CREATE, {"input": input}))["savedSearchCreate"]


async def numbers(gql, saved_id, f=None):
    data = await gql.data(RUN, {"s": saved_id, "f": f})
    return sorted(n["number"] for n in data["customers"]["nodes"])


async def test_save_list_run_and_count(gql, world):
    made = await create(gql, name="US VIPs", filter={"tags": {"any": ["VIP"]}, "country": "US"})
    assert made["userErrors"] == []
    saved = made["savedSearch"]
    assert saved["filter"] == {"tags": {"any": ["VIP"]}, "country": "US"}
    assert (saved["shared"], saved["editable"], saved["customerCount"]) == (False, True, 2)
    assert saved["owner"]["email"] == "admin@example.com"
    assert await numbers(gql, saved["id"]) == sorted([world["a"], world["b"]])
    # AND with an ad-hoc filter
    assert await numbers(gql, saved["id"], {"firstName": "ann"}) == [world["a"]]
    search = await gql.data(SEARCH, {"s": saved["id"]})
    found = sorted(n["number"] for n in search["customerSearch"]["customers"]["nodes"])
    assert found == sorted([world["a"], world["b"]])
    assert [s["name"] for s in (await gql.data(LIST))["savedSearches"]] == ["US VIPs"]


async def test_private_and_shared_and_scope(gql, world):
    mine = (await create(gql, name="Mine", filter={"country": "US"}))["savedSearch"]
    shared = (await create(gql, name="All VIPs", filter={"tags": {"any": ["vip"]}}, shared=True))[
        "savedSearch"
    ]
    rep = gql.as_(world["rep"])
    listed = (await rep.data(LIST))["savedSearches"]
    assert [(s["name"], s["editable"], s["customerCount"]) for s in listed] == [
        ("All VIPs", False, 1)  # the rep's count covers their own customers
    ]
    assert await numbers(rep, shared["id"]) == [world["a"]]
    body = await rep(RUN, {"s": mine["id"]})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "No such saved search" in body["errors"][0]["message"]
    # A rep may not change or delete someone else's shared search.
    edit = await rep.data(UPDATE, {"input": {"id": shared["id"], "name": "Mine now"}})
    assert edit["savedSearchUpdate"]["userErrors"][0]["code"] == "FORBIDDEN"
    gone = await rep.data(DELETE, {"id": shared["id"]})
    assert gone["savedSearchDelete"]["userErrors"][0]["code"] == "FORBIDDEN"
    # The rep's own search, kept private from the other rep.
    own = (await create(rep, name="mine", filter={"country": "FR"}))["savedSearch"]
    assert own["customerCount"] == 1
    assert [s["name"] for s in (await gql.as_(world["other"]).data(LIST))["savedSearches"]] == [
        "All VIPs"
    ]


async def test_update_and_delete(gql, world, engine):
    saved = (await create(gql, name="US", filter={"country": "US"}))["savedSearch"]
    changed = await gql.data(
        UPDATE, {"input": {"id": saved["id"], "filter": {"country": "FR"}, "shared": True}}
    )
    after = changed["savedSearchUpdate"]["savedSearch"]
    assert (after["name"], after["filter"], after["shared"]) == ("US", {"country": "FR"}, True)
    assert await numbers(gql, saved["id"]) == [world["c"]]
    nulls = await gql.data(UPDATE, {"input": {"id": saved["id"], "name": None}})
    assert nulls["savedSearchUpdate"]["userErrors"][0]["code"] == "INVALID"
    deleted = await gql.data(DELETE, {"id": saved["id"]})
    assert deleted["savedSearchDelete"] == {"deletedId": saved["id"], "userErrors": []}
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM saved_search"))).scalar() == 0


@pytest.mark.parametrize(
    "input,field,code",
    [
        ({"name": " ", "filter": {}}, ["input", "name"], "REQUIRED"),
        ({"name": "x" * 101, "filter": {}}, ["input", "name"], "INVALID"),
        ({"name": "bad", "filter": {"country": "XX"}}, ["input", "filter"], "INVALID"),
        ({"name": "bad", "filter": {"tags": {"any": ["x" * 41]}}}, ["input", "filter"], "INVALID"),
        (
            {"name": "bad", "filter": {"customFields": [{"key": "nope", "equals": "1"}]}},
            ["input", "filter"],
            "INVALID",
        ),
    ],
)
async def test_bad_input_saves_nothing(gql, world, engine, input, field, code):
    made = await create(gql, **input)
    assert made["savedSearch"] is None
    assert (made["userErrors"][0]["field"], made["userErrors"][0]["code"]) == (field, code)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM saved_search"))).scalar() == 0


async def test_same_name_twice_and_site_users(gql, world, engine):
    await create(gql, name="VIPs", filter={})
    again = await create(gql, name="vips", filter={})
    assert again["userErrors"][0]["code"] == "DUPLICATE"
    _, site = await make_user(engine, role="CUSTOMER", email="site@example.com")
    refused = await create(gql.as_(site), name="Me", filter={})
    assert refused["userErrors"][0]["code"] == "FORBIDDEN"
    assert (await gql.as_(site).data(LIST))["savedSearches"] == []


async def test_a_deleted_channel_makes_it_stale_not_a_crash(gql, world, engine):
    web = gid("SalesChannel", world["web"].id)
    saved = (await create(gql, name="Web", filter={"salesChannels": [web]}))["savedSearch"]
    assert await numbers(gql, saved["id"]) == [world["c"]]
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM customer_sales_channel"))
        await conn.execute(text("DELETE FROM sales_channel"))
    body = await gql(RUN, {"s": saved["id"]})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "no longer applies" in error["message"] and "sales channel" in error["message"]
    (listed,) = (await gql.data(LIST))["savedSearches"]
    assert listed["customerCount"] is None
    assert "sales channel" in listed["problem"]


async def test_customer_saved_searches_in_fixed_statements(gql, world, engine, counter):
    await create(gql, name="VIPs", filter={"tags": {"any": ["vip"]}})
    await create(gql, name="France", filter={"country": "FR"}, shared=True)
    for i in range(20):
        await make_customer(engine, first_name=f"Zed{i:02d}", tags=["vip"])

    async def page(n):
        counter.reset()
        data = await gql.data(MEMBERS, {"n": n})
        return data["customers"]["nodes"], counter.count

    _, few = await page(3)
    large, many = await page(23)
    assert few == many, counter.statements
    by_number = {c["number"]: [s["name"] for s in c["savedSearches"]] for c in large}
    assert by_number[world["a"]] == ["VIPs"]
    assert by_number[world["c"]] == ["France"]
    assert sum(1 for names in by_number.values() if names == ["VIPs"]) == 22
