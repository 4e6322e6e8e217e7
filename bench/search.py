"""Search benchmark: `python -m bench.search [--customers 1000000]`.

Builds (or reuses) a database of N customers with addresses, channels, orders and custom
field values using set-based INSERT … SELECT (fast, deterministic), starts the service
with uvicorn on loopback, and measures p50/p95 latency over HTTP (one client, sequential
requests) of `customerSearch` for each filter field alone, tag filters (a cohort of ~200,
a cohort and a tag on 1 in 7, a tag on 1 in 2,000), realistic combinations
and the RefineSearch path. Writes bench/results/search.json. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from server.database import make_engine
from server.runtime import open_database
from server.settings import Settings
from server.users import create_user

DEFAULT_DIR = Path.home() / ".local" / "share" / "customer-graph-bench-search"
COUNTRIES = ["US", "CA", "GB", "DE", "FR", "AU", "NL", "ES", "IT", "SE"]

SEED = [
    "SET LOCAL session_replication_role = replica",
    "TRUNCATE customer, account, app_user, sales_channel, custom_field_definition,"
    " duplicate_dismissal RESTART IDENTITY CASCADE",
    "INSERT INTO app_user (id, email, role, first_name, last_name)"
    " SELECT g, 'rep' || g || '@reps.example', 'SALES_REP', 'Rep', 'No ' || g"
    " FROM generate_series(1, 50) g",
    "INSERT INTO sales_channel (id, code, name) SELECT g, 'ch' || g, 'Channel ' || g"
    " FROM generate_series(1, 20) g",
    "INSERT INTO account (id, number, name) SELECT g, 'A-' || lpad(g::text, 7, '0'),"
    " 'Account ' || initcap(translate(substr(md5('a' || g), 1, 8), '0123456789', 'aeiouyrstl'))"
    " FROM generate_series(1, :n / 20) g",
    """INSERT INTO customer (id, number, kind, first_name, last_name, company_name, email,
         phone, reference_id, sales_rep_id, account_id, created_at, updated_at, tags,
         email_marketing_state)
       SELECT g, 'C-' || lpad(g::text, 7, '0'),
              (CASE WHEN g % 5 = 0 THEN 'BUSINESS' ELSE 'INDIVIDUAL' END)::customer_kind,
              initcap(translate(substr(md5('f' || g), 1, 6), '0123456789', 'aeiouyrstl')),
              initcap(translate(substr(md5('l' || g), 1, 8), '0123456789', 'aeiouyrstl')),
              CASE WHEN g % 5 = 0 THEN initcap(translate(substr(md5('c' || g), 1, 9),
                   '0123456789', 'aeiouyrstl')) || ' Ltd' END,
              'user' || g || '@example.com', '+1415' || lpad((g % 10000000)::text, 7, '0'),
              CASE WHEN g % 3 = 0 THEN 'LEGACY-' || g END,
              1 + g % 50, CASE WHEN g % 10 = 0 THEN 1 + g % (:n / 20) END,
              now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval,
              -- a cohort of ~200 customers each, "VIP" on one in 2,000, "wholesale" on 1 in 7
              ARRAY['cohort-' || (g % 5000)]
                || CASE WHEN g % 2000 = 0 THEN ARRAY['VIP'] ELSE '{}' END
                || CASE WHEN g % 7 = 0 THEN ARRAY['wholesale'] ELSE '{}' END,
              (CASE WHEN g % 3 = 0 THEN 'SUBSCRIBED' ELSE 'NOT_SUBSCRIBED' END)::marketing_state
       FROM generate_series(1, :n) g""",
    f"""INSERT INTO address (customer_id, kind, is_default, line1, city, region, postal_code,
         country)
       SELECT g, 'SHIPPING', true, g || ' Main St', 'City ' || (g % 5000),
              CASE WHEN g % 7 = 0 THEN 'CA' ELSE 'NY' END, 'P' || (g % 100000) || 'X',
              (ARRAY{COUNTRIES})[1 + g % 10]
       FROM generate_series(1, :n) g""",
    "INSERT INTO customer_sales_channel SELECT g, 1 + g % 20 FROM generate_series(1, :n) g",
    """INSERT INTO orders (customer_id, number, source, currency, subtotal, tax_total, total,
         placed_at)
       SELECT g, 'O-' || lpad(g::text, 7, '0'), 'CHECKOUT', 'USD', 10, 0, 10, now()
       FROM generate_series(1, :n, 4) g""",
    "INSERT INTO custom_field_definition (id, key, label, type) VALUES"
    " (1, 'ltv', 'Lifetime value', 'NUMBER'), (2, 'tier', 'Tier', 'TEXT')",
    "INSERT INTO custom_field_value (customer_id, definition_id, number_value)"
    " SELECT g, 1, g % 100000 FROM generate_series(1, :n, 2) g",
    "INSERT INTO custom_field_value (customer_id, definition_id, text_value)"
    " SELECT g, 2, (ARRAY['gold', 'silver', 'bronze'])[1 + g % 3]"
    " FROM generate_series(1, :n, 5) g",
]


def cases(p: dict) -> dict[str, dict]:
    """Filters built from a real customer in the middle of the table (`p`)."""
    rep = f"VXNlcjo{p['rep_b64']}"
    channel = "U2FsZXNDaGFubmVsOjM="  # SalesChannel:3
    return {
        "firstName": {"firstName": p["first_name"].lower()},
        "lastName PREFIX": {"lastName": p["last_name"][:4], "nameMatch": "PREFIX"},
        "lastName FUZZY": {"lastName": p["last_name"][:-1] + "x", "nameMatch": "FUZZY"},
        "company": {"company": p["company"].upper()},
        "country": {"country": "NL"},
        "state": {"country": "US", "state": "CA"},
        "city": {"city": p["city"].lower()},
        "number": {"number": p["number"]},
        "account number": {"number": p["account"], "kind": "ACCOUNT"},
        "referenceId": {"referenceId": p["reference_id"]},
        "postalCode": {"postalCode": p["postal_code"].lower()},
        "email": {"email": p["email"].upper()},
        "phone": {"phone": f"(415) {p['phone'][5:8]}-{p['phone'][8:]}"},
        "orderId": {"orderId": p["order"]},
        "salesRep": {"salesRep": rep},
        "salesChannels": {"salesChannels": [channel]},
        "customFields": {"customFields": [{"key": "ltv", "min": "500", "max": "501"}]},
        "combo: name + country": {
            "lastName": p["last_name"][:3],
            "nameMatch": "PREFIX",
            "country": p["country"],
        },
        "combo: rep + state + tier": {
            "salesRep": rep,
            "country": "US",
            "state": "CA",
            "customFields": [{"key": "tier", "equals": "gold"}],
        },
        "combo: city + channel, excl. channel": {
            "city": p["city"],
            "salesChannels": [channel],
            "excludeSalesChannels": ["U2FsZXNDaGFubmVsOjQ="],
        },
        "tags any (one cohort)": {"tags": {"any": [f"Cohort-{p['cohort']}"]}},
        "tags all (cohort + wholesale)": {"tags": {"all": [f"cohort-{p['cohort']}", "WHOLESALE"]}},
        "tags any + none": {"tags": {"any": [f"cohort-{p['cohort']}"], "none": ["wholesale"]}},
        "combo: tag + country + consent": {
            "tags": {"any": ["wholesale"]},
            "country": "NL",
            "emailMarketing": "SUBSCRIBED",
            "lastName": p["last_name"][:2],
            "nameMatch": "PREFIX",
        },
        "RefineSearch: tag VIP (500)": {"tags": {"any": ["vip"]}},
        "RefineSearch: empty filter": {},
        "RefineSearch: country": {"country": "US"},
    }


PROBE = """SELECT c.first_name, c.last_name, c.number, c.email, c.phone,
  (SELECT company_name FROM customer WHERE company_name IS NOT NULL AND id >= c.id
   ORDER BY id LIMIT 1) AS company,
  (SELECT reference_id FROM customer WHERE reference_id IS NOT NULL AND id >= c.id
   ORDER BY id LIMIT 1) AS reference_id,
  (SELECT number FROM account WHERE id = (SELECT account_id FROM customer
     WHERE account_id IS NOT NULL AND id >= c.id ORDER BY id LIMIT 1)) AS account,
  (SELECT number FROM orders WHERE customer_id >= c.id ORDER BY customer_id LIMIT 1) AS order,
  a.city, a.postal_code, a.country, c.sales_rep_id, c.id % 5000 AS cohort
FROM customer c JOIN address a ON a.customer_id = c.id WHERE c.id = :id"""


async def probe(url: str, n: int) -> dict:
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as conn:
        row = (await conn.execute(text(PROBE), {"id": n // 2 + 7})).one()._asdict()
    await engine.dispose()
    import base64

    row["rep_b64"] = base64.b64encode(f"User:{row['sales_rep_id']}".encode()).decode()[7:]
    return row


QUERY = """query($f: CustomerFilter) { customerSearch(filter: $f, first: 50) {
  __typename
  ... on CustomerSearchMatches { customers { edges { node { number displayName } } } }
  ... on RefineSearch { countAtLeast kinds { value count } states { value count }
        salesReps { salesRep { email } count } salesChannels { salesChannel { code } count }
        tags { name customerCount } }
} }"""


async def ensure_seeded(url: str, n: int) -> None:
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as conn:
        have = (await conn.execute(text("SELECT count(*) FROM customer"))).scalar()
    if have != n:
        print(f"building {n:,} customers …", flush=True)
        t0 = time.perf_counter()
        async with engine.begin() as conn:
            for sql in SEED:
                await conn.execute(text(sql), {"n": n})
            for table in (
                "customer",
                "account",
                "orders",
                "app_user",
                "sales_channel",
                "custom_field_definition",
            ):
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" (SELECT max(id) FROM {table}))"
                    )
                )
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
        print(f"built in {time.perf_counter() - t0:.0f} s", flush=True)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    db = open_database(
        Settings(database_url=os.environ.get("DATABASE_URL"), data_dir=args.data_dir)
    )
    server = None
    results: dict[str, dict] = {}
    try:
        asyncio.run(ensure_seeded(db.url, args.customers))
        sample = asyncio.run(probe(db.url, args.customers))
        token = asyncio.run(create_user(db.url, email=f"b{time.time_ns()}@x.test", role="ADMIN"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env={**os.environ, "DATABASE_URL": db.url},
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for name, f in cases(sample).items():
                timings, kind, size = [], None, None
                for i in range(args.repeat + 2):
                    t0 = time.perf_counter()
                    body = client.post(
                        "/graphql", json={"query": QUERY, "variables": {"f": f}}
                    ).json()
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert "errors" not in body, (name, body["errors"])
                    if i >= 2:  # the first two warm caches
                        timings.append(elapsed)
                    result = body["data"]["customerSearch"]
                    kind = result["__typename"]
                    size = (
                        len(result["customers"]["edges"])
                        if kind == "CustomerSearchMatches"
                        else result["countAtLeast"]
                    )
                timings.sort()
                results[name] = {
                    "p50_ms": round(statistics.median(timings), 1),
                    "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
                    "result": kind,
                    "rows": size,
                }
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        db.stop()
    print(f"\ncustomerSearch on {args.customers:,} customers, {args.repeat} requests each, HTTP")
    print(f"{'filter':<40}{'p50 ms':>9}{'p95 ms':>9}  result")
    for name, r in results.items():
        print(f"{name:<40}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}  {r['result']} ({r['rows']})")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "search.json").write_text(json.dumps({"customers": args.customers, **results}, indent=2))


if __name__ == "__main__":
    main()
