"""`taxDetermination`, `duplicateCustomers` and `customerMergePreview` on the compiled read
path: byte-identical to the field-by-field path for each role, one statement each, and
bad arguments answered by Strawberry."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from sqlalchemy import text

from tests.conftest import gid
from tests.factories import make_certificate, make_customer
from tests.test_compiled import ROLES, both, post, same, world  # noqa: F401 - fixtures

DETERMINE = """query($c: ID!, $r: String!, $on: Date) { taxDetermination(customerId: $c,
  region: $r, on: $on) { __typename exempt reason taxCode
  certificate { __typename id number country region validFrom validTo revokedAt isValid
                customer { number } } } }"""


@pytest.fixture
async def taxed(world, engine):  # noqa: F811
    """`other`: certificates for US-CA (two, the newest wins), FR (revoked in 2025);
    `bare`: EXEMPT with a tax code."""
    other = world["other"].id
    today = dt.date.today()
    await make_certificate(engine, other, number="CA-OLD", country="US", region="CA")
    await make_certificate(
        engine,
        other,
        number="CA-NEW",
        country="US",
        region="CA",
        valid_from=today - dt.timedelta(days=3),
        valid_to=today + dt.timedelta(days=30),
    )
    await make_certificate(
        engine,
        other,
        number="FR-1",
        country="FR",
        region=None,
        revoked_at=dt.datetime(2025, 6, 1, 23, 30, tzinfo=dt.UTC),
    )
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE customer SET tax_status = 'EXEMPT', tax_code = 'NGO' WHERE id = :i"),
            {"i": world["bare"].id},
        )
    return world


@pytest.mark.parametrize("role", ROLES)
async def test_tax_determination_is_identical(both, taxed, role):  # noqa: F811
    token = taxed["tokens"][role]
    other, bare = gid("Customer", taxed["other"].id), gid("Customer", taxed["bare"].id)
    answered = set()
    for c in (other, bare, gid("Customer", 987654)):
        for region, on in (
            ("US-CA", None),
            ("us-ca", "2024-06-01"),
            ("US-NY", None),
            ("US", None),
            ("FR", "2025-06-01"),
            ("FR", "2025-05-31"),
            ("FR", None),
        ):
            body = await same(
                both, token, DETERMINE, {"c": c, "r": region, "on": on}, compiled=True
            )
            result = orjson.loads(body)["data"]["taxDetermination"]
            answered.add(result and (result["reason"], (result["certificate"] or {}).get("number")))
    if role == "ADMIN":
        assert {("CERTIFICATE", "CA-NEW"), ("TAX_STATUS", None), ("NONE", None)} <= answered
        assert ("CERTIFICATE", "FR-1") in answered
    # bad input: Strawberry answers (an unknown region of a visible customer is an error)
    for variables in ({"c": other, "r": "US-ZZ"}, {"c": "bad", "r": "US"}):
        await same(both, token, DETERMINE, variables, compiled=False)


async def test_tax_determination_is_one_statement(both, taxed, counter):  # noqa: F811
    counter.reset()
    variables = {"c": gid("Customer", taxed["other"].id), "r": "US-CA"}
    body = await post(both[0], taxed["tokens"]["ADMIN"], DETERMINE, variables)
    assert b'"number":"CA-NEW"' in body
    assert counter.count == 2, counter.statements


# ---------------------------------------------------------------------------------------
# duplicateCustomers

DUPLICATES = """query($by: [DuplicateCriterion!], $fuzzy: Boolean! = false, $t: Float! = 0.6,
  $first: Int, $after: String) {
  duplicateCustomers(by: $by, fuzzy: $fuzzy, threshold: $t, first: $first, after: $after) {
    __typename totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { __typename reasons score similarity size keys
            customers { number displayName orders(first: 1) { totalCount } } } }
    nodes { size keys } } }"""


@pytest.fixture
async def dupes(world, engine):  # noqa: F811
    """Groups by email and name, one pair dismissed, some the rep's, fuzzy names."""
    from tests.factories import make_user

    rep = world["other"].sales_rep_id
    rep_b, token_b = await make_user(engine, role="SALES_REP", email="rep-b@example.com")
    specs = [
        ("Ada", "Lovelace", "ada@example.com", rep),
        ("ada", "LOVELACE", " ADA@example.com", rep),
        ("Adah", "Lovelace", "ada2@example.com", rep),
        ("Grace", "Hopper", "grace@example.com", rep_b),
        ("Grace", "Hoper", " grace@example.com", rep_b),
        ("Alan", "Turing", "alan@example.com", None),
        ("Alan", "Turing", "alan@example.com ", None),
        ("Alan", "Turring", "turing@example.com", None),
    ]
    made = [
        await make_customer(engine, first_name=f, last_name=last, email=e, sales_rep_id=r)
        for f, last, e, r in specs
    ]
    async with engine.begin() as conn:  # the two Alans by email are not the same person
        await conn.execute(
            text("INSERT INTO duplicate_dismissal (customer_a_id, customer_b_id) VALUES (:a, :b)"),
            {"a": made[5].id, "b": made[6].id},
        )
    return {**world, "rep_b": token_b}


REPORTS = [
    {},
    {"by": ["EMAIL"], "first": 1},
    {"by": ["NAME", "EMAIL", "NAME"]},
    {"by": ["NAME"], "fuzzy": True, "t": 0.3},
    {"by": ["NAME"], "fuzzy": True, "first": 2},
    {"by": ["NAME", "PHONE"], "fuzzy": True, "t": 0.5},
    {"by": ["PHONE"]},
]


@pytest.mark.parametrize("role", ROLES)
async def test_duplicates_are_identical(both, dupes, role):  # noqa: F811
    token = dupes["tokens"][role]
    for variables in REPORTS:
        body = await same(both, token, DUPLICATES, variables, compiled=True)
        # walk the pages with the compiled path's cursors
        for _ in range(5):
            info = orjson.loads(body)["data"]["duplicateCustomers"]["pageInfo"]
            if not info["hasNextPage"]:
                break
            walk = {**variables, "first": 1, "after": info["endCursor"]}
            body = await same(both, token, DUPLICATES, walk, compiled=True)
    # bad arguments: Strawberry answers
    for variables in ({"by": ["EMAIL"], "fuzzy": True}, {"t": 0.1}, {"first": 500}):
        await same(both, token, DUPLICATES, variables, compiled=False)


async def test_duplicates_scores_and_scope(both, dupes, counter):  # noqa: F811
    admin = orjson.loads(
        await same(both, dupes["tokens"]["ADMIN"], DUPLICATES, {"by": ["NAME"], "fuzzy": True})
    )["data"]["duplicateCustomers"]
    scores = {(e["node"]["score"], e["node"]["similarity"]) for e in admin["edges"]}
    assert all(0 < s < 1 and 0.6 <= sim <= 1 for s, sim in scores), scores
    # the same cached statement serves each rep their own customers
    seen = []
    for token in (dupes["tokens"]["SALES_REP"], dupes["rep_b"], dupes["tokens"]["SALES_REP"]):
        body = await same(both, token, DUPLICATES, {"by": ["NAME"]}, compiled=True)
        seen.append(
            sorted(
                c["displayName"]
                for e in orjson.loads(body)["data"]["duplicateCustomers"]["edges"]
                for c in e["node"]["customers"]
            )
        )
    assert seen[0] == seen[2] == ["Ada Lovelace", "ada LOVELACE"], seen
    assert seen[1] == [], seen  # Grace Hopper and Grace Hoper differ exactly
    counter.reset()
    await post(both[0], dupes["tokens"]["ADMIN"], DUPLICATES, {"by": ["EMAIL"]})
    assert counter.count == 2, counter.statements
