"""Importing tags and marketing consent: Shopify's "Tags" and "Accepts … Marketing" cells."""

from __future__ import annotations

import io

from sqlalchemy import text

from resolvers.import_rows import ImportOptions, run_import
from tests.factories import make_customer

HEADER = "Customer ID,First Name,Email,Phone,Accepts Email Marketing,Accepts SMS Marketing,Tags\n"
CUSTOMER = """
SELECT tags, tag_keys, email_marketing_state::text AS email, email_marketing_opt_in_level::text
       AS email_level, email_marketing_source AS email_source,
       email_marketing_updated_at IS NOT NULL AS email_dated,
       sms_marketing_state::text AS sms, sms_marketing_opt_in_level::text AS sms_level, version
  FROM customer WHERE reference_id = :ref
"""


async def run(engine, data: str, **kw):
    return await run_import(engine, io.BytesIO(data.encode()), ImportOptions(**kw))


async def customer(engine, ref: str):
    async with engine.connect() as conn:
        return (await conn.execute(text(CUSTOMER), {"ref": ref})).one()


async def timeline(engine) -> list:
    async with engine.connect() as conn:
        sql = "SELECT kind, summary, data FROM timeline_event ORDER BY id"
        return (await conn.execute(text(sql))).all()


async def test_tags_and_consent_import_and_a_reimport_changes_nothing(engine):
    data = (
        HEADER
        + '1,Zoë,zoe@example.de,+49 30 12345678,yes,TRUE,"wholesale, VIP,  vip ,fair-2025,"\n'
        + "2,Bob,bob@example.com,,no,,\n"
    )
    result = await run(engine, data)
    assert (result.created, result.rejected) == (2, 0), result.errors
    assert result.ignored_columns == []
    zoe = await customer(engine, "1")
    # Sorted case-insensitively, "vip" the same tag as "VIP" (the first spelling kept).
    assert zoe.tags == ["fair-2025", "VIP", "wholesale"]
    assert zoe.tag_keys == ["fair-2025", "vip", "wholesale"]
    assert (zoe.email, zoe.email_level, zoe.email_source, zoe.email_dated) == (
        "SUBSCRIBED",
        "SINGLE",
        "import",
        True,
    )
    assert (zoe.sms, zoe.sms_level) == ("SUBSCRIBED", "SINGLE")
    bob = await customer(engine, "2")
    assert (bob.tags, bob.email, bob.sms) == ([], "NOT_SUBSCRIBED", "NOT_SUBSCRIBED")
    events = await timeline(engine)
    # One event a row; a new customer's consent is in it, as customerMarketingConsentUpdate
    # records a change (old and new per channel, the source).
    assert [e.kind for e in events] == ["CUSTOMER_CREATED", "CUSTOMER_CREATED"]
    assert "consent" not in events[1].data
    assert events[0].data["consent"] == {
        "email": {
            "old": {"state": "NOT_SUBSCRIBED", "optInLevel": None},
            "new": {"state": "SUBSCRIBED", "optInLevel": "SINGLE"},
            "source": "import",
        },
        "sms": {
            "old": {"state": "NOT_SUBSCRIBED", "optInLevel": None},
            "new": {"state": "SUBSCRIBED", "optInLevel": "SINGLE"},
            "source": "import",
        },
    }

    again = await run(engine, data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert len(await timeline(engine)) == 2  # nothing written, not even an event
    assert (await customer(engine, "1")).version == zoe.version
    # Another spelling of the same tags, in another order: the same tags, no change.
    respelled = await run(
        engine, HEADER + '1,Zoë,zoe@example.de,+49 30 12345678,yes,yes,"Wholesale,vip,FAIR-2025"\n'
    )
    assert respelled.unchanged == 1 and len(await timeline(engine)) == 2
    # An existing customer's consent: customerMarketingConsentUpdate's own event.
    changed = await run(engine, HEADER + "2,Bob,bob@example.com,,yes,,\n")
    assert changed.updated == 1
    event = (await timeline(engine))[-1]
    assert (event.kind, event.summary) == (
        "MARKETING_CONSENT_UPDATED",
        "Email marketing SUBSCRIBED (was NOT_SUBSCRIBED)",
    )
    assert event.data == {
        "email": {
            "old": {"state": "NOT_SUBSCRIBED", "optInLevel": None},
            "new": {"state": "SUBSCRIBED", "optInLevel": "SINGLE"},
            "source": "import",
        }
    }


async def test_a_changed_tag_list_writes_one_event_with_old_and_new(engine):
    await run(engine, HEADER + '1,Zoë,zoe@example.de,,,,"VIP, wholesale"\n')
    changed = await run(engine, HEADER + '1,Zoë,zoe@example.de,,,,"wholesale, Fair-2025"\n')
    assert (changed.updated, changed.unchanged) == (1, 0)
    events = await timeline(engine)
    assert [e.kind for e in events] == ["CUSTOMER_CREATED", "CUSTOMER_UPDATED"]
    assert events[1].data["changes"] == {
        "tags": {"old": ["VIP", "wholesale"], "new": ["Fair-2025", "wholesale"]}
    }
    assert events[1].summary == "Updated by import: tags"
    assert (await customer(engine, "1")).tags == ["Fair-2025", "wholesale"]
    # An empty cell: no tags. A file without the column leaves them alone.
    await run(engine, "Customer ID,First Name\n1,Zoë\n")
    assert (await customer(engine, "1")).tags == ["Fair-2025", "wholesale"]
    cleared = await run(engine, HEADER + "1,Zoë,zoe@example.de,,,,\n")
    assert cleared.updated == 1
    assert (await customer(engine, "1")).tags == []
    last = (await timeline(engine))[-1]
    assert last.data["changes"]["tags"] == {"old": ["Fair-2025", "wholesale"], "new": []}


async def test_a_new_spelling_of_a_tag_takes_the_existing_one(engine):
    await make_customer(engine, reference_id="old", tags=["VIP"])
    result = await run(engine, HEADER + "1,Zoë,,,,,vip\n2,Bob,,,,,Wholesale\n3,Cy,,,,,wholesale\n")
    assert result.created == 3
    assert (await customer(engine, "1")).tags == ["VIP"]
    # Within the file too: the first spelling is the one.
    assert (await customer(engine, "3")).tags == ["Wholesale"]


async def test_bad_tags_and_sms_without_a_phone_reject_the_row(engine):
    await make_customer(engine, reference_id="5", phone="+12175550142")
    long_tag = "x" * 41
    many = ", ".join(f"t{i}" for i in range(51))
    data = (
        HEADER
        + f"1,Ann,ann@example.com,,,,{long_tag}\n"
        + f'2,Bea,bea@example.com,,,,"{many}"\n'
        + "3,Cy,cy@example.com,,,yes,\n"  # no phone: refused
        + "4,Di,di@example.com,,,PENDING,\n"  # pending is asked too
        + "6,Fay,fay@example.com,+12175550143,maybe,,\n"
        + "7,Gil,gil@example.com,,no,no,ok\n"
    )
    result = await run(engine, data)
    assert (result.created, result.rejected) == (1, 5), result.errors
    got = [(e.line, e.column, e.code) for e in result.errors]
    assert got == [
        (2, "Tags", "INVALID"),
        (3, "Tags", "INVALID"),
        (4, "Accepts SMS Marketing", "INVALID"),
        (5, "Accepts SMS Marketing", "INVALID"),
        (6, "Accepts Email Marketing", "INVALID"),
    ]
    assert "40 characters" in result.errors[0].message
    assert "51 tags" in result.errors[1].message
    assert "phone" in result.errors[2].message
    # A phone the customer already has will do (the file has no Phone column).
    has_phone = await run(engine, "Customer ID,First Name,Accepts SMS Marketing\n5,Ed,yes\n")
    assert has_phone.updated == 1 and (await customer(engine, "5")).sms == "SUBSCRIBED"
    async with engine.connect() as conn:
        refs = (await conn.execute(text("SELECT reference_id FROM customer ORDER BY 1"))).all()
    assert [r[0] for r in refs] == ["5", "7"]


async def test_yes_no_and_state_names(engine):
    await make_customer(
        engine,
        reference_id="a",
        phone="+12175550142",
        email_marketing_state="SUBSCRIBED",
        email_marketing_opt_in_level="CONFIRMED",
        sms_marketing_state="PENDING",
    )
    await make_customer(engine, reference_id="b", email_marketing_state="UNSUBSCRIBED")
    await make_customer(engine, reference_id="c")
    # yes keeps a confirmed subscription as it is; no: pending becomes UNSUBSCRIBED.
    header = "Customer ID,First Name,Accepts Email Marketing,Accepts SMS Marketing\n"
    data = header + "a,Ada,yes,no\nb,Ada,no,no\nc,Ada,no,\n"
    result = await run(engine, data)
    assert (result.updated, result.unchanged) == (1, 2)
    a = await customer(engine, "a")
    assert (a.email, a.email_level, a.sms, a.sms_level) == (
        "SUBSCRIBED",
        "CONFIRMED",
        "UNSUBSCRIBED",
        None,
    )
    assert [e.kind for e in await timeline(engine)] == ["MARKETING_CONSENT_UPDATED"]
    assert (await customer(engine, "b")).email == "UNSUBSCRIBED"
    assert (await customer(engine, "c")).email == "NOT_SUBSCRIBED"
    # State names, any case, as our export writes them: set as they are.
    named = header + "a,Ada,not_subscribed,Subscribed\nb,Ada,pending,\nc,Ada,Subscribed,\n"
    result = await run(engine, named)
    assert (result.updated, result.rejected) == (3, 0), result.errors
    a, b, c = [await customer(engine, r) for r in "abc"]
    assert (a.email, a.email_level, a.sms, a.sms_level) == (
        "NOT_SUBSCRIBED",
        None,
        "SUBSCRIBED",
        "SINGLE",
    )
    assert (b.email, b.email_level, c.email, c.email_level) == (
        "PENDING",
        None,
        "SUBSCRIBED",
        "SINGLE",
    )
    again = await run(engine, named)
    assert again.unchanged == 3


async def test_tags_and_consent_across_batches_and_row_by_row(engine, monkeypatch):
    """The same decisions whether a batch is written set-based or, after a race, row by
    row (each row its own statements)."""
    from resolvers import import_writer

    rows = "".join(f'{i},P{i},p{i}@x.io,,yes,,"T{i % 3}, shared"\n' for i in range(6))
    result = await run(engine, HEADER + rows, batch_size=4)
    assert result.created == 6
    async with engine.connect() as conn:
        sql = "SELECT tags, email_marketing_state::text FROM customer ORDER BY reference_id"
        got = (await conn.execute(text(sql))).all()
    assert [tuple(r) for r in got] == [(["shared", f"T{i % 3}"], "SUBSCRIBED") for i in range(6)]

    await make_customer(engine, email="taken@x.io", reference_id="elsewhere")

    async def stale(self, conn, plans):  # as if read before another writer committed
        self._by_key, self._email_owner = {}, {}

    monkeypatch.setattr(import_writer.Writer, "_prefetch", stale)
    racing = HEADER + '9,Q,taken@x.io,,yes,,a\n10,R,r@x.io,,yes,,"b, B, c"\n'
    result = await run(engine, racing)
    assert (result.created, result.rejected) == (1, 1)
    async with engine.connect() as conn:
        sql = "SELECT tags, email_marketing_state::text FROM customer WHERE reference_id = '10'"
        assert tuple((await conn.execute(text(sql))).one()) == (["b", "c"], "SUBSCRIBED")


async def test_ndjson_tags_as_a_list_and_consent_as_a_boolean(engine):
    data = (
        '{"Customer ID": "1", "First Name": "Ada", "Tags": ["b", "A"],'
        ' "Accepts Email Marketing": true}\n'
        '{"Customer ID": "2", "First Name": "Bo", "Tags": "x, y",'
        ' "Accepts Email Marketing": "no"}\n'
    )
    result = await run(engine, data)
    assert (result.created, result.rejected) == (2, 0), result.errors
    ada, bo = await customer(engine, "1"), await customer(engine, "2")
    assert (ada.tags, ada.email, bo.tags, bo.email) == (
        ["A", "b"],
        "SUBSCRIBED",
        ["x", "y"],
        "NOT_SUBSCRIBED",
    )
