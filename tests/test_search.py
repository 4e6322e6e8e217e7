"""The search screen: every filter field, combinations, the cap, scoping, bad input."""

import dataclasses
from datetime import date
from decimal import Decimal

import httpx
import pytest

from server.app import create_app
from tests.conftest import GraphQLClient, gid
from tests.factories import (
    link_channel,
    make_account,
    make_address,
    make_custom_field,
    make_customer,
    make_order,
    make_sales_channel,
    make_user,
    set_custom_value,
)

# Every test here runs on the compiled read path and field by field (tests/conftest.py).
BOTH_PATHS = True

FIND = """query($f: CustomerFilter, $after: String, $first: Int, $order: CustomerOrder) {
  customers(filter: $f, first: $first, after: $after, orderBy: $order) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { number } } } }"""


@pytest.fixture
async def world(engine):
    rep_a, token_a = await make_user(engine, role="SALES_REP", email="a@reps.test")
    rep_b, _ = await make_user(engine, role="SALES_REP", email="b@reps.test")
    web = await make_sales_channel(engine, "web")
    shop = await make_sales_channel(engine, "shop")
    acme = await make_account(engine, name="Acme Holdings")
    tier = await make_custom_field(engine, "tier", "SELECT", options=["gold", "silver"])
    ltv = await make_custom_field(engine, "ltv", "NUMBER")
    since = await make_custom_field(engine, "since", "DATE")
    jose = await make_customer(
        engine,
        first_name="José",
        last_name="García",
        email="jose@example.com",
        phone="+14155550100",
        reference_id="OLD-1",
        sales_rep_id=rep_a,
        account_id=acme.id,
    )
    ann = await make_customer(
        engine,
        first_name="Ann",
        last_name="Lee",
        kind="BUSINESS",
        company_name="Zeta Ltd",
        email="ann@example.com",
        phone="+442071234567",
        sales_rep_id=rep_b,
    )
    bob = await make_customer(
        engine,
        first_name="Bob",
        last_name="Garcia-Lopez",
        email="bob@example.com",
        sales_rep_id=rep_a,
    )
    await make_address(
        engine, jose.id, country="US", region="CA", city="San José", postal_code="94105"
    )
    await make_address(
        engine, ann.id, country="GB", region="ENG", city="London", postal_code="SW1A 1AA"
    )
    await make_address(
        engine, bob.id, country="US", region="NY", city="New York", postal_code="10001"
    )
    order = await make_order(engine, ann.id)
    await link_channel(engine, jose.id, web.id)
    await link_channel(engine, ann.id, shop.id)
    await link_channel(engine, bob.id, web.id)
    await link_channel(engine, bob.id, shop.id)
    await set_custom_value(engine, jose.id, tier.id, text_value="gold")
    await set_custom_value(engine, ann.id, tier.id, text_value="silver")
    await set_custom_value(engine, jose.id, ltv.id, number_value=Decimal("150.5"))
    await set_custom_value(engine, ann.id, ltv.id, number_value=Decimal("20"))
    await set_custom_value(engine, bob.id, since.id, date_value=date(2021, 6, 1))
    return {
        "jose": jose.number,
        "ann": ann.number,
        "bob": bob.number,
        "order": order.number,
        "web": gid("SalesChannel", web.id),
        "shop": gid("SalesChannel", shop.id),
        "rep_a": gid("User", rep_a),
        "token_a": token_a,
        "acme": acme.number,
    }


async def found(gql, f: dict) -> set[str]:
    data = await gql.data(FIND, {"f": f, "first": 100})
    return {e["node"]["number"] for e in data["customers"]["edges"]}


CASES = [
    ({"firstName": "jose"}, {"jose"}),
    ({"firstName": "JOSÉ"}, {"jose"}),
    ({"lastName": "garcia"}, {"jose"}),
    ({"lastName": "gar", "nameMatch": "PREFIX"}, {"jose", "bob"}),
    # 4 characters and more: an index range instead of LIKE (resolvers/search.py).
    ({"lastName": "GARCÍ", "nameMatch": "PREFIX"}, {"jose", "bob"}),
    ({"lastName": " garcia-l ", "nameMatch": "PREFIX"}, {"bob"}),
    ({"lastName": "garcib", "nameMatch": "PREFIX"}, set()),
    ({"firstName": "Jose", "nameMatch": "PREFIX"}, {"jose"}),
    ({"lastName": "Garsia", "nameMatch": "FUZZY"}, {"jose"}),
    ({"firstName": "Xavier"}, set()),
    ({"company": "zeta ltd"}, {"ann"}),
    ({"company": "acme holdings", "kind": "ACCOUNT"}, {"jose"}),
    ({"company": "acme holdings"}, set()),
    ({"country": "US"}, {"jose", "bob"}),
    ({"country": "us", "state": "CA"}, {"jose"}),
    ({"state": "GB-ENG"}, {"ann"}),
    ({"city": "san jose"}, {"jose"}),
    ({"postalCode": "sw1a1aa"}, {"ann"}),
    ({"postalCode": " SW1A 1AA "}, {"ann"}),
    ({"referenceId": "OLD-1"}, {"jose"}),
    ({"email": "ANN@example.com"}, {"ann"}),
    ({"phone": "(415) 555-0100"}, {"jose"}),
    ({"phone": "+1 415 555 0100"}, {"jose"}),
    ({"phone": "4155550100"}, {"jose"}),
    ({"phone": "020 7123 4567", "country": "GB"}, {"ann"}),
    ({"customFields": [{"key": "tier", "equals": "gold"}]}, {"jose"}),
    ({"customFields": [{"key": "ltv", "min": "100"}]}, {"jose"}),
    ({"customFields": [{"key": "ltv", "min": "10", "max": "100"}]}, {"ann"}),
    ({"customFields": [{"key": "since", "max": "2022-01-01"}]}, {"bob"}),
    ({"country": "US", "lastName": "garcia"}, {"jose"}),
    ({"country": "US", "city": "London"}, set()),
]


@pytest.mark.parametrize("f,expected", CASES, ids=[str(c[0]) for c in CASES])
async def test_each_filter(gql, world, f, expected):
    assert await found(gql, f) == {world[k] for k in expected}


async def test_id_filters(gql, world):
    assert await found(gql, {"number": world["jose"]}) == {world["jose"]}
    assert await found(gql, {"number": world["acme"]}) == {world["jose"]}  # account number
    assert await found(gql, {"orderId": world["order"]}) == {world["ann"]}
    assert await found(gql, {"salesRep": world["rep_a"]}) == {world["jose"], world["bob"]}
    assert await found(gql, {"salesChannels": [world["web"]]}) == {world["jose"], world["bob"]}
    assert await found(gql, {"excludeSalesChannels": [world["shop"]]}) == {world["jose"]}
    assert await found(
        gql, {"salesChannels": [world["web"]], "excludeSalesChannels": [world["shop"]]}
    ) == {world["jose"]}


async def test_accounts_mode_lists_accounts(gql, world):
    data = await gql.data(
        "query($f: CustomerFilter) { accounts(filter: $f) { edges { node { number name } } } }",
        {"f": {"kind": "ACCOUNT", "company": "acme", "nameMatch": "PREFIX"}},
    )
    assert [e["node"]["number"] for e in data["accounts"]["edges"]] == [world["acme"]]


@pytest.mark.parametrize("field", ["NAME", "NUMBER", "CREATED_AT", "UPDATED_AT"])
async def test_filtered_pages_are_stable(gql, engine, field):
    for i in range(13):
        await make_customer(engine, first_name="Page", last_name=f"Walker{i:02d}")
    await make_customer(engine, first_name="Other", last_name="Person")
    seen, after = [], None
    while True:
        data = await gql.data(
            FIND,
            {
                "f": {"firstName": "page"},
                "first": 4,
                "after": after,
                "order": {"field": field, "direction": "DESC"},
            },
        )
        page = data["customers"]
        assert page["totalCount"] == 13
        seen += [e["node"]["number"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 13 == len(set(seen))


SEARCH = """query($f: CustomerFilter, $first: Int) { customerSearch(filter: $f, first: $first) {
  __typename
  ... on CustomerSearchMatches { customers { totalCount edges { node { number } } } }
  ... on RefineSearch { message countAtLeast cap sampleSize kinds { value count }
      states { value count } salesChannels { salesChannel { code } count }
      salesReps { salesRep { email } count } }
} }"""


async def capped(engine, settings, token: str, cap: int) -> GraphQLClient:
    app = create_app(engine=engine, settings=dataclasses.replace(settings, search_cap=cap))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    return GraphQLClient(http, token)


async def test_search_answers_matches_under_the_cap(engine, settings, admin_token, world):
    gql = await capped(engine, settings, admin_token, cap=2)
    data = await gql.data(SEARCH, {"f": {"country": "GB"}})
    result = data["customerSearch"]
    assert result["__typename"] == "CustomerSearchMatches"
    assert result["customers"]["totalCount"] == 1


async def test_search_asks_to_refine_above_the_cap(engine, settings, admin_token, world):
    gql = await capped(engine, settings, admin_token, cap=2)
    result = (await gql.data(SEARCH, {"f": {}}))["customerSearch"]
    assert result["__typename"] == "RefineSearch"
    assert result["countAtLeast"] == 3 and result["cap"] == 2 and result["sampleSize"] == 3
    assert {f["value"]: f["count"] for f in result["kinds"]} == {"INDIVIDUAL": 2, "BUSINESS": 1}
    assert {f["value"]: f["count"] for f in result["states"]} == {
        "US-CA": 1,
        "US-NY": 1,
        "GB-ENG": 1,
    }
    assert {f["salesChannel"]["code"]: f["count"] for f in result["salesChannels"]} == {
        "web": 2,
        "shop": 2,
    }
    assert {f["salesRep"]["email"]: f["count"] for f in result["salesReps"]} == {
        "a@reps.test": 2,
        "b@reps.test": 1,
    }
    # No filter at all: never 100,000 rows, always a refine answer.
    default_cap = await gql.data("{ customerSearch { __typename } }")
    assert default_cap["customerSearch"]["__typename"] in {"RefineSearch", "CustomerSearchMatches"}


async def test_sales_rep_search_counts_and_facets_are_scoped(engine, settings, world):
    gql = await capped(engine, settings, world["token_a"], cap=1)
    result = (await gql.data(SEARCH, {"f": {}}))["customerSearch"]
    assert result["__typename"] == "RefineSearch" and result["sampleSize"] == 2
    assert {f["salesRep"]["email"] for f in result["salesReps"]} == {"a@reps.test"}
    assert {f["value"] for f in result["states"]} == {"US-CA", "US-NY"}
    found_rep = await gql.data(FIND, {"f": {"country": "GB"}, "first": 10})
    assert found_rep["customers"]["edges"] == []


@pytest.mark.parametrize(
    "f,needle",
    [
        ({"country": "XX"}, "Unknown country"),
        ({"country": "US", "state": "ZZ"}, "Unknown state"),
        ({"state": "CA"}, "needs 'country'"),
        ({"phone": "not a phone"}, "phone"),
        ({"customFields": [{"key": "nope", "equals": "x"}]}, "Unknown custom field"),
        ({"customFields": [{"key": "ltv", "equals": "abc"}]}, "not a valid NUMBER"),
        ({"customFields": [{"key": "tier", "min": "a"}]}, "Ranges apply"),
        ({"salesRep": gid("Customer", 1)}, "expected User"),
    ],
)
async def test_bad_input(gql, world, f, needle):
    body = await gql(FIND, {"f": f, "first": 10})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert needle in body["errors"][0]["message"]


async def test_first_above_the_limit(gql, world):
    body = await gql(SEARCH, {"f": {"country": "US"}, "first": 401})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_merged_customers_only_when_asked(gql, engine, world):
    from sqlalchemy import text

    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE customer SET status = 'MERGED',"
                " merged_into_id = (SELECT min(id) FROM customer) WHERE number = :n"
            ),
            {"n": world["bob"]},
        )
    assert await found(gql, {"country": "US"}) == {world["jose"]}
    assert await found(gql, {"country": "US", "status": ["MERGED"]}) == {world["bob"]}
