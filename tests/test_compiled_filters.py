"""`customers(filter:)` on the compiled read path: the search screen's own clauses
(resolvers/search.py `plain_conditions`) compiled into the one statement, byte-identical to
the field-by-field path for each role. Custom-field criteria and bad input fall back."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import text

from tests.factories import make_customer, make_user
from tests.test_compiled import both, same  # noqa: F401 - fixtures
from tests.test_search import CASES, gid, world  # noqa: F401 - fixtures

QUERY = """query($f: CustomerFilter, $first: Int, $after: String) {
  customers(first: $first, after: $after, filter: $f) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { number firstName lastName companyName status
      addresses { country region city postalCode } } }
  }
}"""

ROLES = ["ADMIN", "SALES_REP", "CUSTOMER"]


@pytest.fixture
async def tokens(engine, world):  # noqa: F811
    _, admin = await make_user(engine, role="ADMIN", email="boss@filters.test")
    site_id, site = await make_user(engine, role="CUSTOMER", email="jose@site.test")
    async with engine.begin() as conn:  # the site user is José's customer record
        await conn.execute(
            text("UPDATE customer SET user_id = :u WHERE number = :n"),
            {"u": site_id, "n": world["jose"]},
        )
    return {"ADMIN": admin, "SALES_REP": world["token_a"], "CUSTOMER": site}


def _uses_custom_fields(f: dict) -> bool:
    return bool(f.get("customFields"))


@pytest.mark.parametrize("role", ROLES)
async def test_every_search_filter_is_identical(both, world, tokens, role):  # noqa: F811
    token = tokens[role]
    seen = 0
    for f, _expected in CASES:
        body = await same(
            both, token, QUERY, {"f": f, "first": 10}, compiled=not _uses_custom_fields(f)
        )
        assert b'"errors"' not in body, (f, body)
        seen += len(orjson.loads(body)["data"]["customers"]["edges"])
    assert seen > 0  # the role sees something through the filters


@pytest.mark.parametrize("role", ROLES)
async def test_id_status_and_account_filters_are_identical(
    both,  # noqa: F811
    world,  # noqa: F811
    tokens,
    engine,
    role,
):
    survivor = await make_customer(engine, first_name="New", email="new@x.test")
    await make_customer(
        engine,
        first_name="Old",
        last_name="Garcia",
        email="old@x.test",
        status="MERGED",
        merged_into_id=survivor.id,
    )
    filters = [
        {"number": world["jose"]},
        {"number": world["acme"]},
        {"number": world["acme"], "kind": "ACCOUNT"},
        {"orderId": world["order"]},
        {"salesRep": world["rep_a"]},
        {"salesChannels": [world["web"]]},
        {"excludeSalesChannels": [world["shop"]]},
        {"salesChannels": [world["web"]], "excludeSalesChannels": [world["shop"]]},
        {"status": ["MERGED"]},
        {"status": ["ACTIVE", "MERGED"], "lastName": "gar", "nameMatch": "PREFIX"},
        {"status": ["ARCHIVED"]},
        {"tags": {"none": ["never-used"]}},
        {"tags": {"any": ["never-used"], "all": ["x"]}},
        {"emailMarketing": "NOT_SUBSCRIBED", "smsMarketing": "NOT_SUBSCRIBED"},
        {"emailMarketing": "SUBSCRIBED"},
        {},
    ]
    for f in filters:
        body = await same(both, tokens[role], QUERY, {"f": f, "first": 10}, compiled=True)
        assert b'"errors"' not in body, (f, body)


async def test_filtered_cursor_walk_is_identical(both, world, tokens):  # noqa: F811
    """Page through a filter one customer at a time, forwards: cursors and pageInfo agree."""
    after, numbers = None, []
    for _ in range(5):
        body = await same(
            both,
            tokens["ADMIN"],
            QUERY,
            {"f": {"country": "US"}, "first": 1, "after": after},
            compiled=True,
        )
        conn = orjson.loads(body)["data"]["customers"]
        numbers += [e["node"]["number"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert sorted(numbers) == sorted([world["jose"], world["bob"]])


@pytest.mark.parametrize(
    "f",
    [
        {"country": "Narnia"},
        {"state": "XX-YY"},
        {"phone": "not a phone"},
        {"salesRep": gid("Customer", 1)},
        {"salesChannels": ["not-an-id"]},
        {"customFields": [{"key": "nope", "equals": "x"}]},
        {"customFields": [{"key": "tier", "min": "1"}]},
    ],
)
async def test_bad_filters_fall_back_with_the_same_error(both, world, tokens, f):  # noqa: F811
    body = await same(both, tokens["ADMIN"], QUERY, {"f": f, "first": 10}, compiled=False)
    assert orjson.loads(body)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


SEARCH = """query($f: CustomerFilter, $first: Int, $after: String) {
  customerSearch(filter: $f, first: $first, after: $after) {
    __typename
    ... on CustomerSearchMatches { customers { totalCount
      pageInfo { hasNextPage endCursor } edges { cursor node { number displayName } } } }
    ... on RefineSearch { message countAtLeast cap sampleSize kinds { value count }
      states { value count } salesReps { salesRep { email } count } }
  }
}"""


@pytest.mark.parametrize("role", ROLES)
async def test_customer_search_matches_are_identical(both, world, tokens, role):  # noqa: F811
    """The search screen's matches compile (the filter's own clauses, the cap as a guard)."""
    for f, _expected in CASES:
        if _uses_custom_fields(f):
            continue
        body = await same(both, tokens[role], SEARCH, {"f": f, "first": 2}, compiled=True)
        assert b"CustomerSearchMatches" in body, (f, body)
    page = orjson.loads(
        await same(both, tokens[role], SEARCH, {"f": {}, "first": 1}, compiled=True)
    )["data"]["customerSearch"]["customers"]
    if page["pageInfo"]["hasNextPage"]:
        after = page["pageInfo"]["endCursor"]
        await same(both, tokens[role], SEARCH, {"f": {}, "first": 1, "after": after}, compiled=True)


async def test_customer_search_over_the_cap_refines_compiled(engine, world, tokens):  # noqa: F811
    """Over the cap the statement answers RefineSearch itself; one under it the compiled
    matches stand: the same bytes as field by field either way."""
    import httpx

    from server.app import create_app
    from server.settings import Settings

    pair = []
    for compiled in (True, False):
        settings = Settings(database_url="unused", compiled_reads=compiled, search_cap=1)
        transport = httpx.ASGITransport(app=create_app(engine=engine, settings=settings))
        pair.append(httpx.AsyncClient(transport=transport, base_url="http://test"))
    try:
        body = await same(pair, tokens["ADMIN"], SEARCH, {"f": {"country": "US"}}, compiled=True)
        assert orjson.loads(body)["data"]["customerSearch"]["__typename"] == "RefineSearch"
        one = {"number": world["jose"]}
        body = await same(pair, tokens["ADMIN"], SEARCH, {"f": one}, compiled=True)
        assert b"CustomerSearchMatches" in body
    finally:
        for client in pair:
            await client.aclose()


ACCOUNTS = """query($f: CustomerFilter, $first: Int) {
  accounts(filter: $f, first: $first) { totalCount pageInfo { hasNextPage endCursor }
    nodes { number name customers { number } } } }"""


@pytest.mark.parametrize("role", ROLES)
async def test_account_filters_are_identical(both, world, tokens, role):  # noqa: F811
    """accounts(filter:): the accounts of the visible customers matching the filter."""
    seen = 0
    for f, _expected in CASES:
        compiled = not _uses_custom_fields(f)
        body = await same(both, tokens[role], ACCOUNTS, {"f": f, "first": 5}, compiled=compiled)
        assert b'"errors"' not in body, (f, body)
        seen += orjson.loads(body)["data"]["accounts"]["totalCount"]
    for f in ({"number": world["acme"], "kind": "ACCOUNT"}, {"company": "acme"}):
        await same(both, tokens[role], ACCOUNTS, {"f": f, "first": 5}, compiled=True)
    if role == "ADMIN":
        assert seen > 0  # some filters do match accounts
