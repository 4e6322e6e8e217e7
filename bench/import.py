"""Import and export benchmark: `python -m bench.import [--rows 1000000]`.

Generates a realistic customer CSV (Shopify's export columns; names with accents, phones
in national formats, addresses in several countries, one bad row in 200), imports it into
an empty database with the importer (`resolvers/import_rows.run_import`, as `customer-graph
import` does), exports everything back as CSV and as NDJSON (`resolvers/exports.export`),
and in the same run times PostgreSQL's own `COPY` of the same file into a bare table: the
floor no importer beats. `--write-floor` also times the schema's floor: the same customers,
default addresses and timeline events written by three INSERT … SELECT from that bare
table (no validation, no Python) into copies of the real tables with all their indexes and
constraints. Prints rows/s for each and the process's peak RSS. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from models.enums import Role
from resolvers.context import Context
from resolvers.exports import export
from resolvers.import_rows import ImportOptions, run_import
from resolvers.viewer import Viewer
from server.database import EmbeddedPostgres, ensure_database, make_engine
from server.migrate import upgrade
from server.settings import Settings

HEADER = [
    "Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing",
    "Default Address Company", "Default Address Address1", "Default Address Address2",
    "Default Address City", "Default Address Province Code", "Default Address Country Code",
    "Default Address Zip", "Default Address Phone", "Phone", "Accepts SMS Marketing",
    "Total Spent", "Total Orders", "Note", "Tax Exempt", "Tags",
]  # fmt: skip
FIRST = "Zoë Émile Søren José Chloé Björn Lucía Ada Grace Linus Noah Aiko Priya Omar".split()
LAST = "Müller Dupont García Kierkegaard Svensson Rossi Tanaka Patel O'Brien Nguyen".split()
# country: (region, city, ZIP pattern, a national phone pattern). The phones have six to
# eight random digits, so nearly every row's number is its own, as in a real customer list
# (the validator's cache must not flatter the figures).
PLACES = {
    "US": ("CA", "San Francisco", "941##", "(415) 2##-####"),
    "DE": ("BE", "Berlin", "10###", "030 1#######"),
    "FR": ("IDF", "Paris", "750##", "01 4# ## ## ##"),
    "GB": ("ENG", "London", "SW1A 1AA", "020 7### ####"),
    "CA": ("ON", "Toronto", "M5V 2T6", "(416) 3##-####"),
    "AU": ("NSW", "Sydney", "20##", "(02) 9### ####"),
}


def _fill(pattern: str, rng: random.Random) -> str:
    return "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in pattern)


def generate(path: Path, rows: int, seed: int = 7) -> int:
    """Write the CSV; returns how many rows are deliberately bad."""
    rng = random.Random(seed)
    bad = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(1, rows + 1):
            country = rng.choice(list(PLACES))
            region, city, zip_pattern, phone_pattern = PLACES[country]
            first, last = rng.choice(FIRST), rng.choice(LAST)
            phone = _fill(phone_pattern, rng)
            email = f"{first}.{last}.{i}@example.{country.lower()}".lower().replace("'", "")
            if i % 200 == 0:  # a bad row: an email that is not one
                email, bad = "not-an-email", bad + 1
            out.writerow([
                f"'{7_000_000_000_000 + i}", first, last, email, rng.choice(("yes", "no")),
                "", f"{rng.randrange(1, 999)} Main Street", "", city, region, country,
                f"'{_fill(zip_pattern, rng)}", phone, phone, "no",
                f"{rng.randrange(0, 100000) / 100:.2f}", str(rng.randrange(0, 20)),
                "", rng.choice(("yes", "no", "no", "no")), "",
            ])  # fmt: skip
    return bad


# The schema's floor: what PostgreSQL alone takes to write the rows an import writes, into
# copies of customer, address and timeline_event with every index, default and constraint
# (LIKE … INCLUDING ALL, and the foreign keys to the customer), from the bare table, one
# statement each. The phone is a well-formed stand-in (the CHECK wants E.164), the bad
# rows' email NULL.
WRITE_FLOOR = [
    "CREATE TABLE floor_customer (LIKE customer INCLUDING ALL)",
    "CREATE TABLE floor_address (LIKE address INCLUDING ALL,"
    " FOREIGN KEY (customer_id) REFERENCES floor_customer ON DELETE CASCADE)",
    "CREATE TABLE floor_event (LIKE timeline_event INCLUDING ALL,"
    " FOREIGN KEY (customer_id) REFERENCES floor_customer ON DELETE CASCADE)",
    "INSERT INTO floor_customer (reference_id, first_name, last_name, email, phone, note,"
    " tax_status) SELECT ltrim(c0, ''''), c1, c2, CASE WHEN c3 LIKE '%@%' THEN c3 END,"
    " '+1415' || lpad((row_number() OVER ())::text, 7, '0'), nullif(c17, ''),"
    " CAST(CASE WHEN c18 = 'yes' THEN 'EXEMPT' ELSE 'TAXABLE' END AS tax_status) FROM bare",
    "INSERT INTO floor_address (customer_id, kind, is_default, line1, city, region, country,"
    " postal_code, phone) SELECT f.id, 'SHIPPING', true, b.c6, b.c8, b.c9, b.c10,"
    " ltrim(b.c11, ''''), f.phone FROM bare b JOIN floor_customer f"
    " ON f.reference_id = ltrim(b.c0, '''')",
    "INSERT INTO floor_event (customer_id, kind, summary, data) SELECT id, 'CUSTOMER_CREATED',"
    " 'Customer created by import', jsonb_build_object('source', 'import', 'line', id)"
    " FROM floor_customer",
]


async def run(args: argparse.Namespace, url: str, csv_path: Path) -> tuple:
    engine = make_engine(url, pool_size=4)
    write_s = None
    try:
        # The floor: PostgreSQL's COPY of the same file into a bare table of text columns.
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            columns = ", ".join(f'"c{i}" text' for i in range(len(HEADER)))
            await raw.execute(f"CREATE TEMP TABLE bare ({columns})")
            started = time.perf_counter()
            with csv_path.open("rb") as f:
                await raw.copy_to_table("bare", source=f, format="csv", header=True)
            copy_s = time.perf_counter() - started
            if args.write_floor:
                started = time.perf_counter()
                for sql in WRITE_FLOOR:
                    await raw.execute(sql)
                write_s = time.perf_counter() - started
                await raw.execute("DROP TABLE floor_customer, floor_address, floor_event")
                await raw.execute("CHECKPOINT")  # the import starts from a clean slate too

        started = time.perf_counter()
        with csv_path.open("rb") as f:
            result = await run_import(engine, f, ImportOptions(batch_size=args.batch))
        import_s = time.perf_counter() - started

        ctx = Context(
            engine=engine, settings=Settings(database_url=url), viewer=Viewer(0, Role.ADMIN)
        )
        exports = {}
        for fmt in ("csv", "ndjson"):
            started = time.perf_counter()
            with (csv_path.parent / f"export.{fmt}").open("w", newline="") as sink:
                exported = await export(ctx, sink, fmt=fmt)
            exports[fmt] = (time.perf_counter() - started, exported)
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT count(*) FROM customer"))).scalar()
    finally:
        await engine.dispose()
    return copy_s, write_s, import_s, exports, result, stored


def report(args, copy_s, write_s, import_s, exports, result, stored) -> None:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nimport of {args.rows:,} rows ({result.summary()}; {stored:,} stored)")
    print("| step | seconds | rows/s |")
    print("| --- | --- | --- |")
    print(f"| PostgreSQL COPY into a bare table (the floor) | {copy_s:.2f} | "
          f"{args.rows / copy_s:,.0f} |")  # fmt: skip
    if write_s is not None:
        print(f"| PostgreSQL INSERT … SELECT into copies of the three tables (the schema's "
              f"floor) | {write_s:.2f} | {args.rows / write_s:,.0f} |")  # fmt: skip
    print(f"| import (validate + upsert + timeline), batches of {args.batch:,} | "
          f"{import_s:.2f} | {args.rows / import_s:,.0f} |")  # fmt: skip
    for fmt, (seconds, exported) in exports.items():
        print(f"| export ({fmt.upper()}) | {seconds:.2f} | {exported / seconds:,.0f} |")
    print(f"peak RSS of this process: {peak_mb:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000, help="rows per committed batch")
    parser.add_argument(
        "--write-floor", action="store_true", help="also time the schema's own write floor"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="customer-graph-bench-import-"))
    embedded = EmbeddedPostgres(work / "pgdata", ephemeral=True)
    try:
        url = ensure_database(embedded, "bench_import")
        upgrade(url)
        csv_path = work / "customers.csv"
        started = time.perf_counter()
        bad = generate(csv_path, args.rows)
        size = csv_path.stat().st_size
        print(
            f"generated {args.rows:,} rows ({size / 2**20:.1f} MiB, {bad:,} bad) in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        report(args, *asyncio.run(run(args, url, csv_path)))
    finally:
        embedded.stop()


if __name__ == "__main__":
    sys.exit(main())
