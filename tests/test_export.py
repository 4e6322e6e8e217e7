"""Export: every customer streamed in the import's columns; an export re-imports as itself."""

from __future__ import annotations

import csv
import io

import orjson
from sqlalchemy import text

from models.enums import Role
from resolvers.context import Context
from resolvers.exports import export
from resolvers.import_rows import ImportOptions, run_import
from resolvers.search import Criteria, TextMatch
from resolvers.viewer import Viewer
from server.seed import seed
from tests.factories import make_customer, make_user

# What a customer is, without the numbers and ids a new database gives anew.
SNAPSHOT = """
SELECT c.reference_id, c.kind::text, c.first_name, c.last_name, c.company_name,
       c.email::text, c.phone, c.note, c.tax_status::text, c.tax_code,
       a.company, a.line1, a.line2, a.city, a.region, a.postal_code, a.country, a.phone,
       (SELECT jsonb_object_agg(d.key, coalesce(v.text_value, v.number_value::text,
               v.date_value::text, v.boolean_value::text))
          FROM custom_field_value v JOIN custom_field_definition d ON d.id = v.definition_id
         WHERE v.customer_id = c.id) AS custom
  FROM customer c
  LEFT JOIN LATERAL (SELECT * FROM address WHERE customer_id = c.id
                     ORDER BY (kind = 'SHIPPING') DESC, is_default DESC, id LIMIT 1) a ON true
 WHERE c.status <> 'MERGED'
"""
CUSTOMER_TABLES = (
    "customer, address, orders, order_line, ledger_transaction, timeline_event,"
    " custom_field_value, customer_sales_channel, tax_exemption_certificate"
)


async def snapshot(engine) -> list[tuple]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(SNAPSHOT))).all()
    return sorted(
        ((*r[:-1], orjson.dumps(r[-1], option=orjson.OPT_SORT_KEYS)) for r in rows),
        key=repr,
    )


def admin(engine) -> Context:
    from server.settings import Settings

    settings = Settings(database_url="unused")
    return Context(engine=engine, settings=settings, viewer=Viewer(0, Role.ADMIN))


async def test_an_export_reimports_into_an_empty_database_as_the_same_customers(
    engine, database_url
):
    await seed(database_url, customers=300, seed=11)
    before = await snapshot(engine)
    out = io.StringIO()
    assert await export(admin(engine), out) == 300
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(f"TRUNCATE {CUSTOMER_TABLES} CASCADE"))
    result = await run_import(engine, io.BytesIO(out.getvalue().encode()), ImportOptions())
    assert (result.created, result.rejected) == (300, 0), result.errors[:3]
    assert result.unknown_columns == [] and result.ignored_columns == ["Number"]
    assert await snapshot(engine) == before
    # And once more: the export of the imported database is the same file, numbers aside.
    again = io.StringIO()
    await export(admin(engine), again)

    def without_numbers(text_: str) -> list[list[str]]:
        return [row[1:] for row in csv.reader(io.StringIO(text_))]

    assert without_numbers(again.getvalue()) == without_numbers(out.getvalue())


async def test_ndjson_filter_and_scope(engine):
    rep, _ = await make_user(engine, role="SALES_REP", email="rep@example.com")
    mine = await make_customer(engine, last_name="García", sales_rep_id=rep, email="m@x.io")
    await make_customer(engine, last_name="Garner", email="o@x.io")
    await make_customer(engine, last_name="Smith", sales_rep_id=rep)
    criteria = Criteria(last_name="gar", name_match=TextMatch.PREFIX)
    out = io.StringIO()
    assert await export(admin(engine), out, criteria=criteria, fmt="ndjson") == 2
    records = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(r["Last Name"] for r in records) == ["García", "Garner"]
    assert "Note" not in records[0]  # empty cells are left out of NDJSON

    as_rep = Context(
        engine=engine, settings=admin(engine).settings, viewer=Viewer(rep, Role.SALES_REP)
    )
    scoped = io.StringIO()
    assert await export(as_rep, scoped, criteria=criteria, fmt="ndjson") == 1
    assert orjson.loads(scoped.getvalue())["Email"] == mine.email


async def test_cli_export_filter_and_refusals(cli, engine, tmp_path):
    await make_customer(engine, last_name="Lovelace", email="ada@example.com")
    await make_customer(engine, last_name="Turing", email="alan@example.com")
    target = tmp_path / "out.csv"
    code, _, err = await cli("export", "-o", str(target))
    assert code == 0 and "2 customers exported" in err
    assert len(target.read_text().splitlines()) == 3
    code, out, _ = await cli("export", "--format", "ndjson", "--filter", '{"lastName": "turing"}')
    assert code == 0 and [orjson.loads(x)["Email"] for x in out.splitlines()] == [
        "alan@example.com"
    ]
    code, _, err = await cli("export", "--filter", '{"colour": "red"}')
    assert code == 2 and "colour" in err
    code, _, err = await cli("export", "--filter", '{"country": "XX"}')
    assert code == 2 and "Unknown country" in err


async def test_rows_are_counted_whatever_their_cells_hold(engine):
    """COPY streams text; a note with line breaks and quotes is still one row."""
    note = 'say "hi"\nand\r\nbye'
    await make_customer(engine, last_name="Quote", email="q@x.io", note=note)
    await make_customer(engine, last_name="Plain", email="p@x.io", note="one, two")
    out = io.StringIO()
    assert await export(admin(engine), out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["Note"] for r in rows] == [note, "one, two"]
    lines = io.StringIO()
    assert await export(admin(engine), lines, fmt="ndjson") == 2
    assert [orjson.loads(x).get("Note") for x in lines.getvalue().splitlines()] == [
        note,
        "one, two",
    ]
