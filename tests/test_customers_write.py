"""Customer and address mutations: validation, races, versions, permissions, timeline."""

import asyncio
import logging
from unittest.mock import ANY

import pytest
from sqlalchemy import text

from tests.conftest import GraphQLClient, gid
from tests.factories import make_customer, make_sales_channel, make_user

CREATE = """mutation($input: CustomerCreateInput!) { customerCreate(input: $input) {
  customer { id number kind firstName email phone version salesChannels { code }
             salesRep { email } timeline(first: 5) { edges { node { kind } } } }
  userErrors { field code message } } }"""
UPDATE = """mutation($input: CustomerUpdateInput!) { customerUpdate(input: $input) {
  customer { firstName lastName email phone version note }
  userErrors { field code message } } }"""
ADDRESS = """mutation($input: AddressInput!) { addressCreate(input: $input) {
  address { id kind isDefault region country phone postalCode }
  customer { addresses { id kind isDefault } }
  userErrors { field code message } } }"""


async def count(engine, sql: str) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


async def test_create_normalises_and_records(gql, engine):
    web = await make_sales_channel(engine, "web")
    data = await gql.data(
        CREATE,
        {
            "input": {
                "firstName": " Ada ",
                "email": "Ada@Example.com",
                "phone": "(415) 555-2671",
                "salesChannelIds": [gid("SalesChannel", web.id)],
            }
        },
    )
    result = data["customerCreate"]
    assert result["userErrors"] == []
    c = result["customer"]
    assert (c["firstName"], c["phone"], c["version"]) == ("Ada", "+14155552671", 1)
    assert c["number"].startswith("C-") and c["salesChannels"] == [{"code": "web"}]
    assert [e["node"]["kind"] for e in c["timeline"]["edges"]] == ["CUSTOMER_CREATED"]


@pytest.mark.parametrize(
    "payload,field,code",
    [
        ({}, ["input"], "REQUIRED"),
        ({"firstName": "A", "email": "nope"}, ["input", "email"], "INVALID"),
        ({"firstName": "A", "phone": "12"}, ["input", "phone"], "INVALID"),
        ({"firstName": "A", "note": "card 4111 1111 1111 1111"}, ["input"], "CARD_NUMBER_REFUSED"),
        ({"firstName": "A", "salesRepId": gid("User", 999)}, ["input", "salesRepId"], "NOT_FOUND"),
        ({"firstName": "A", "accountId": gid("Account", 999)}, ["input", "accountId"], "NOT_FOUND"),
    ],
)
async def test_create_refuses_bad_input(gql, engine, payload, field, code, caplog):
    caplog.set_level(logging.DEBUG)
    data = await gql.data(CREATE, {"input": payload})
    assert data["customerCreate"]["customer"] is None
    error = data["customerCreate"]["userErrors"][0]
    assert (error["field"], error["code"]) == (field, code)
    assert await count(engine, "SELECT count(*) FROM customer") == 0
    assert "4111 1111 1111 1111" not in caplog.text


async def test_email_unique_even_under_a_race(gql, engine):
    results = await asyncio.gather(
        *(
            gql.data(CREATE, {"input": {"firstName": f"Twin{i}", "email": "same@example.com"}})
            for i in range(2)
        )
    )
    outcomes = sorted(len(r["customerCreate"]["userErrors"]) for r in results)
    assert outcomes == [0, 1]
    loser = next(r for r in results if r["customerCreate"]["userErrors"])
    assert loser["customerCreate"]["userErrors"][0]["field"] == ["input", "email"]
    assert loser["customerCreate"]["userErrors"][0]["code"] == "DUPLICATE"
    again = await gql.data(CREATE, {"input": {"email": "SAME@example.com"}})
    assert again["customerCreate"]["userErrors"][0]["code"] == "DUPLICATE"
    assert await count(engine, "SELECT count(*) FROM customer") == 1


async def test_a_failed_mutation_leaves_no_connection_in_a_transaction(gql, engine, app_engine):
    """Mutations drive their transaction by hand (resolvers.mutations.transaction): one that
    fails in the database (a duplicate email) rolls back, and no pooled connection goes
    back to the pool inside a transaction."""
    await gql.data(CREATE, {"input": {"email": "taken@example.com"}})
    for _ in range(3):
        data = await gql.data(CREATE, {"input": {"email": "taken@example.com"}})
        assert data["customerCreate"]["userErrors"][0]["code"] == "DUPLICATE"
    in_transaction = await count(
        engine,
        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'customer_graph_app'"
        " AND state LIKE 'idle in transaction%'",
    )
    assert in_transaction == 0
    assert app_engine.pool.checkedout() == 0
    data = await gql.data(CREATE, {"input": {"email": "free@example.com"}})
    assert data["customerCreate"]["userErrors"] == []
    assert await count(engine, "SELECT count(*) FROM customer") == 2
    assert await count(engine, "SELECT count(*) FROM timeline_event") == 2


async def test_update_with_versions(gql, engine):
    c = await make_customer(engine, email="v@example.com")
    ok = await gql.data(
        UPDATE,
        {
            "input": {
                "id": gid("Customer", c.id),
                "expectedVersion": 1,
                "lastName": "Byron",
                "phone": "+44 20 7123 4567",
            }
        },
    )
    assert ok["customerUpdate"]["customer"]["lastName"] == "Byron"
    assert ok["customerUpdate"]["customer"]["phone"] == "+442071234567"
    assert ok["customerUpdate"]["customer"]["version"] == 2
    event = await gql.data(
        f'{{ customer(number: "{c.number}") {{ timeline(first: 1) {{'
        " edges { node { kind data } } } } }"
    )
    assert event["customer"]["timeline"]["edges"][0]["node"] == {
        "kind": "CUSTOMER_UPDATED",
        "data": {
            "changes": {
                "last_name": {"old": "Lovelace", "new": "Byron"},
                "phone": {"old": None, "new": "+442071234567"},
            }
        },
    }
    stale = await gql.data(
        UPDATE, {"input": {"id": gid("Customer", c.id), "expectedVersion": 1, "firstName": "X"}}
    )
    assert stale["customerUpdate"]["userErrors"][0]["code"] == "CONFLICT"
    cleared = await gql.data(UPDATE, {"input": {"id": gid("Customer", c.id), "note": None}})
    assert cleared["customerUpdate"]["customer"]["firstName"] == "Ada"  # untouched
    nothing_left = await gql.data(
        UPDATE,
        {
            "input": {
                "id": gid("Customer", c.id),
                "firstName": None,
                "lastName": None,
                "email": None,
            }
        },
    )
    assert nothing_left["customerUpdate"]["userErrors"][0]["code"] == "REQUIRED"


async def test_archive_restore_and_notes(gql, engine):
    c = await make_customer(engine)
    variables = {"input": {"id": gid("Customer", c.id)}}
    archived = await gql.data(
        "mutation($input: CustomerIdInput!) { customerArchive(input:"
        " $input) { customer { status } } }",
        variables,
    )
    assert archived["customerArchive"]["customer"]["status"] == "ARCHIVED"
    restored = await gql.data(
        "mutation($input: CustomerIdInput!) { customerRestore(input:"
        " $input) { customer { status } } }",
        variables,
    )
    assert restored["customerRestore"]["customer"]["status"] == "ACTIVE"
    note = await gql.data(
        "mutation($input: CustomerAddNoteInput!) { customerAddNote(input: $input) {"
        " event { kind summary data } userErrors { code } } }",
        {"input": {"customerId": gid("Customer", c.id), "note": "Prefers phone calls"}},
    )
    assert note["customerAddNote"]["event"]["kind"] == "NOTE_ADDED"
    assert note["customerAddNote"]["event"]["data"] == {"note": "Prefers phone calls"}
    kinds = await gql.data(
        f'{{ customer(number: "{c.number}") {{ timeline {{ edges {{ node {{ kind }} }} }} }} }}'
    )
    assert [e["node"]["kind"] for e in kinds["customer"]["timeline"]["edges"]] == [
        "NOTE_ADDED",
        "CUSTOMER_RESTORED",
        "CUSTOMER_ARCHIVED",
    ]


async def test_site_user_edits_only_own_contact_details(client, engine):
    user_id, token = await make_user(engine, role="CUSTOMER", email="me@site.test")
    own = await make_customer(engine, user_id=user_id, email="me@site.test")
    other = await make_customer(engine, first_name="Other")
    me = GraphQLClient(client, token)
    ok = await me.data(UPDATE, {"input": {"id": gid("Customer", own.id), "firstName": "Me"}})
    assert ok["customerUpdate"]["customer"]["firstName"] == "Me"
    note = await me.data(UPDATE, {"input": {"id": gid("Customer", own.id), "note": "x"}})
    assert note["customerUpdate"]["userErrors"][0]["code"] == "FORBIDDEN"
    theirs = await me.data(UPDATE, {"input": {"id": gid("Customer", other.id), "firstName": "X"}})
    assert theirs["customerUpdate"]["userErrors"][0]["code"] == "NOT_FOUND"
    created = await me.data(CREATE, {"input": {"firstName": "New"}})
    assert created["customerCreate"]["userErrors"][0]["code"] == "FORBIDDEN"
    address = await me.data(
        ADDRESS,
        {"input": {"customerId": gid("Customer", own.id), "line1": "9 Home Rd", "country": "FR"}},
    )
    assert address["addressCreate"]["userErrors"] == []


async def test_sales_rep_creates_own_customers(client, engine):
    _, token = await make_user(engine, role="SALES_REP", email="rep@reps.test")
    other_rep, _ = await make_user(engine, role="SALES_REP", email="other@reps.test")
    as_rep = GraphQLClient(client, token)
    mine = await as_rep.data(CREATE, {"input": {"firstName": "Mine"}})
    assert mine["customerCreate"]["userErrors"] == []
    assert mine["customerCreate"]["customer"]["salesRep"] == {"email": "rep@reps.test"}
    theirs = await as_rep.data(
        CREATE, {"input": {"firstName": "X", "salesRepId": gid("User", other_rep)}}
    )
    assert theirs["customerCreate"]["userErrors"][0]["code"] == "FORBIDDEN"


async def test_numbers_keep_growing_past_six_digits(gql, engine):
    async with engine.begin() as conn:
        await conn.execute(text("SELECT setval('customer_number_seq', 999998)"))
    numbers = []
    for i in range(2):
        data = await gql.data(CREATE, {"input": {"firstName": f"N{i}"}})
        numbers.append(data["customerCreate"]["customer"]["number"])
    assert numbers == ["C-999999", "C-1000000"]


async def test_update_refusals(gql, engine):
    a = await make_customer(engine, email="a@example.com")
    await make_customer(engine, email="b@example.com", first_name="Bea")
    cases = [
        ({"email": "B@example.com"}, ["input", "email"], "DUPLICATE"),
        ({"email": "not-an-email"}, ["input", "email"], "INVALID"),
        ({"phone": "000"}, ["input", "phone"], "INVALID"),
        ({"referenceId": "4111 1111 1111 1111"}, ["input"], "CARD_NUMBER_REFUSED"),
        ({"salesRepId": gid("User", 999)}, ["input", "salesRepId"], "NOT_FOUND"),
        ({"id": gid("Customer", 999)}, ["input", "id"], "NOT_FOUND"),
    ]
    for over, field, code in cases:
        data = await gql.data(UPDATE, {"input": {"id": gid("Customer", a.id), **over}})
        assert data["customerUpdate"] == {
            "customer": None,
            "userErrors": [{"field": field, "code": code, "message": ANY}],
        }, over
    assert await count(engine, "SELECT count(*) FROM timeline_event") == 0
    assert await count(engine, f"SELECT version FROM customer WHERE id = {a.id}") == 1


async def test_phone_region_reads_national_numbers(gql, engine):
    data = await gql.data(
        CREATE, {"input": {"firstName": "Hans", "phone": "030 901820", "phoneRegion": "DE"}}
    )
    assert data["customerCreate"]["customer"]["phone"] == "+4930901820"


async def test_archive_note_refusals(gql, engine):
    c = await make_customer(engine)
    survivor = await make_customer(engine, first_name="Survivor")
    merged = await make_customer(
        engine, first_name="Merged", status="MERGED", merged_into_id=survivor.id
    )
    archive = """mutation($input: CustomerIdInput!) { customerArchive(input: $input) {
      customer { status } userErrors { field code message } } }"""
    note = """mutation($input: CustomerAddNoteInput!) { customerAddNote(input: $input) {
      event { kind } userErrors { field code message } } }"""
    missing = await gql.data(archive, {"input": {"id": gid("Customer", 999)}})
    assert missing["customerArchive"]["userErrors"] == [
        {"field": ["input", "id"], "code": "NOT_FOUND", "message": ANY}
    ]
    gone = await gql.data(archive, {"input": {"id": gid("Customer", merged.id)}})
    assert gone["customerArchive"]["userErrors"] == [
        {"field": ["input", "id"], "code": "CONFLICT", "message": ANY}
    ]
    twice = [await gql.data(archive, {"input": {"id": gid("Customer", c.id)}}) for _ in range(2)]
    assert twice[1]["customerArchive"] == {"customer": {"status": "ARCHIVED"}, "userErrors": []}
    for text_, field, code in (
        ("   ", ["input", "note"], "REQUIRED"),
        ("x" * 10_001, ["input", "note"], "INVALID"),
        ("card 4111 1111 1111 1111", ["input"], "CARD_NUMBER_REFUSED"),
    ):
        data = await gql.data(note, {"input": {"customerId": gid("Customer", c.id), "note": text_}})
        assert data["customerAddNote"] == {
            "event": None,
            "userErrors": [{"field": field, "code": code, "message": ANY}],
        }
    # Archiving twice records once; refused notes record nothing.
    assert await count(engine, "SELECT count(*) FROM timeline_event") == 1


async def test_unauthenticated_mutations_are_refused(client, engine):
    body = await GraphQLClient(client).__call__(CREATE, {"input": {"firstName": "Anon"}})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await count(engine, "SELECT count(*) FROM customer") == 0


async def test_national_phone_read_in_the_address_country(gql, engine):
    from tests.factories import make_address

    c = await make_customer(engine)
    await make_address(engine, c.id, country="FR", line1="1 Rue de Rivoli", is_default=True)
    data = await gql.data(
        UPDATE, {"input": {"id": gid("Customer", c.id), "phone": "01 42 60 30 00"}}
    )
    assert data["customerUpdate"]["customer"]["phone"] == "+33142603000"
    explicit = await gql.data(
        UPDATE,
        {"input": {"id": gid("Customer", c.id), "phone": "(415) 555-2671", "phoneRegion": "US"}},
    )
    assert explicit["customerUpdate"]["customer"]["phone"] == "+14155552671"
