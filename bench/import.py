"""Import and export benchmark: `python -m bench.import [--rows 1000000]`.

Generates a realistic customer CSV (Shopify's export columns; names with accents, phones
in national formats, addresses in several countries, one bad row in 200), imports it into
an empty database with the importer (`resolvers/import_rows.run_import`, as `customer-graph
import` does), exports everything back (`resolvers/exports.export`), and in the same run
times PostgreSQL's own `COPY` of the same file into a bare table: the floor no importer
beats. Prints rows/s for each and the process's peak RSS. A benchmark, not a test.
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


async def run(args: argparse.Namespace, url: str, csv_path: Path) -> tuple:
    engine = make_engine(url, pool_size=4)
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

        started = time.perf_counter()
        with csv_path.open("rb") as f:
            result = await run_import(engine, f, ImportOptions(batch_size=args.batch))
        import_s = time.perf_counter() - started

        ctx = Context(
            engine=engine, settings=Settings(database_url=url), viewer=Viewer(0, Role.ADMIN)
        )
        started = time.perf_counter()
        with (csv_path.parent / "export.csv").open("w", newline="") as sink:
            exported = await export(ctx, sink, fmt="csv")
        export_s = time.perf_counter() - started
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT count(*) FROM customer"))).scalar()
    finally:
        await engine.dispose()
    return copy_s, import_s, export_s, result, exported, stored


def report(args, copy_s, import_s, export_s, result, exported, stored) -> None:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nimport of {args.rows:,} rows ({result.summary()}; {stored:,} stored)")
    print("| step | seconds | rows/s |")
    print("| --- | --- | --- |")
    print(f"| PostgreSQL COPY into a bare table (the floor) | {copy_s:.2f} | "
          f"{args.rows / copy_s:,.0f} |")  # fmt: skip
    print(f"| import (validate + upsert + timeline) | {import_s:.2f} | "
          f"{args.rows / import_s:,.0f} |")  # fmt: skip
    print(f"| export (stream CSV) | {export_s:.2f} | {exported / export_s:,.0f} |")
    print(f"peak RSS of this process: {peak_mb:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500, help="rows per committed batch")
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
