"""Privacy requests: the data export (scoped like every read) and the erasure, which
leaves no trace of the former email, phone or names in any text column of the database."""

import base64
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from models import ExportJob, IdempotencyKey, ImportJob, ImportJobError
from tests.conftest import GraphQLClient, gid
from tests.factories import (
    T0,
    insert_row,
    make_account,
    make_address,
    make_certificate,
    make_custom_field,
    make_customer,
    make_ledger,
    make_order,
    make_payment_method,
    make_user,
    set_custom_value,
)

BOTH_PATHS = True

FIRST, LAST = "Zelinda", "Quaxtermoor"
EMAIL, OLD_EMAIL, MERGED_EMAIL = "zq@privacy.test", "zelinda.old@privacy.test", "zq2@privacy.test"
PHONE = "+14155550199"  # stored E.164; phone_digits 14155550199; national 4155550199
NEEDLES = (FIRST, LAST, EMAIL, OLD_EMAIL, MERGED_EMAIL, PHONE, "14155550199", "4155550199")
NEEDLES += ("Quaxtermoor Street", "zelinda-login@privacy.test")

EXPORT = "query($id: ID!) { customerDataExport(customerId: $id) }"
ERASE = """mutation($id: ID!, $reason: String!) {
  customerErase(input: {customerId: $id, reason: $reason}) {
    customer { number status erasedAt firstName lastName email phone note displayName }
    event { kind summary data actor { email } }
    userErrors { field code message } } }"""
READ = """query($id: ID!) { customer(by: {id: $id}) {
  number status erasedAt displayName firstName lastName companyName email phone referenceId
  note addresses { name line1 city postalCode country phone }
  orders(first: 5) { nodes { number total { amount currency } } }
  balances { amount currency }
  customFields { key value }
  timeline(first: 20) { nodes { kind summary data } } } }"""


async def _text_hits(engine: AsyncEngine, needles: tuple[str, ...]) -> list[str]:
    """Every text, varchar, citext and json(b) column of every public table that holds one
    of the needles (case-insensitively), as table.column: needle."""
    async with engine.connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT c.table_name, c.column_name FROM information_schema.columns c"
                    " JOIN information_schema.tables t USING (table_schema, table_name)"
                    " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
                    " AND c.udt_name IN ('text', 'varchar', 'bpchar', 'citext', 'json', 'jsonb')"
                )
            )
        ).all()
        assert len(columns) > 40  # the search really covers the schema
        hits = []
        for table, column in columns:
            for needle in needles:
                found = (
                    await conn.execute(
                        text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE :p'),
                        {"p": f"%{needle}%"},
                    )
                ).scalar_one()
                if found:
                    hits.append(f"{table}.{column}: {needle}")
        return hits


async def _person(engine: AsyncEngine, gql: GraphQLClient) -> dict[str, Any]:
    """A customer with personal data everywhere it can be, written mostly through the API
    (so the timeline records it as in production)."""
    rep, rep_token = await make_user(engine, role="SALES_REP", email="rep@example.com")
    login, login_token = await make_user(
        engine,
        role="CUSTOMER",
        email="zelinda-login@privacy.test",
        first_name=FIRST,
        last_name=LAST,
    )
    account = await make_account(
        engine,
        name=f"{FIRST} {LAST}",
        billing_contact_name=f"{FIRST} {LAST}",
        billing_email=EMAIL,
        billing_phone=PHONE,
        billing_line1="9 Quaxtermoor Street",
    )
    await make_payment_method(engine, account.id)
    created = await gql.data(
        """mutation($input: CustomerCreateInput!) { customerCreate(input: $input) {
          customer { id } userErrors { code } } }""",
        {
            "input": {
                "firstName": FIRST,
                "lastName": LAST,
                "email": OLD_EMAIL,
                "phone": PHONE,
                "note": f"Prefers {FIRST}",
                "referenceId": "ZQ-1",
                "salesRepId": gid("User", rep),
                "accountId": gid("Account", account.id),
            }
        },
    )
    cid_gid = created["customerCreate"]["customer"]["id"]
    cid = int(base64.b64decode(cid_gid).decode().split(":")[1])
    update = """mutation($input: CustomerUpdateInput!) { customerUpdate(input: $input) {
      userErrors { code } } }"""
    assert (await gql.data(update, {"input": {"id": cid_gid, "email": EMAIL}}))["customerUpdate"][
        "userErrors"
    ] == []
    note = """mutation($input: CustomerAddNoteInput!) { customerAddNote(input: $input) {
      userErrors { code } } }"""
    await gql.data(note, {"input": {"customerId": cid_gid, "note": f"Called {FIRST} {LAST}"}})
    # Free text staff typed about the person: a tag, where consent came from, a saved search.
    tag = """mutation($input: CustomerTagsInput!) { customerTagsAdd(input: $input) {
      userErrors { code } } }"""
    added = await gql.data(tag, {"input": {"customerIds": [cid_gid], "tags": [f"{LAST} family"]}})
    assert added["customerTagsAdd"]["userErrors"] == []
    consent = """mutation($input: CustomerMarketingConsentUpdateInput!) {
      customerMarketingConsentUpdate(input: $input) { userErrors { code } } }"""
    source = f"phone call with {FIRST}"
    given = {"customerId": cid_gid, "email": {"state": "SUBSCRIBED", "source": source}}
    assert (await gql.data(consent, {"input": given}))["customerMarketingConsentUpdate"][
        "userErrors"
    ] == []
    saved = """mutation($input: SavedSearchCreateInput!) { savedSearchCreate(input: $input) {
      userErrors { code } } }"""
    search = {"name": "one person", "filter": {"lastName": LAST, "email": EMAIL}}
    assert (await gql.data(saved, {"input": search}))["savedSearchCreate"]["userErrors"] == []
    address = """mutation($input: AddressInput!) { addressCreate(input: $input) {
      userErrors { code } } }"""
    await gql.data(
        address,
        {
            "input": {
                "customerId": cid_gid,
                "name": f"{FIRST} {LAST}",
                "line1": "9 Quaxtermoor Street",
                "city": "Springfield",
                "region": "IL",
                "postalCode": "62701",
                "country": "US",
                "phone": PHONE,
                "isDefault": True,
            }
        },
    )
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE customer SET user_id = :u WHERE id = :c"), {"u": login, "c": cid}
        )
    order = await make_order(engine, cid)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE orders SET shipping_address = CAST(:a AS jsonb) WHERE id = :o"),
            {
                "a": (
                    f'{{"name": "{FIRST} {LAST}", "line1": "9 Quaxtermoor Street",'
                    ' "city": "Springfield", "region": "IL", "country": "US"}'
                ),
                "o": order.id,
            },
        )
    await make_ledger(engine, cid, ["30.00", "-10.00"])
    await make_certificate(engine, cid, reason="Resale")
    nickname = await make_custom_field(engine, "nickname")
    tier = await make_custom_field(engine, "tier", "SELECT", options=["gold", "silver"])
    await set_custom_value(engine, cid, nickname.id, text_value=f"{FIRST} the Great")
    await set_custom_value(engine, cid, tier.id, text_value="gold")
    # A record merged into this one keeps its own contact details until the erasure.
    merged = await make_customer(
        engine,
        first_name=FIRST,
        last_name=LAST,
        email=MERGED_EMAIL,
        phone=PHONE,
        status="MERGED",
        merged_into_id=cid,
    )
    await make_ledger(engine, merged.id, ["5.00", "-5.00"])
    # Outside the customer's rows: a rejected import row, an export filter, a stored response.
    job = await insert_row(
        engine, ImportJob, status="SUCCEEDED", file_name="people.csv", options={}
    )
    async with engine.begin() as conn:
        await conn.execute(
            insert(ImportJobError.__table__).values(
                job_id=job.id,
                line=2,
                column="phone",
                code="INVALID",
                message="Not a phone number",
                raw=[FIRST, LAST, EMAIL, "(415) 555-0199", "Springfield"],
            )
        )
        await conn.execute(
            insert(ImportJobError.__table__).values(
                job_id=job.id,
                line=3,
                column="email",
                code="INVALID",
                message="Not an email",
                raw=["Other", "Person", "not-an-email", "", "Springfield"],
            )
        )
        await conn.execute(
            insert(ExportJob.__table__).values(
                owner_id=rep,
                format="csv",
                criteria={"query": EMAIL},
                expires_at=T0,
            )
        )
        await conn.execute(
            insert(IdempotencyKey.__table__).values(
                actor_id=rep,
                key="k1",
                operation="test",
                request_hash=b"x",
                result={"echo": f"{FIRST} {LAST} <{EMAIL}>"},
            )
        )
    other = await make_customer(engine, first_name="Other", email="other@example.com")
    return {
        "id": cid,
        "gid": cid_gid,
        "merged": merged,
        "other": other,
        "rep_token": rep_token,
        "login_token": login_token,
        "account": account,
        "order": order,
    }


async def _money(engine: AsyncEngine) -> list[tuple]:
    async with engine.connect() as conn:
        ledger = (
            await conn.execute(
                text(
                    "SELECT id, customer_id, kind, amount, currency, balance_after"
                    " FROM ledger_transaction ORDER BY id"
                )
            )
        ).all()
        orders = (
            await conn.execute(
                text("SELECT id, subtotal, tax_total, shipping_total, total FROM orders")
            )
        ).all()
        lines = (await conn.execute(text("SELECT * FROM order_line ORDER BY id"))).all()
        certificates = (
            await conn.execute(text("SELECT * FROM tax_exemption_certificate ORDER BY id"))
        ).all()
    return [*map(tuple, ledger), *map(tuple, orders), *map(tuple, lines), *map(tuple, certificates)]


async def test_erasure_leaves_no_trace(engine, gql, admin_token):
    p = await _person(engine, gql)
    assert len(await _text_hits(engine, NEEDLES)) > 20  # the needles were everywhere
    before = await _money(engine)

    body = await gql.data(ERASE, {"id": p["gid"], "reason": "GDPR request #4711"})
    payload = body["customerErase"]
    assert payload["userErrors"] == []
    erased = payload["customer"]
    assert erased["status"] == "ERASED" and erased["erasedAt"]
    assert [erased[k] for k in ("firstName", "lastName", "email", "phone", "note")] == [None] * 5
    assert erased["displayName"] == erased["number"]
    event = payload["event"]
    assert event["kind"] == "CUSTOMER_ERASED"
    assert event["data"] == {"reason": "GDPR request #4711", "mergedRecords": [p["merged"].number]}
    assert event["actor"] == {"email": "admin@example.com"}

    assert await _text_hits(engine, NEEDLES) == []
    assert await _money(engine) == before  # ledger, order totals, lines and tax records kept

    async with engine.connect() as conn:
        methods = (await conn.execute(text("SELECT count(*) FROM payment_method"))).scalar_one()
        login = (
            await conn.execute(
                text("SELECT is_active, password_hash FROM app_user WHERE role = 'CUSTOMER'")
            )
        ).one()
        kept = (
            await conn.execute(text("SELECT raw FROM import_job_error WHERE line = 3"))
        ).scalar_one()
        shipped = (await conn.execute(text("SELECT shipping_address FROM orders"))).scalar_one()
        merged = (
            await conn.execute(
                text("SELECT status, erased_at IS NOT NULL FROM customer WHERE id = :i"),
                {"i": p["merged"].id},
            )
        ).one()
    assert methods == 0  # the account was this person's only: its tokens are gone
    assert tuple(login) == (False, None)  # the site user can no longer sign in
    assert kept == ["Other", "Person", "not-an-email", "", "Springfield"]  # others' rows stay
    assert shipped == {"country": "US", "region": "IL"}
    assert tuple(merged) == ("MERGED", True)

    # Cannot be found by any former email, phone or name, on either read path.
    lookup = "query($e: String!) { customer(by: {email: $e}) { number } }"
    for email in (EMAIL, OLD_EMAIL, MERGED_EMAIL):
        assert (await gql.data(lookup, {"e": email}))["customer"] is None
    terms = [("firstName", FIRST), ("lastName", LAST), ("phone", PHONE), ("phone", "4155550199")]
    terms += [("email", e) for e in (EMAIL, OLD_EMAIL, MERGED_EMAIL)]
    for name, term in terms:
        found = await gql.data(
            """query($f: CustomerFilter!) { customerSearch(filter: $f) {
            ... on CustomerSearchMatches { customers { nodes { number } } } } }""",
            {"f": {name: term, "status": ["ACTIVE", "ARCHIVED", "MERGED", "ERASED"]}},
        )
        assert found["customerSearch"]["customers"]["nodes"] == [], term
    dups = await gql.data("{ duplicateCustomers(by: [NAME]) { nodes { customers { number } } } }")
    assert dups["duplicateCustomers"]["nodes"] == []


async def test_erased_customer_reads_the_same_on_both_paths(engine, gql, client, settings):
    p = await _person(engine, gql)
    await gql.data(ERASE, {"id": p["gid"], "reason": "GDPR request #1"})
    read = await gql.data(READ, {"id": p["gid"]})
    c = read["customer"]
    assert c["status"] == "ERASED" and c["erasedAt"]
    assert [c[k] for k in ("firstName", "lastName", "companyName", "email", "phone")] == [None] * 5
    assert c["referenceId"] is None and c["note"] is None
    assert c["addresses"] == [
        {
            "name": None,
            "line1": "[erased]",
            "city": None,
            "postalCode": None,
            "country": "US",
            "phone": None,
        }
    ]
    assert c["orders"]["nodes"] == [
        {"number": p["order"].number, "total": {"amount": "33.00", "currency": "USD"}}
    ]
    assert c["balances"] == [{"amount": "20.00", "currency": "USD"}]
    assert {f["key"]: f["value"] for f in c["customFields"]} == {
        "nickname": "[erased]",
        "tier": "gold",
    }
    kinds = [e["kind"] for e in c["timeline"]["nodes"]]
    assert kinds[0] == "CUSTOMER_ERASED"
    for e in c["timeline"]["nodes"]:
        assert FIRST not in str(e) and EMAIL not in str(e) and OLD_EMAIL not in str(e)
    update = next(e for e in c["timeline"]["nodes"] if e["kind"] == "CUSTOMER_UPDATED")
    assert update["data"] == {"changes": {"email": {"old": "[erased]", "new": "[erased]"}}}
    assert update["summary"] == "Updated email"
    # A list read finds it without names (and the compiled and field-by-field bytes agree:
    # this test runs on both paths with the same expectations).
    page = await gql.data(
        """{ customers(first: 10, filter: {status: [ERASED]}) {
        nodes { number status displayName email } } }"""
    )
    assert page["customers"]["nodes"] == [
        {"number": c["number"], "status": "ERASED", "displayName": c["number"], "email": None}
    ]


async def test_export_holds_everything_and_follows_scope(engine, gql, client, settings):
    p = await _person(engine, gql)
    doc = (await gql.data(EXPORT, {"id": p["gid"]}))["customerDataExport"]
    assert doc["format"] == "customer-graph.privacy-export.v1"
    assert list(doc) == [
        "format",
        "exportedAt",
        "customer",
        "siteUser",
        "mergedRecords",
        "addresses",
        "account",
        "orders",
        "ledger",
        "customFields",
        "tax",
        "marketingConsent",
        "timeline",
    ]
    assert doc["customer"]["email"] == EMAIL and doc["customer"]["phone"] == PHONE
    assert doc["siteUser"]["email"] == "zelinda-login@privacy.test"
    assert [m["email"] for m in doc["mergedRecords"]] == [MERGED_EMAIL]
    assert doc["addresses"][0]["line1"] == "9 Quaxtermoor Street"
    methods = doc["account"]["paymentMethods"]
    assert methods == [
        {
            "processor": "stripe",
            "brand": "visa",
            "last4": "4242",
            "expMonth": 12,
            "expYear": 2030,
            "isDefault": True,
            "createdAt": methods[0]["createdAt"],
        }
    ]
    assert "tok_visa_123" not in str(doc)  # the token is a credential, not exported
    assert doc["orders"][0]["total"] == "33.00" and len(doc["orders"][0]["lines"]) == 2
    assert doc["ledger"]["balances"] == [{"currency": "USD", "balance": "20.00"}]
    assert len(doc["ledger"]["entries"]) == 4  # the merged record's entries too
    assert {f["key"]: f["value"] for f in doc["customFields"]} == {
        "nickname": f"{FIRST} the Great",
        "tier": "gold",
    }
    assert doc["tax"]["status"] == "TAXABLE"
    assert doc["tax"]["exemptionCertificates"][0]["reason"] == "Resale"
    assert "NOTE_ADDED" in [e["kind"] for e in doc["timeline"]]
    assert doc["customer"]["tags"] == [f"{LAST} family"]
    email_consent = doc["marketingConsent"]["email"]
    assert (email_consent["state"], email_consent["optInLevel"]) == ("SUBSCRIBED", "SINGLE")
    assert email_consent["source"] == f"phone call with {FIRST}"
    assert doc["marketingConsent"]["sms"]["state"] == "NOT_SUBSCRIBED"

    rep = gql.as_(p["rep_token"])
    assert (await rep.data(EXPORT, {"id": p["gid"]}))["customerDataExport"]["customer"][
        "number"
    ] == doc["customer"]["number"]
    other = gid("Customer", p["other"].id)
    assert (await rep.data(EXPORT, {"id": other}))["customerDataExport"] is None
    assert (await rep.data(READ, {"id": other}))["customer"] is None  # the same answer

    me = gql.as_(p["login_token"])
    mine = (await me.data(EXPORT, {"id": p["gid"]}))["customerDataExport"]
    assert mine["customer"]["email"] == EMAIL
    assert (await me.data(EXPORT, {"id": other}))["customerDataExport"] is None
    # A merged record's ID exports its survivor, as customer(id:) leads to it.
    merged = gid("Customer", p["merged"].id)
    assert (await gql.data(EXPORT, {"id": merged}))["customerDataExport"]["customer"][
        "number"
    ] == doc["customer"]["number"]

    anonymous = await gql.as_(None)(EXPORT, {"id": p["gid"]})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    wrong = await gql(EXPORT, {"id": gid("Order", p["order"].id)})
    assert wrong["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_export_after_erasure_holds_no_personal_data(engine, gql, client, settings):
    p = await _person(engine, gql)
    await gql.data(ERASE, {"id": p["gid"], "reason": "GDPR request #2"})
    doc = (await gql.data(EXPORT, {"id": p["gid"]}))["customerDataExport"]
    assert doc["customer"]["status"] == "ERASED"
    assert doc["siteUser"] is None
    flat = str(doc).casefold()
    for needle in NEEDLES:
        assert needle.casefold() not in flat, needle


def _errors(body: dict) -> list[tuple]:
    payload = next(iter(body.values()))
    return [(tuple(e["field"] or ()), e["code"]) for e in payload["userErrors"]]


async def test_erase_refusals(engine, gql, client, settings):
    p = await _person(engine, gql)
    rep = gql.as_(p["rep_token"])
    me = gql.as_(p["login_token"])
    reason = "GDPR request #3"
    assert _errors(await rep.data(ERASE, {"id": p["gid"], "reason": reason})) == [((), "FORBIDDEN")]
    assert _errors(await me.data(ERASE, {"id": p["gid"], "reason": reason})) == [((), "FORBIDDEN")]
    merged = gid("Customer", p["merged"].id)
    assert _errors(await gql.data(ERASE, {"id": merged, "reason": reason})) == [
        (("input", "customerId"), "CONFLICT")
    ]
    missing = gid("Customer", 999_999)
    assert _errors(await gql.data(ERASE, {"id": missing, "reason": reason})) == [
        (("input", "customerId"), "NOT_FOUND")
    ]
    assert _errors(await gql.data(ERASE, {"id": p["gid"], "reason": "  "})) == [
        (("input", "reason"), "REQUIRED")
    ]
    card = await gql.data(ERASE, {"id": p["gid"], "reason": "card 4111 1111 1111 1111"})
    assert _errors(card) == [(("input",), "CARD_NUMBER_REFUSED")]
    long = await gql.data(ERASE, {"id": p["gid"], "reason": "x" * 1001})
    assert _errors(long) == [(("input", "reason"), "INVALID")]
    for personal in (f"Request from {EMAIL}", f"{FIRST} asked", "call 415 555 0199"):
        assert _errors(await gql.data(ERASE, {"id": p["gid"], "reason": personal})) == [
            (("input", "reason"), "INVALID")
        ], personal
    assert _errors(await gql.data(ERASE, {"id": p["gid"], "reason": reason})) == []
    assert _errors(await gql.data(ERASE, {"id": p["gid"], "reason": reason})) == [
        (("input", "customerId"), "ERASED")
    ]

    # Erased is for good: no personal data back, no status change, no merge.
    update = """mutation($input: CustomerUpdateInput!) { customerUpdate(input: $input) {
      customer { email } userErrors { field code } } }"""
    refused = await gql.data(update, {"input": {"id": p["gid"], "email": EMAIL}})
    assert _errors(refused) == [(("input",), "ERASED")]
    allowed = await gql.data(update, {"input": {"id": p["gid"], "taxCode": "T-1"}})
    assert _errors(allowed) == []
    restore = """mutation($id: ID!) { customerRestore(input: {id: $id}) {
      customer { status } userErrors { field code } } }"""
    assert _errors(await gql.data(restore, {"id": p["gid"]})) == [(("input", "id"), "ERASED")]
    archive = restore.replace("customerRestore", "customerArchive")
    assert _errors(await gql.data(archive, {"id": p["gid"]})) == [(("input", "id"), "ERASED")]
    address = """mutation($input: AddressInput!) { addressCreate(input: $input) {
      userErrors { field code } } }"""
    added = await gql.data(
        address, {"input": {"customerId": p["gid"], "line1": "1 New St", "country": "US"}}
    )
    assert _errors(added) == [(("input", "customerId"), "ERASED")]
    merge = """mutation($input: CustomerMergeInput!) { customerMerge(input: $input) {
      userErrors { field code } } }"""
    other = gid("Customer", p["other"].id)
    for survivor, dup in ((other, p["gid"]), (p["gid"], other)):
        body = await gql.data(merge, {"input": {"survivorId": survivor, "duplicateIds": [dup]}})
        assert _errors(body) == [(("input",), "ERASED")]
    async with engine.connect() as conn:
        status = (
            await conn.execute(text("SELECT status FROM customer WHERE id = :i"), {"i": p["id"]})
        ).scalar_one()
    assert status == "ERASED"


async def test_shared_account_keeps_its_cards(engine, gql, client, settings):
    account = await make_account(engine, billing_email="zq@privacy.test", billing_phone=PHONE)
    await make_payment_method(engine, account.id)
    person = await make_customer(
        engine, first_name=FIRST, last_name=LAST, email=EMAIL, phone=PHONE, account_id=account.id
    )
    await make_customer(engine, first_name="Colleague", account_id=account.id)
    await make_address(engine, person.id, name=f"{FIRST} {LAST}")
    body = await gql.data(ERASE, {"id": gid("Customer", person.id), "reason": "request 5"})
    assert _errors(body) == []
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT name, billing_email, billing_phone FROM account WHERE id = :i"),
                {"i": account.id},
            )
        ).one()
        methods = (await conn.execute(text("SELECT count(*) FROM payment_method"))).scalar_one()
    assert tuple(row) == ("Acme Corp", None, None)  # the business's name and cards stay
    assert methods == 1
    assert await _text_hits(engine, (FIRST, LAST, EMAIL, PHONE)) == []


async def test_both_paths_answer_the_same_bytes_for_erased_customers(engine, app_engine, gql):
    """The compiled path and field by field, compared byte for byte, as each role."""
    import httpx

    from server.app import create_app
    from server.settings import Settings

    p = await _person(engine, gql)
    await gql.data(ERASE, {"id": p["gid"], "reason": "GDPR request #6"})
    number = (await gql.data(READ, {"id": p["gid"]}))["customer"]["number"]
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(
                app=create_app(
                    engine=app_engine,
                    settings=Settings(database_url="unused", debug=False, compiled_reads=c),
                )
            ),
            base_url="http://test",
        )
        for c in (True, False)
    ]
    compiled_read = READ.replace("kind summary data", "kind summary")
    queries = [
        (READ, {"id": p["gid"]}),
        (compiled_read, {"id": p["gid"]}),
        (compiled_read, {"id": gid("Customer", p["merged"].id)}),
        (
            "query($n: String!) { customer(by: {number: $n}) { number status erasedAt } }",
            {"n": number},
        ),
        (
            """{ customers(first: 10, filter: {status: [ERASED, MERGED, ACTIVE]}) {
            nodes { number status erasedAt displayName email phone mergedInto { number } } } }""",
            {},
        ),
        (
            "query($id: ID!) { node(id: $id) { ... on Customer { number erasedAt } } }",
            {"id": p["gid"]},
        ),
    ]
    admin = gql.token
    try:
        for token in (admin, p["rep_token"], p["login_token"]):
            for query, variables in queries:
                headers = {"Authorization": f"Bearer {token}"}
                payload = {"query": query, "variables": variables}
                compiled, loaders = [
                    await c.post("/graphql", json=payload, headers=headers) for c in clients
                ]
                assert compiled.content == loaders.content, (query, compiled.content[:500])
                path = compiled.headers.get("x-customer-graph-path")
                if token == p["login_token"]:  # the erased site user cannot sign in anymore
                    assert path is None and b"UNAUTHENTICATED" in loaders.content
                else:
                    assert path == "compiled", query  # JSON (timeline data) compiles too
    finally:
        for c in clients:
            await c.aclose()
