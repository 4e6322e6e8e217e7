"""Duplicate report: normalised criteria, narrowing, fuzzy names, dismissals, scoping."""

import pytest
from sqlalchemy import text

from tests.factories import make_customer, make_user

REPORT = """
query($by: [DuplicateCriterion!], $fuzzy: Boolean! = false, $first: Int, $after: String) {
  duplicateCustomers(by: $by, fuzzy: $fuzzy, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { reasons score similarity size keys customers { number } } }
  }
}
"""


def groups(data) -> list[set[str]]:
    return [
        {c["number"] for c in e["node"]["customers"]} for e in data["duplicateCustomers"]["edges"]
    ]


async def numbers(engine, *specs) -> list[str]:
    return [(await make_customer(engine, **spec)).number for spec in specs]


async def test_email_matches_case_and_whitespace(gql, engine):
    a, b, _ = await numbers(
        engine,
        {"email": "ada@example.com"},
        {"email": "  ada@example.com ", "first_name": "Augusta"},
        {"email": "grace@example.com"},
    )
    data = await gql.data(REPORT, {"by": ["EMAIL"]})
    assert groups(data) == [{a, b}]
    node = data["duplicateCustomers"]["edges"][0]["node"]
    assert node["reasons"] == ["EMAIL"] and node["score"] == 0.9 and node["size"] == 2
    assert node["keys"] == ["ada@example.com"]


async def test_phone_matches_e164(gql, engine):
    a, b, _ = await numbers(
        engine,
        {"phone": "+14155550100", "last_name": "One"},
        {"phone": "+14155550100", "last_name": "Two"},
        {"phone": "+14155550101"},
    )
    assert groups(await gql.data(REPORT, {"by": ["PHONE"]})) == [{a, b}]


async def test_name_ignores_case_accents_and_spaces(gql, engine):
    a, b, c, _ = await numbers(
        engine,
        {"first_name": "José", "last_name": "García"},
        {"first_name": " jose ", "last_name": "GARCIA"},
        {"first_name": "Jose", "last_name": "Garcia", "email": "jg@example.com"},
        {"first_name": "Josefa", "last_name": "Garcia"},
    )
    assert groups(await gql.data(REPORT, {"by": ["NAME"]})) == [{a, b, c}]


async def test_businesses_match_by_company(gql, engine):
    a, b = await numbers(
        engine,
        {"kind": "BUSINESS", "company_name": "Acme  Corp", "first_name": "X", "last_name": "Y"},
        {"kind": "BUSINESS", "company_name": "ACME corp", "first_name": "Z", "last_name": "W"},
    )
    assert groups(await gql.data(REPORT, {"by": ["NAME"]})) == [{a, b}]


async def test_combining_criteria_narrows(gql, engine):
    a, b, c = await numbers(
        engine,
        {"first_name": "Ann", "last_name": "Lee", "phone": "+442071234567"},
        {"first_name": "Ann", "last_name": "Lee", "phone": "+442071234567"},
        {"first_name": "Ann", "last_name": "Lee", "phone": "+442079999999"},
    )
    assert groups(await gql.data(REPORT, {"by": ["NAME"]})) == [{a, b, c}]
    data = await gql.data(REPORT, {"by": ["NAME", "PHONE"]})
    assert groups(data) == [{a, b}]
    assert data["duplicateCustomers"]["edges"][0]["node"]["score"] == pytest.approx(0.92)


async def test_fuzzy_names_pair_up_strongest_first(gql, engine):
    a, b, c, _ = await numbers(
        engine,
        {"first_name": "Jonathan", "last_name": "Smithson"},
        {"first_name": "Jonathon", "last_name": "Smithson"},
        {"first_name": "Jonathan", "last_name": "Smithsonn"},
        {"first_name": "Mary", "last_name": "Poppins"},
    )
    data = await gql.data(REPORT, {"by": ["NAME"], "fuzzy": True})
    pairs = groups(data)
    assert {a, b} in pairs and {a, c} in pairs
    assert all(len(p) == 2 for p in pairs)
    sims = [e["node"]["similarity"] for e in data["duplicateCustomers"]["edges"]]
    assert sims == sorted(sims, reverse=True) and min(sims) >= 0.6


async def test_dismissed_pair_never_shows_again(gql, engine):
    a, b, c = await numbers(
        engine,
        {"first_name": "Bo", "last_name": "Ek"},
        {"first_name": "Bo", "last_name": "Ek"},
        {"first_name": "Bo", "last_name": "Ek"},
    )
    data = await gql.data(REPORT, {"by": ["NAME"]})
    assert groups(data) == [{a, b, c}]
    rows = await gql.data("{ customers(first: 10) { edges { node { id number } } } }")
    ids = {e["node"]["number"]: e["node"]["id"] for e in rows["customers"]["edges"]}
    dismiss = """mutation($ids: [ID!]!) { duplicateDismiss(input: {customerIds: $ids}) {
        dismissedPairs userErrors { field code message } } }"""
    result = await gql.data(dismiss, {"ids": [ids[a], ids[b]]})
    assert result["duplicateDismiss"] == {"dismissedPairs": 1, "userErrors": []}
    assert groups(await gql.data(REPORT, {"by": ["NAME"]})) == [{a, b, c}]  # a-c, b-c remain
    await gql.data(dismiss, {"ids": [ids[a], ids[b], ids[c]]})
    assert groups(await gql.data(REPORT, {"by": ["NAME"]})) == []
    fuzzy = await gql.data(REPORT, {"by": ["NAME"], "fuzzy": True})
    assert groups(fuzzy) == []


async def test_merged_customers_are_not_reported(gql, engine):
    a, b = await numbers(engine, {"last_name": "Dup"}, {"last_name": "Dup"})
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE customer SET status = 'MERGED', merged_into_id ="
                " (SELECT id FROM customer WHERE number = :a) WHERE number = :b"
            ),
            {"a": a, "b": b},
        )
    assert groups(await gql.data(REPORT, {"by": ["NAME"]})) == []


async def test_pages_walk_every_group(gql, engine):
    for i in range(7):
        await numbers(engine, {"last_name": f"Twin{i}"}, {"last_name": f"Twin{i}"})
    seen, after = [], None
    while True:
        data = await gql.data(REPORT, {"by": ["NAME"], "first": 3, "after": after})
        seen += groups(data)
        page = data["duplicateCustomers"]
        assert page["totalCount"] == 7
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 7 and all(len(g) == 2 for g in seen)


async def test_sales_rep_sees_only_groups_of_their_customers(gql, engine, client):
    from tests.conftest import GraphQLClient

    rep_a, token_a = await make_user(engine, role="SALES_REP", email="a@reps.test")
    rep_b, _ = await make_user(engine, role="SALES_REP", email="b@reps.test")
    mine = await numbers(
        engine,
        {"last_name": "Mine", "sales_rep_id": rep_a},
        {"last_name": "Mine", "sales_rep_id": rep_a},
    )
    await numbers(
        engine,
        {"last_name": "Theirs", "sales_rep_id": rep_b},
        {"last_name": "Theirs", "sales_rep_id": rep_b},
        {"last_name": "Mixed", "sales_rep_id": rep_a},
        {"last_name": "Mixed", "sales_rep_id": rep_b},
    )
    as_rep = GraphQLClient(client, token_a)
    assert groups(await as_rep.data(REPORT, {"by": ["NAME"]})) == [set(mine)]
    assert len(groups(await gql.data(REPORT, {"by": ["NAME"]}))) == 3


async def test_bad_arguments(gql):
    body = await gql(REPORT, {"by": ["EMAIL"], "fuzzy": True})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql("{ duplicateCustomers(by: [NAME], threshold: 0.1) { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql("{ duplicateCustomers(by: [SHOE]) { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
