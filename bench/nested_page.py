"""Baseline benchmark: the nested customer page over HTTP. `python -m bench.nested_page`.

Seeds (or reuses) a database of N customers (default 100,000) in its own data directory,
starts the service with uvicorn on loopback, and loads it with wrk (one thread) at 1 and
10 connections, each request a random keyset page (from 2,000 cursors) of 50 customers
with their 10 latest orders (lines, totals), all addresses and 10 latest ledger entries.
Prints req/s, p50/p99 latency, SQL statements per request, response size and the server's
peak RSS; writes bench/results/nested_page.json. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from sqlalchemy import select, text

from resolvers.customers import SORT_COLUMNS, CustomerOrderField
from resolvers.pagination import Ordering, encode_cursor
from server.app import create_app
from server.database import StatementCounter, make_engine
from server.runtime import open_database
from server.seed import seed
from server.settings import Settings
from server.users import create_user

DEFAULT_DIR = Path.home() / ".local" / "share" / "customer-graph-bench"
RESULTS = Path(__file__).parent / "results"

QUERY = """query Page($after: String) {
  customers(first: 50, after: $after, orderBy: {field: NAME}) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id number displayName email phone
      addresses { kind line1 city region postalCode country isDefault }
      orders(first: 10) { edges { node {
        number status placedAt currency
        subtotal { amount } taxTotal { amount } total { amount currency }
        lines { sku description quantity unitPrice { amount } lineTotal { amount } }
      } } }
      ledgerTransactions(first: 10) { edges { node {
        kind createdAt amount { amount currency } balanceAfter { amount }
      } } }
    } }
  }
}"""

WRK_LUA = """
local cursors = {}
for line in io.lines("%(cursors)s") do cursors[#cursors + 1] = line end
local query = %(query)s
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
math.randomseed(42)
request = function()
  local c = cursors[math.random(#cursors)]
  return wrk.format(nil, nil, nil, '{"query":' .. query .. ',"variables":{"after":"' .. c .. '"}}')
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def prepare(url: str, customers: int, pages: int) -> tuple[str, list[str]]:
    engine = make_engine(url, pool_size=2)
    async with engine.connect() as conn:
        have = (await conn.execute(text("SELECT count(*) FROM customer"))).scalar()
    if have != customers:
        await engine.dispose()
        print(f"seeding {customers:,} customers …", flush=True)
        await seed(url, customers=customers, reset=True)
        engine = make_engine(url, pool_size=2)
    ordering = Ordering(SORT_COLUMNS[CustomerOrderField.NAME])
    columns = ordering.columns
    async with engine.connect() as conn:
        await conn.execute(text("SELECT setseed(0.42)"))
        rows = (await conn.execute(select(*columns).order_by(text("random()")).limit(pages))).all()
    await engine.dispose()
    token = await create_user(url, email=f"bench-{time.time_ns()}@example.com", role="ADMIN")
    return token, [encode_cursor(ordering, row) for row in rows]


async def in_process_figures(url: str, token: str, cursor: str) -> dict:
    """SQL statements and response size for one page, through the same app in-process."""
    engine = make_engine(url, pool_size=4)
    counter = StatementCounter(engine)
    app = create_app(engine=engine, settings=Settings(database_url=url))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench"
    ) as client:
        payload = {"query": QUERY, "variables": {"after": cursor}}
        headers = {"Authorization": f"Bearer {token}"}
        await client.post("/graphql", json=payload, headers=headers)  # warm caches
        counter.reset()
        response = await client.post("/graphql", json=payload, headers=headers)
    await engine.dispose()
    body = response.json()
    assert "errors" not in body, body["errors"]
    edges = body["data"]["customers"]["edges"]
    return {
        "sql_statements": counter.count,
        "response_bytes": len(response.content),
        "page_customers": len(edges),
        "page_orders": sum(len(e["node"]["orders"]["edges"]) for e in edges),
    }


class PeakRss(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                procs = [self.process, *self.process.children(recursive=True)]
                workers = [p for p in procs if "postgres" not in p.name()]
                self.peak = max(self.peak, max(p.memory_info().rss for p in workers))
            except psutil.Error:
                pass
            time.sleep(0.2)


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


async def run_httpx(url: str, token: str, cursors: list[str], connections: int, seconds: int):
    """Fallback load generator when wrk is not installed."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    rng = random.Random(42)
    async with httpx.AsyncClient(timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                payload = {"query": QUERY, "variables": {"after": rng.choice(cursors)}}
                await client.post(url, json=payload, headers={"Authorization": f"Bearer {token}"})
                latencies.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(worker() for _ in range(connections)))
    latencies.sort()
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "non_2xx": 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()

    db = open_database(
        Settings(database_url=os.environ.get("DATABASE_URL"), data_dir=args.data_dir)
    )
    server = None
    try:
        token, cursors = asyncio.run(prepare(db.url, args.customers, args.pages))
        figures = asyncio.run(in_process_figures(db.app_url, token, cursors[0]))
        port = free_port()
        # As in production: the application role (row-level security), the owner migrating;
        # the page costs 256,050 by the cost rule: raised, as bench.compare does.
        env = {
            **os.environ,
            "DATABASE_URL": db.app_url,
            "CUSTOMER_GRAPH_MIGRATION_URL": db.url,
            "CUSTOMER_GRAPH_MAX_COST": "1000000",
            "CUSTOMER_GRAPH_COST_BUDGET": "0",  # throughput, not a fair share
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                "1",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
        )
        url = f"http://127.0.0.1:{port}/graphql"
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        rss = PeakRss(server.pid)
        rss.start()
        tool = "wrk" if shutil.which("wrk") else "httpx"
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            cursor_file = Path(tmp) / "cursors.txt"
            cursor_file.write_text("\n".join(cursors) + "\n")
            script = Path(tmp) / "page.lua"
            script.write_text(
                WRK_LUA
                % {"cursors": cursor_file, "token": token, "query": lua_string(json.dumps(QUERY))}
            )
            for connections in (1, 10):
                if tool == "wrk":
                    run_wrk(url, script, connections, args.warmup)
                    results[connections] = run_wrk(url, script, connections, args.seconds)
                else:
                    asyncio.run(run_httpx(url, token, cursors, connections, args.warmup))
                    results[connections] = asyncio.run(
                        run_httpx(url, token, cursors, connections, args.seconds)
                    )
        rss.running = False
        report = {
            "customers": args.customers,
            "load_generator": tool,
            **figures,
            "peak_rss_mb": round(rss.peak / 2**20, 1),
            "runs": {str(k): v for k, v in results.items()},
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        db.stop()
    print(
        f"\nnested page: 50 customers x (10 orders + lines, addresses, 10 ledger entries); "
        f"{args.customers:,} customers; load: {tool}, {args.seconds}s per run"
    )
    print(
        f"SQL statements per request: {report['sql_statements']}; response: "
        f"{report['response_bytes']:,} bytes; server peak RSS: {report['peak_rss_mb']} MB"
    )
    print(f"{'connections':>12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for connections, r in results.items():
        print(f"{connections:>12}{r['rps']:>10.1f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nested_page.json").write_text(json.dumps(report, indent=2))


def lua_string(value: str) -> str:
    """A Lua string literal holding `value` (a JSON string, quotes included)."""
    return "[==[" + value + "]==]"


if __name__ == "__main__":
    main()
