"""Side by side: this service and PostGraphile v5 on the same 100,000-customer database.

    python -m bench.compare [--customers 100000] [--duration 20] [--workers 1]

Starts (or reuses) an embedded PostgreSQL in $CUSTOMER_GRAPH_BENCH_DIR (default
~/.cache/customer-graph-bench), seeds it once (bench/seed.py), starts this service
(`python -m server.cli serve`, uvloop + httptools) and PostGraphile
(../shared/peers/postgraphile/run.sh), checks both return the same data for the page
(50 customers by name, 10 latest orders with lines and totals, all addresses, 10 latest
ledger entries), then loads each with wrk (one thread, loopback, warm-up, then
`--duration` seconds at 1 and at 10 connections, random keyset pages among ~2,000
cursors) and prints req/s, p50 and p99 for both, the ratio, and this service's peak RSS
per worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
# The peer sits beside the repository (../shared/peers/postgraphile); PEER_RUN_SH overrides.
_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "peers" / "postgraphile" / "run.sh"
PEER = Path(os.environ.get("PEER_RUN_SH", _BESIDE))

OURS = """query Page($after: String) {
  customers(first: 50, after: $after, orderBy: {field: NAME}) {
    pageInfo { hasNextPage endCursor }
    nodes {
      number firstName lastName companyName email
      orders(first: 10) { nodes {
        number status placedAt
        subtotal { amount currency } taxTotal { amount } total { amount currency }
        lines { position sku description quantity unitPrice { amount } lineTotal { amount } }
      } }
      addresses { kind isDefault line1 city postalCode country }
      ledgerTransactions(first: 10) { nodes {
        kind memo createdAt amount { amount currency } balanceAfter { amount }
      } }
    }
  }
}"""

PEER_PAGE = """query Page($after: Cursor) {
  allCustomers(first: 50, after: $after, orderBy: [SORT_NAME_ASC, PRIMARY_KEY_ASC]) {
    pageInfo { hasNextPage endCursor }
    nodes {
      number firstName lastName companyName email
      ordersByCustomerId(first: 10, orderBy: [PLACED_AT_DESC, PRIMARY_KEY_DESC]) { nodes {
        number status placedAt subtotal taxTotal total currency
        orderLinesByOrderId(orderBy: [POSITION_ASC, PRIMARY_KEY_ASC]) { nodes {
          position sku description quantity unitPrice lineTotal
        } }
      } }
      addressesByCustomerId(orderBy: PRIMARY_KEY_ASC) { nodes {
        kind isDefault line1 city postalCode country
      } }
      ledgerTransactionsByCustomerId(first: 10, orderBy: PRIMARY_KEY_DESC) { nodes {
        kind memo createdAt amount currency balanceAfter
      } }
    }
  }
}"""

OUR_CURSORS = """query($after: String) { customers(first: 50, after: $after, orderBy: {field: NAME})
  { pageInfo { hasNextPage endCursor } } }"""
PEER_CURSORS = """query($after: Cursor) { allCustomers(first: 50, after: $after,
  orderBy: [SORT_NAME_ASC, PRIMARY_KEY_ASC]) { pageInfo { hasNextPage endCursor } } }"""

WRK_LUA = """
local bodies = {}
for line in io.lines(os.getenv("WRK_BODIES")) do bodies[#bodies + 1] = line end
local headers = {["Content-Type"] = "application/json"}
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then headers["Authorization"] = auth end
math.randomseed(42)
request = function()
  return wrk.format("POST", "/graphql", headers, bodies[math.random(#bodies)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


# ---------------------------------------------------------------------------------------
# database


def open_bench_database(data_dir: Path, customers: int):
    from server.database import EmbeddedPostgres, ensure_database
    from server.migrate import upgrade

    embedded = EmbeddedPostgres(data_dir / "pgdata")
    url = ensure_database(embedded, "customer_graph")
    upgrade(url)
    token = asyncio.run(_prepare(url, customers))
    return embedded, url, token


async def _prepare(url: str, customers: int) -> str:
    from bench.seed import customer_count, seed
    from server.database import make_engine
    from server.users import create_user

    engine = make_engine(url, pool_size=1)
    try:
        have = await customer_count(engine)
        if have == 0:
            print(f"seeding {customers:,} customers…", flush=True)
            started = time.perf_counter()
            await seed(engine, customers)
            print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)
        elif have < customers:
            print(f"note: reusing a database of {have:,} customers", flush=True)
    finally:
        await engine.dispose()
    email = f"bench-{int(time.time() * 1000)}@bench.example"
    return await create_user(url, email=email, role="ADMIN", token_days=1)


# ---------------------------------------------------------------------------------------
# servers


def start_service(
    url: str, port: int, workers: int, *, owner: bool = False, log: Path | None = None
) -> subprocess.Popen:
    from server.runtime import APP_ROLE, with_user

    # As in production: the application role, bound by row-level security; `owner`
    # serves as the owner instead (RLS bypassed), to measure what RLS costs.
    app_url = url if owner else with_user(url, APP_ROLE)
    # The 50-customer page may return up to 256,050 nodes by the cost rule (10 orders
    # of up to 500 lines each): a deployment serving it raises the limit, as here.
    env = dict(
        os.environ,
        DATABASE_URL=app_url,
        CUSTOMER_GRAPH_MIGRATION_URL=url,
        CUSTOMER_GRAPH_MAX_COST="1000000",
        CUSTOMER_GRAPH_COST_BUDGET="0",  # throughput, not a client's fair share
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(port),
            # `log`: a request line per request (JSON), to that file; else none.
            *(["--log-level", "info"] if log else ["--no-access-log", "--log-level", "warning"]),
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab") if log else None,
    )
    for _ in range(120):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit("the service did not start")
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the service did not answer /healthz")


def start_peer(url: str, port: int) -> None:
    env = dict(os.environ, DATABASE_URL=url, PEER_PORT=str(port))
    subprocess.run([str(PEER), "start"], check=True, env=env)


def stop_peer(port: int) -> None:
    env = dict(os.environ, PEER_PORT=str(port))
    subprocess.run([str(PEER), "stop"], check=False, env=env)


_HTTP = httpx.Client(timeout=60)  # one client: a new one per call costs an SSL context


def post(url: str, query: str, variables: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = _HTTP.post(url, json={"query": query, "variables": variables}, headers=headers)
    body = r.json()
    if body.get("errors"):
        raise SystemExit(f"{url}: {body['errors']}")
    return body["data"]


def cursors(url: str, query: str, root: str, pages: int, token: str | None) -> list:
    out: list = [None]
    after = None
    while len(out) < pages:
        info = post(url, query, {"after": after}, token)[root]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
        out.append(after)
    return out


def warm(url: str, query: str, cursors: list, token: str | None) -> None:
    """Read every page once: both systems then run on a warm cache (the OS page cache and
    shared buffers), not the first one on a cold disk and the second on what it left."""
    with ThreadPoolExecutor(4) as pool:
        for _ in pool.map(lambda c: post(url, query, {"after": c}, token) and None, cursors):
            pass  # keep nothing: 2,000 parsed pages would hold 1.5 GB


# ---------------------------------------------------------------------------------------
# same data?


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def normal_ours(data: dict) -> list:
    return [
        {
            "customer": [c[k] for k in ("number", "firstName", "lastName", "companyName", "email")],
            "orders": [
                (
                    o["number"],
                    o["status"],
                    _ts(o["placedAt"]),
                    Decimal(o["subtotal"]["amount"]),
                    Decimal(o["taxTotal"]["amount"]),
                    Decimal(o["total"]["amount"]),
                    o["total"]["currency"],
                    [
                        (
                            li["position"],
                            li["sku"],
                            li["description"],
                            li["quantity"],
                            Decimal(li["unitPrice"]["amount"]),
                            Decimal(li["lineTotal"]["amount"]),
                        )
                        for li in o["lines"]
                    ],
                )
                for o in c["orders"]["nodes"]
            ],
            "addresses": sorted(
                tuple(a[k] for k in ("kind", "isDefault", "line1", "city", "postalCode", "country"))
                for a in c["addresses"]
            ),
            "ledger": [
                (
                    t["kind"],
                    t["memo"],
                    _ts(t["createdAt"]),
                    Decimal(t["amount"]["amount"]),
                    t["amount"]["currency"],
                    Decimal(t["balanceAfter"]["amount"]),
                )
                for t in c["ledgerTransactions"]["nodes"]
            ],
        }
        for c in data["customers"]["nodes"]
    ]


def normal_peer(data: dict) -> list:
    return [
        {
            "customer": [c[k] for k in ("number", "firstName", "lastName", "companyName", "email")],
            "orders": [
                (
                    o["number"],
                    o["status"],
                    _ts(o["placedAt"]),
                    Decimal(o["subtotal"]),
                    Decimal(o["taxTotal"]),
                    Decimal(o["total"]),
                    o["currency"],
                    [
                        (
                            li["position"],
                            li["sku"],
                            li["description"],
                            li["quantity"],
                            Decimal(li["unitPrice"]),
                            Decimal(li["lineTotal"]),
                        )
                        for li in o["orderLinesByOrderId"]["nodes"]
                    ],
                )
                for o in c["ordersByCustomerId"]["nodes"]
            ],
            "addresses": sorted(
                tuple(a[k] for k in ("kind", "isDefault", "line1", "city", "postalCode", "country"))
                for a in c["addressesByCustomerId"]["nodes"]
            ),
            "ledger": [
                (
                    t["kind"],
                    t["memo"],
                    _ts(t["createdAt"]),
                    Decimal(t["amount"]),
                    t["currency"],
                    Decimal(t["balanceAfter"]),
                )
                for t in c["ledgerTransactionsByCustomerId"]["nodes"]
            ],
        }
        for c in data["allCustomers"]["nodes"]
    ]


# ---------------------------------------------------------------------------------------
# load


class RssSampler(threading.Thread):
    """Peak RSS of each worker process of the service (the serve process when workers=1)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                children = self.root.children(recursive=True)
                procs = [
                    p
                    for p in children
                    if "python" in p.name()
                    and not any("resource_tracker" in part for part in p.cmdline())
                ] or [self.root]
                for p in procs:
                    self.peak[p.pid] = max(self.peak.get(p.pid, 0), p.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.2)


def wrk(port: int, bodies: Path, auth: str, connections: int, seconds: int, lua: Path) -> dict:
    env = dict(os.environ, WRK_BODIES=str(bodies), WRK_AUTH=auth)
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        f"http://127.0.0.1:{port}/graphql",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    requests, duration_us, p50, p99, errors = (int(x) for x in line.split()[1:])
    return {
        "rps": requests / (duration_us / 1e6),
        "p50": p50 / 1000,
        "p99": p99 / 1000,
        "errors": errors,
    }


def ensure_wrk() -> None:
    """wrk comes from Debian's packages; as root, install it when it is missing."""
    if shutil.which("wrk") is not None:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (apt-get install -y wrk)…", flush=True)
        quiet = {"stdout": subprocess.DEVNULL}
        if subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, **quiet).returncode:
            subprocess.run(["apt-get", "update"], check=False, **quiet)
            subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, **quiet)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--duration", type=int, default=20, help="seconds per measured run")
    p.add_argument("--warmup", type=int, default=5, help="seconds of warm-up per run")
    p.add_argument("--pages", type=int, default=2000, help="distinct keyset pages to draw from")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--peer-port", type=int, default=5001)
    p.add_argument("--connections", default="1,10")
    p.add_argument("--owner", action="store_true", help="serve as the owner: no row-level security")
    p.add_argument(
        "--access-log",
        action="store_true",
        help="the service logs a JSON request line per request (to service.log in the data"
        " dir); metrics are on unless CUSTOMER_GRAPH_METRICS=0",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(
            os.environ.get("CUSTOMER_GRAPH_BENCH_DIR", "~/.cache/customer-graph-bench")
        ).expanduser(),
    )
    args = p.parse_args(argv)
    ensure_wrk()

    embedded, url, token = open_bench_database(args.data_dir, args.customers)
    service = None
    tmp = Path(tempfile.mkdtemp(prefix="cg-bench-"))
    try:
        log = args.data_dir / "service.log" if args.access_log else None
        service = start_service(url, args.port, args.workers, owner=args.owner, log=log)
        start_peer(url, args.peer_port)
        ours_url = f"http://127.0.0.1:{args.port}/graphql"
        peer_url = f"http://127.0.0.1:{args.peer_port}/graphql"

        ours_cursors = cursors(ours_url, OUR_CURSORS, "customers", args.pages, token)
        peer_cursors = cursors(peer_url, PEER_CURSORS, "allCustomers", args.pages, None)
        pages = min(len(ours_cursors), len(peer_cursors))
        print(f"{pages} keyset pages of 50 customers", flush=True)

        rng = random.Random(7)
        checked = [0, 1, pages - 1, *rng.sample(range(pages), min(5, pages))]
        for i in checked:
            ours = normal_ours(post(ours_url, OURS, {"after": ours_cursors[i]}, token))
            peer = normal_peer(post(peer_url, PEER_PAGE, {"after": peer_cursors[i]}))
            if ours != peer:
                raise SystemExit(f"page {i}: the two services disagree")
        sample = post(ours_url, OURS, {"after": ours_cursors[1]}, token)
        size = len(orjson.dumps(sample))
        print(f"same data on {len(checked)} pages (a page is {size:,} bytes of JSON)", flush=True)

        lua = tmp / "pages.lua"
        lua.write_text(WRK_LUA)
        ours_bodies, peer_bodies = tmp / "ours.jsonl", tmp / "peer.jsonl"
        ours_bodies.write_bytes(
            b"\n".join(
                orjson.dumps({"query": OURS, "variables": {"after": c}})
                for c in ours_cursors[:pages]
            )
            + b"\n"
        )
        peer_bodies.write_bytes(
            b"\n".join(
                orjson.dumps({"query": PEER_PAGE, "variables": {"after": c}})
                for c in peer_cursors[:pages]
            )
            + b"\n"
        )

        started = time.perf_counter()
        warm(ours_url, OURS, ours_cursors[:pages], token)
        warm(peer_url, PEER_PAGE, peer_cursors[:pages], None)
        print(f"read every page once on both ({time.perf_counter() - started:.0f} s)", flush=True)

        sampler = RssSampler(service.pid)
        sampler.start()
        results: dict[tuple[str, int], dict] = {}
        for connections in (int(c) for c in args.connections.split(",")):
            for name, port, bodies, auth in (
                ("customer-graph", args.port, ours_bodies, f"Bearer {token}"),
                ("postgraphile", args.peer_port, peer_bodies, ""),
            ):
                wrk(port, bodies, auth, connections, args.warmup, lua)
                results[(name, connections)] = r = wrk(
                    port, bodies, auth, connections, args.duration, lua
                )
                print(
                    f"  {name:15} c={connections:<3} {r['rps']:8.1f} req/s  p50 {r['p50']:7.1f} ms"
                    f"  p99 {r['p99']:7.1f} ms  errors {r['errors']}",
                    flush=True,
                )
        sampler.stop.set()
        sampler.join()

        print()
        print(f"nested customer page, {pages} random keyset pages, wrk -t1, {args.duration} s")
        print(
            "| connections | customer-graph req/s | p50 ms | p99 ms "
            "| PostGraphile req/s | p50 ms | p99 ms | ratio |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for connections in (int(c) for c in args.connections.split(",")):
            a = results[("customer-graph", connections)]
            b = results[("postgraphile", connections)]
            print(
                f"| {connections} | {a['rps']:.1f} | {a['p50']:.1f} | {a['p99']:.1f} "
                f"| {b['rps']:.1f} | {b['p50']:.1f} | {b['p99']:.1f} "
                f"| {a['rps'] / b['rps']:.2f}x |"
            )
        peaks = ", ".join(f"{v / 2**20:.0f} MB" for v in sampler.peak.values())
        print(f"customer-graph peak RSS per worker ({args.workers} worker(s)): {peaks}")
    finally:
        if service is not None:
            service.terminate()
            try:
                service.wait(timeout=20)
            except subprocess.TimeoutExpired:
                service.kill()
        stop_peer(args.peer_port)
        embedded.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
