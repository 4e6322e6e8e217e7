"""Duplicate-report benchmark: `python -m bench.duplicates [--customers 1000000]`.

Seeds (or reuses) a database of N customers with unique-looking names, emails and phones,
plus a known planted set of duplicates (2% of N, a third sharing each criterion, written
in another format: email with different case and spaces, the same E.164 phone, the name
re-cased with extra spaces). Then, through the real app (httpx ASGITransport, as ADMIN),
it times the first page and the whole report (all pages) per criterion and measures the
recall of the planted duplicates. Prints a table; writes bench/results/duplicates.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from server.app import create_app
from server.database import make_engine
from server.runtime import open_database
from server.settings import Settings
from server.users import create_user

DEFAULT_DIR = Path.home() / ".local" / "share" / "customer-graph-bench-duplicates"
PLANT_EVERY = 50  # 2%

SEED_SQL = [
    "SET LOCAL session_replication_role = replica",
    "TRUNCATE customer, duplicate_dismissal RESTART IDENTITY CASCADE",
    # Unique-looking names: letters derived from md5, so real collisions are planted only.
    """
    INSERT INTO customer (id, number, kind, first_name, last_name, company_name, email, phone)
    SELECT g, 'C-' || lpad(g::text, 7, '0'),
           (CASE WHEN g % 5 = 0 THEN 'BUSINESS' ELSE 'INDIVIDUAL' END)::customer_kind,
           initcap(translate(substr(md5('f' || g), 1, 7), '0123456789', 'aeiouyrstl')),
           initcap(translate(substr(md5('l' || g), 1, 9), '0123456789', 'aeiouyrstl')),
           CASE WHEN g % 5 = 0
                THEN initcap(translate(substr(md5('c' || g), 1, 10), '0123456789', 'aeiouyrstl'))
                     || ' Ltd' END,
           'user' || g || '@example.com',
           '+1' || (2000000000 + g)::text
    FROM generate_series(1, :n) AS g
    """,
    # Planted duplicates of every 50th customer, each sharing one criterion in another format.
    """
    INSERT INTO customer (id, number, kind, first_name, last_name, company_name, email, phone)
    SELECT :n + row_number() OVER (ORDER BY c.id), 'D-' || lpad(c.id::text, 7, '0'), c.kind,
           CASE WHEN c.id % 3 = 2 THEN ' ' || upper(c.first_name) ELSE 'Dup' || c.id END,
           CASE WHEN c.id % 3 = 2 THEN lower(c.last_name) || '  ' ELSE 'Planted' || c.id END,
           CASE WHEN c.id % 3 = 2 THEN upper(c.company_name) ELSE 'Planted Co ' || c.id END,
           CASE WHEN c.id % 3 = 0 THEN ' ' || upper(c.email::text) || ' '
                ELSE 'dup' || c.id || '@example.net' END,
           CASE WHEN c.id % 3 = 1 THEN c.phone ELSE '+1' || (5000000000 + c.id)::text END
    FROM customer c WHERE c.id % :every = 0
    """,
    "SELECT setval('customer_id_seq', (SELECT max(id) FROM customer))",
]

PAGE = """query($by: [DuplicateCriterion!], $after: String) {
  duplicateCustomers(by: $by, first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { size customers { number } } }
  }
}"""

# Which planted originals share which criterion (see SEED_SQL).
PLANTED = {"EMAIL": 0, "PHONE": 1, "NAME": 2}


async def ensure_seeded(url: str, n: int) -> None:
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as conn:
        have = (await conn.execute(text("SELECT count(*) FROM customer"))).scalar()
    if have != n + n // PLANT_EVERY:
        print(f"seeding {n:,} customers + {n // PLANT_EVERY:,} planted duplicates …", flush=True)
        t0 = time.perf_counter()
        async with engine.begin() as conn:
            for sql in SEED_SQL:
                await conn.execute(text(sql), {"n": n, "every": PLANT_EVERY})
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE customer"))
        print(f"seeded in {time.perf_counter() - t0:.1f} s", flush=True)
    await engine.dispose()


async def run(url: str, n: int) -> dict:
    engine = make_engine(url, pool_size=4)
    token = await create_user(url, email=f"bench-{time.time_ns()}@example.com", role="ADMIN")
    app = create_app(engine=engine, settings=Settings(database_url=url))
    headers = {"Authorization": f"Bearer {token}"}
    results = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600
    ) as client:
        for criterion, residue in PLANTED.items():
            planted = n // PLANT_EVERY
            expected = sum(1 for k in range(1, planted + 1) if (k * PLANT_EVERY) % 3 == residue)
            t0 = time.perf_counter()
            first_page = None
            found, pages, after = 0, 0, None
            while True:
                body = (
                    await client.post(
                        "/graphql",
                        json={"query": PAGE, "variables": {"by": [criterion], "after": after}},
                        headers=headers,
                    )
                ).json()
                assert "errors" not in body, body["errors"]
                pages += 1
                if first_page is None:
                    first_page = time.perf_counter() - t0
                report = body["data"]["duplicateCustomers"]
                for edge in report["edges"]:
                    numbers = {c["number"] for c in edge["node"]["customers"]}
                    found += any(x.startswith("D-") for x in numbers)
                if not report["pageInfo"]["hasNextPage"]:
                    break
                after = report["pageInfo"]["endCursor"]
            results[criterion] = {
                "first_page_s": round(first_page, 3),
                "whole_report_s": round(time.perf_counter() - t0, 2),
                "pages": pages,
                "planted": expected,
                "found": found,
                "recall": round(found / expected, 4) if expected else None,
            }
    await engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    db = open_database(Settings(database_url=None, data_dir=args.data_dir))
    try:
        asyncio.run(ensure_seeded(db.url, args.customers))
        results = asyncio.run(run(db.url, args.customers))
    finally:
        db.stop()
    print(f"\nduplicate report on {args.customers:,} customers (+2% planted)")
    print(f"{'criterion':<10}{'first page':>12}{'whole report':>14}{'pages':>7}{'recall':>9}")
    for criterion, r in results.items():
        print(
            f"{criterion:<10}{r['first_page_s']:>11.3f}s{r['whole_report_s']:>13.2f}s"
            f"{r['pages']:>7}{r['recall']:>9.2%}"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "duplicates.json").write_text(json.dumps({"customers": args.customers, **results}))


if __name__ == "__main__":
    main()
