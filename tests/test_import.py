"""Importing customers: upsert by key, the write side's validation, per-row errors, the CLI."""

from __future__ import annotations

import csv
import io

from sqlalchemy import text

from resolvers.import_rows import ImportOptions, run_import
from tests.factories import make_custom_field, make_customer

SHOPIFY_HEADER = (
    "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address Company,"
    "Default Address Address1,Default Address Address2,Default Address City,"
    "Default Address Province Code,Default Address Country Code,Default Address Zip,"
    "Default Address Phone,Phone,Accepts SMS Marketing,Total Spent,Total Orders,Note,"
    "Tax Exempt,Tags\n"
)
ZOE = (
    "'7012345678901,Zoë,Müller,zoe@example.de,yes,,Hauptstraße 5,,Berlin,BE,DE,'10115,"
    '\'+49 30 1234567,\'+49 30 12345678,no,120.50,3,"Likes, commas\nand lines",no,"vip"\n'
)
BOB = (
    "7012345678902,Bob,Stone,BOB@example.com,no,Acme,1 Main St,,Springfield,Illinois,US,"
    "62701,,(217) 555-0142,no,0,0,,yes,\n"
)
BAD_PHONE = (
    "7012345678903,Ann,Lee,ann@example.com,no,,2 Main St,,Springfield,IL,US,62701,,12,no,,,,no,\n"
)
CARD = (
    "7012345678904,Car,Der,card@example.com,no,,3 Main St,,Springfield,IL,US,62701,,"
    "4111 1111 1111 1111,no,,,,no,\n"
)
PAGE = """{ customers(first: 10, orderBy: {field: NAME, direction: ASC}) { edges { node {
  referenceId firstName lastName email phone note taxStatus { status }
  addresses { kind isDefault line1 city region postalCode country phone }
  timeline(first: 10) { edges { node { kind summary } } } } } } }"""


async def run(engine, data: str, **kw):
    return await run_import(engine, io.BytesIO(data.encode()), ImportOptions(**kw))


async def events(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM timeline_event"))).scalar()


async def test_a_shopify_export_imports_as_is_and_a_reimport_changes_nothing(engine, gql):
    result = await run(engine, SHOPIFY_HEADER + ZOE + BOB)
    assert (result.created, result.updated, result.rejected) == (2, 0, 0), result.errors
    assert result.ignored_columns == ["Total Spent", "Total Orders"]
    people = [e["node"] for e in (await gql.data(PAGE))["customers"]["edges"]]
    zoe, bob = sorted(people, key=lambda p: p["firstName"], reverse=True)
    assert zoe["referenceId"] == "7012345678901" and zoe["phone"] == "+493012345678"
    assert zoe["note"] == "Likes, commas\nand lines"
    assert zoe["addresses"] == [
        {
            "kind": "SHIPPING",
            "isDefault": True,
            "line1": "Hauptstraße 5",
            "city": "Berlin",
            "region": "BE",
            "postalCode": "10115",
            "country": "DE",
            "phone": "+49301234567",
        }
    ]
    assert bob["addresses"][0]["region"] == "IL"  # "Illinois", as a person wrote it
    assert bob["phone"] == "+12175550142" and bob["taxStatus"]["status"] == "EXEMPT"
    assert [e["node"]["kind"] for e in bob["timeline"]["edges"]] == ["CUSTOMER_CREATED"]

    before = await events(engine)
    again = await run(engine, SHOPIFY_HEADER + ZOE + BOB)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert await events(engine) == before  # nothing written, not even an event


async def test_a_changed_row_updates_and_writes_one_event_with_its_changes(engine, gql):
    await run(engine, SHOPIFY_HEADER + ZOE)
    moved = ZOE.replace("Hauptstraße 5", "Hauptstraße 7").replace("Müller", "Schulz")
    result = await run(engine, SHOPIFY_HEADER + moved)
    assert (result.created, result.updated) == (0, 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT kind, data FROM timeline_event ORDER BY id"))).all()
    assert [r.kind for r in rows] == ["CUSTOMER_CREATED", "CUSTOMER_UPDATED"]
    # Zoë's "Accepts Email Marketing" is yes: her first consent is in her creation event.
    assert rows[0].data["consent"]["email"]["new"] == {
        "state": "SUBSCRIBED",
        "optInLevel": "SINGLE",
    }
    data = rows[1].data
    assert data["source"] == "import" and data["line"] == 2
    assert data["changes"]["last_name"] == {"old": "Müller", "new": "Schulz"}
    assert "address" in data["changes"]


async def test_bad_rows_are_rejected_whole_and_the_good_ones_imported(engine):
    result = await run(engine, SHOPIFY_HEADER + ZOE + BAD_PHONE + CARD + BOB)
    assert (result.created, result.rejected) == (2, 2)
    phone, card = result.errors
    # Zoë's note spans lines 2 and 3.
    assert (phone.line, phone.column, phone.code) == (4, "Phone", "INVALID")
    assert (card.line, card.column, card.code) == (5, "Phone", "CARD_NUMBER_REFUSED")
    assert "4111" not in card.message and not any("4111" in c for c in card.raw)
    async with engine.connect() as conn:
        emails = {r[0] for r in await conn.execute(text("SELECT email::text FROM customer"))}
        dump = await conn.execute(
            text("SELECT count(*) FROM customer c WHERE c::text LIKE '%4111%'")
        )
        assert dump.scalar() == 0
    assert emails == {"zoe@example.de", "BOB@example.com"}


async def test_abort_and_dry_run_write_nothing(engine):
    aborted = await run(engine, SHOPIFY_HEADER + ZOE + BAD_PHONE, on_error="abort")
    assert aborted.rejected == 1 and not aborted.written
    dry = await run(engine, SHOPIFY_HEADER + ZOE + BOB, dry_run=True)
    assert dry.created == 2 and not dry.written
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM customer"))).scalar() == 0
    assert await events(engine) == 0


async def test_key_email_matches_live_customers_and_emails_stay_unique(engine):
    existing = await make_customer(engine, email="Zoe@Example.de", reference_id=None)
    by_email = await run(engine, SHOPIFY_HEADER + ZOE, key="email")
    assert (by_email.created, by_email.updated) == (0, 1)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT id, reference_id FROM customer WHERE email = 'zoe@example.de'")
            )
        ).one()
    assert row.id == existing.id and row.reference_id == "7012345678901"

    other_id = ZOE.replace("'7012345678901", "999")  # another reference, the same email
    clash = await run(engine, SHOPIFY_HEADER + other_id)
    assert clash.rejected == 1 and clash.errors[0].code == "DUPLICATE"


async def test_custom_fields_by_key_and_ndjson(engine, gql):
    await make_custom_field(engine, "loyalty_tier", "SELECT", options=["gold", "silver"])
    await make_custom_field(engine, "vip", "BOOLEAN")
    data = (
        '{"email": "a@x.io", "first_name": "Ada", "loyalty_tier": "gold", "vip": "yes"}\n'
        '{"email": "b@x.io", "first_name": "Bea", "loyalty_tier": "bronze"}\n'
    )
    result = await run(engine, data, key="email")
    assert (result.created, result.rejected) == (1, 1)
    assert (result.errors[0].line, result.errors[0].column) == (2, "loyalty_tier")
    fields = await gql.data("{ customers { edges { node { customFields { key value } } } } }")
    values = fields["customers"]["edges"][0]["node"]["customFields"]
    assert sorted((f["key"], f["value"]) for f in values) == [
        ("loyalty_tier", "gold"),
        ("vip", "true"),
    ]
    again = await run(engine, data, key="email")
    assert (again.unchanged, again.rejected) == (1, 1)
    # Without a key in the rows, the default key (reference ID) creates: the email is taken.
    keyless = await run(engine, data)
    assert [e.code for e in keyless.errors] == ["DUPLICATE", "INVALID"]


async def test_cli_exit_codes_summary_and_error_report(cli, tmp_path, engine):
    good = tmp_path / "good.csv"
    good.write_text(SHOPIFY_HEADER + ZOE)
    code, out, _ = await cli("import", str(good))
    assert (
        code == 0
        and out.strip().splitlines()[-1] == "1 created, 0 updated, 0 unchanged, 0 rejected"
    )

    mixed = tmp_path / "mixed.csv"
    mixed.write_text(SHOPIFY_HEADER + ZOE + BAD_PHONE + CARD)
    report = tmp_path / "errors.csv"
    code, out, err = await cli("import", str(mixed), "--errors", str(report))
    assert code == 3 and out.strip().endswith("0 created, 0 updated, 1 unchanged, 2 rejected")
    assert "line 4, column 'Phone': INVALID" in err and "4111" not in err + out
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    assert [(r["line"], r["column"], r["code"]) for r in rows] == [
        ("4", "Phone", "INVALID"),
        ("5", "Phone", "CARD_NUMBER_REFUSED"),
    ]
    assert "4111" not in report.read_text()

    # The report, fixed, re-imports as is (its own columns are recognised and left out).
    fixed = report.read_text().replace(",12,", ",+1 217 555 0143,", 1)
    fixed_path = tmp_path / "fixed.csv"
    fixed_path.write_text(fixed)
    code, out, err = await cli("import", str(fixed_path))
    assert out.strip().endswith("1 created, 0 updated, 0 unchanged, 1 rejected"), err
    assert "matches no field" not in err

    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    code, _, err = await cli("import", str(binary))
    assert code == 2 and "NOT_TEXT" in err and "nothing was written" in err
    code, _, err = await cli("import", str(tmp_path / "missing.csv"))
    assert code == 2


async def test_shopify_customer_ids_are_not_mistaken_for_card_numbers(engine):
    """13-digit IDs pass Luhn one time in ten; a card number also has a network's prefix."""
    ids = ["7000000000003", "6975148392605"]  # both pass Luhn
    rows = "".join(
        f"{i},Ann,Lee{n},ann{n}@example.com,no,,,,,,,,,,no,,,,no,\n" for n, i in enumerate(ids)
    )
    card = "4111111111111111,Car,Der,card@example.com,no,,,,,,,,,,no,,,,no,\n"
    result = await run(engine, SHOPIFY_HEADER + rows + card)
    assert result.created == 2
    assert [e.code for e in result.errors] == ["CARD_NUMBER_REFUSED"]


async def test_repeats_within_a_batch_update_what_the_file_created(engine):
    again = ZOE.replace("Müller", "Schulz")  # the same Customer ID, further down the file
    twin = BOB.replace("7012345678902", "7012345678909")  # another ID, Bob's email again
    result = await run(engine, SHOPIFY_HEADER + ZOE + BOB + twin + again)
    assert (result.created, result.updated, result.rejected) == (2, 1, 1)
    (duplicate,) = result.errors
    assert (duplicate.line, duplicate.code) == (5, "DUPLICATE")
    assert "on line 4 already has this email" in duplicate.message  # Bob, not written yet
    async with engine.connect() as conn:
        names = (await conn.execute(text("SELECT last_name FROM customer ORDER BY id"))).all()
    assert [n[0] for n in names] == ["Schulz", "Stone"]


async def test_a_race_for_an_email_rejects_only_that_row(engine, monkeypatch):
    """Another writer took an email after the batch read its owners: the batch runs again,
    row by row, and only the row at fault is rejected."""
    from resolvers import import_writer

    await make_customer(engine, email="zoe@example.de", reference_id="elsewhere")

    async def stale(self, conn, plans):  # as if read before the other writer committed
        self._by_key, self._email_owner = {}, {}

    monkeypatch.setattr(import_writer.Writer, "_prefetch", stale)
    result = await run(engine, SHOPIFY_HEADER + ZOE + BOB)
    assert (result.created, result.rejected) == (1, 1)
    assert result.errors[0].code == "DUPLICATE" and result.errors[0].line == 2
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM customer"))).scalar()
    assert count == 2  # the other writer's and Bob


async def test_custom_values_leave_no_required_field_empty(engine):
    """customerCreate's rule for custom values, per row: a row that sets some must leave
    every required field with a value, or it is rejected (the others are imported)."""
    await make_custom_field(engine, "tier", "TEXT", required=True)
    await make_custom_field(engine, "colour", "TEXT")
    data = (
        '{"email": "a@x.io", "first_name": "Ada", "colour": "red"}\n'
        '{"email": "b@x.io", "first_name": "Bea", "colour": "blue", "tier": "gold"}\n'
    )
    result = await run(engine, data, key="email")
    assert (result.created, result.rejected) == (1, 1)
    assert (result.errors[0].line, result.errors[0].code) == (1, "REQUIRED")
    again = await run(engine, data.replace("blue", "green"), key="email")
    assert (again.updated, again.rejected) == (1, 1)
