"""Side by side: this service and PostGraphile v5 on the same database, shape by shape.

    python -m bench.compare [--customers 100000] [--duration 5] [--rounds 4]
        [--shapes a,b,c,d,e,f] [--workers 1] [--compare-workers] [--json]
        [--compare-server] [--compare-observe] [--compare-pooler] [--no-peer] [--fresh]

Starts (or reuses) an embedded PostgreSQL in $CUSTOMER_GRAPH_BENCH_DIR (default
~/.cache/customer-graph-bench), seeds it once (bench/seed.py), starts this service
(`python -m server.cli serve`, uvloop + httptools, cost limits raised and budgets off) and
PostGraphile (../shared/peers/postgraphile/run.sh, found in a parent of the repository;
PEER_RUN_SH overrides). The shapes (bench/shapes.py): a heavy page, b light page, c one
customer's mobile view, d search by last-name prefix and country, e customerCreate, f
ledgerTransfer (ours only: the peer has no transfer). Each shape is first checked to return
the same data on both sides (normalised answers, several parameter sets); a shape that
disagrees, or answers with errors, is reported and not timed.

Then rounds: each round runs every shape at every concurrency (reads at --connections,
writes at 10) on each service in turn, a --duration-second wrk slice each (one thread,
loopback; random parameters; the order of the services alternates every round), so a burst
of other work on the machine lands on both sides rather than on one. Figures add up over
the rounds (requests over seconds; p50/p99 from the merged latency histograms). Any GraphQL
error, `userErrors` entry or non-200 answer in a slice counts as a failure, and a shape with
failures is reported as failed rather than timed. Prints one table (req/s, p99 and their
ratios), then the CPU milliseconds per request of each side's own processes and of
PostgreSQL's during its slices (who a second worker could help), and the peak RSS of this
service's workers; `--compare-workers` also runs ours with 1 and 2 workers in the same
rounds; `--json` writes everything to bench/results/.

Two processes of the same service, same settings, differ by up to ~15% on the small
shapes on this machine, and keep their difference for as long as they live. `--fresh`
starts each of ours anew before every round (after a short warm-up), so that luck
averages out over the rounds: use it with many short rounds to measure a small
difference such as `--compare-observe`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
import orjson
import psutil

from bench import shapes as S

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
# Where the benchmarks' embedded PostgreSQL lives (seeded once, reused by every bench).
BENCH_DIR = Path(
    os.environ.get("CUSTOMER_GRAPH_BENCH_DIR", "~/.cache/customer-graph-bench")
).expanduser()
PEER_TAIL = Path("shared", "peers", "postgraphile", "run.sh")


def _peer_script() -> Path:
    """PEER_RUN_SH, else ../shared/peers/postgraphile/run.sh from the repository or any of
    its parents (a git worktree sits a level deeper than the main checkout)."""
    if given := os.environ.get("PEER_RUN_SH"):
        return Path(given)
    for parent in ROOT.parents:
        if (parent / PEER_TAIL).exists():
            return parent / PEER_TAIL
    return ROOT.parent / PEER_TAIL


PEER = _peer_script()
# Its default install (run.sh's PEER_DIR): reused, so a run needs no npm install.
PEER_INSTALL = Path.home() / ".cache" / "customer-graph-peers" / "postgraphile"

# The heavy page, as other benchmarks (bench/rls.py) import it.
OURS = S.HEAVY_OURS
PEER_PAGE = S.HEAVY_PEER

OUR_CURSORS = """query($after: String) { customers(first: 50, after: $after, orderBy: {field: NAME})
  { pageInfo { hasNextPage endCursor } } }"""
PEER_CURSORS = """query($after: Cursor) { allCustomers(first: 50, after: $after,
  orderBy: [SORT_NAME_ASC, PRIMARY_KEY_ASC]) { pageInfo { hasNextPage endCursor } } }"""

# One wrk thread: request() draws a random body (the counter placeholder filled in for
# writes), response() counts failures, done() prints the totals and the latency histogram
# (microseconds: value:count) so slices of several rounds merge into exact percentiles.
WRK_LUA = """
local bodies = {}
for line in io.lines(os.getenv("WRK_BODIES")) do bodies[#bodies + 1] = line end
local headers = {["Content-Type"] = "application/json"}
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then headers["Authorization"] = auth end
local tag = os.getenv("WRK_TAG") or "0"
local n = 0
math.randomseed(tonumber(os.getenv("WRK_SEED") or "42"))
failures = 0
first_failure = ""
request = function()
  local body = bodies[math.random(#bodies)]
  if body:find("__COUNTER__", 1, true) then
    n = n + 1
    body = body:gsub("__COUNTER__", tag .. "-" .. n)
  end
  return wrk.format("POST", "/graphql", headers, body)
end
response = function(status, headers, body)
  if status ~= 200 or body:find('"errors":', 1, true) or body:find('"userErrors":[{', 1, true)
  then
    failures = failures + 1
    if first_failure == "" then first_failure = status .. " " .. body:sub(1, 300) end
  end
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function(summary, latency, requests)
  local e = summary.errors
  local failed, sample = 0, ""
  for _, t in ipairs(threads) do
    failed = failed + t:get("failures")
    if sample == "" then sample = t:get("first_failure") end
  end
  io.write(string.format("RESULT %d %d %d %d\\n", summary.requests, summary.duration,
    e.status + e.connect + e.read + e.write + e.timeout, failed))
  local parts = {}
  for i = 1, #latency do
    local value, count = latency(i)
    parts[#parts + 1] = string.format("%d:%d", value, count)
  end
  io.write("LATENCY " .. table.concat(parts, " ") .. "\\n")
  if sample ~= "" then io.write("FAILURE " .. sample:gsub("\\n", " ") .. "\\n") end
end
""".replace("__COUNTER__", S.COUNTER)


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
        # The peer reads its schema when it starts: its search function must exist first.
        await S.install_peer_search(engine)
        if removed := await S.remove_created(engine):
            print(f"removed {removed:,} customers an earlier run created", flush=True)
    finally:
        await engine.dispose()
    email = f"bench-{int(time.time() * 1000)}@bench.example"
    return await create_user(url, email=email, role="ADMIN", token_days=1)


async def _draw_params(url: str, keys: list[str], count: int) -> dict[str, S.Params]:
    from server.database import make_engine

    engine = make_engine(url, pool_size=1)
    rng = random.Random(7)
    try:
        out: dict[str, S.Params] = {}
        if "c" in keys:
            out["c"] = await S.mobile_params(engine, count, rng)
        if "d" in keys:
            out["d"] = await S.search_params(engine, count, rng)
        if "e" in keys:
            out["e"] = S.create_params()
        if "f" in keys:
            out["f"] = await S.transfer_params(engine, count, rng)
        return out
    finally:
        await engine.dispose()


async def _remove_created(url: str) -> int:
    from server.database import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        return await S.remove_created(engine)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------------
# servers


def start_service(
    url: str,
    port: int,
    workers: int,
    *,
    owner: bool = False,
    log: Path | None = None,
    server: str = "uvicorn",
    env_extra: dict[str, str] | None = None,
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
        CUSTOMER_GRAPH_SERVER=server,
    )
    env.update(env_extra or {})
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


def _peer_env(url: str | None, port: int, data_dir: Path, mutations: bool) -> dict:
    env = dict(os.environ, PEER_PORT=str(port), PEER_MUTATIONS="1" if mutations else "0")
    if url:
        env["DATABASE_URL"] = url
    # run.sh keeps its pid file in PEER_DIR: a directory of this run's own (with the
    # shared install linked in) keeps two benchmarks on other ports from stopping each
    # other's peer.
    if "PEER_DIR" not in os.environ and (PEER_INSTALL / "node_modules").is_dir():
        own = data_dir / f"peer-{port}"
        own.mkdir(parents=True, exist_ok=True)
        if not (own / "node_modules").exists():
            (own / "node_modules").symlink_to(PEER_INSTALL / "node_modules")
        env["PEER_DIR"] = str(own)
    return env


def start_peer(url: str, port: int, data_dir: Path, *, mutations: bool = False) -> None:
    # Something on the port (a peer another run left, started with other settings) would
    # answer run.sh's readiness check in the new peer's place.
    if any(
        c.laddr and c.laddr.port == port and c.status == "LISTEN"
        for c in psutil.net_connections("tcp")
    ):
        raise SystemExit(f"port {port} is in use (a peer left running?): --peer-port another")
    # Installed first, into the shared directory: _peer_env then gives this run a pid
    # directory of its own both at start and at stop (on a fresh machine it did not at
    # start, so stop looked for the pid in the wrong place and left the peer running).
    subprocess.run([str(PEER), "install"], check=True, env=dict(os.environ))
    subprocess.run([str(PEER), "start"], check=True, env=_peer_env(url, port, data_dir, mutations))


def stop_peer(port: int, data_dir: Path) -> None:
    subprocess.run([str(PEER), "stop"], check=False, env=_peer_env(None, port, data_dir, False))


_HTTP = httpx.Client(timeout=60)  # one client: a new one per call costs an SSL context


def post(url: str, query: str, variables: dict, token: str | None = None) -> dict:
    """The whole answer ({"data": …, "errors": …}); raises on a non-JSON answer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = _HTTP.post(url, json={"query": query, "variables": variables}, headers=headers)
    return r.json()


def data_of(url: str, query: str, variables: dict, token: str | None = None) -> dict:
    body = post(url, query, variables, token)
    if body.get("errors"):
        raise SystemExit(f"{url}: {body['errors']}")
    return body["data"]


def cursors(url: str, query: str, root: str, pages: int, token: str | None) -> list:
    out: list = [None]
    after = None
    while len(out) < pages:
        info = data_of(url, query, {"after": after}, token)[root]["pageInfo"]
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


@dataclass
class Side:
    """One service under load: ours (one per worker count) or the peer."""

    name: str
    port: int
    token: str | None
    peer: bool

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def auth(self) -> str:
        return f"Bearer {self.token}" if self.token else ""


def check_shape(
    shape: S.Shape, params: S.Params, ours: Side, peer: Side | None, samples: list[int]
) -> str | None:
    """None when both sides answer the same data, without errors, for the sampled
    parameters (ours alone for a shape the peer lacks); else what went wrong."""
    for i in samples:
        ours_vars, peer_vars = params[i]
        tag = f"check-{int(time.time() * 1000)}-{i}"
        ours_vars = _fill(ours_vars, f"{tag}-ours")
        body = post(ours.url, shape.ours, ours_vars, ours.token)
        if body.get("errors"):
            return f"ours answered errors: {str(body['errors'])[:300]}"
        mine = shape.normal_ours(body["data"])
        if shape.peer is None or peer is None:
            if shape.key == "f" and (found := S.difference(mine, S.TRANSFER_EXPECTED)):
                return f"parameters {i}: the transfer recorded {found}"
            continue
        body = post(peer.url, shape.peer, _fill(peer_vars, f"{tag}-peer"), None)
        if body.get("errors"):
            return f"the peer answered errors: {str(body['errors'])[:300]}"
        if found := S.difference(mine, shape.normal_peer(body["data"])):
            return f"parameters {i}: the two services disagree at {found}"
    return None


def _fill(variables: dict, value: str) -> dict:
    raw = orjson.dumps(variables).replace(S.COUNTER.encode(), value.encode())
    return orjson.loads(raw)


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


@dataclass
class Tally:
    """One (shape, connections, side) cell, summed over the rounds."""

    requests: int = 0
    seconds: float = 0.0
    socket_errors: int = 0
    failures: int = 0
    first_failure: str = ""
    latency: Counter = field(default_factory=Counter)  # microseconds -> count
    cpu_side: float = 0.0  # CPU seconds of the side's own processes during its slices
    cpu_postgres: float = 0.0  # and of every PostgreSQL process (the side's statements)

    def add(self, slice_: dict) -> None:
        self.cpu_side += slice_.get("cpu_side", 0.0)
        self.cpu_postgres += slice_.get("cpu_postgres", 0.0)
        self.requests += slice_["requests"]
        self.seconds += slice_["seconds"]
        self.socket_errors += slice_["socket_errors"]
        self.failures += slice_["failures"]
        self.first_failure = self.first_failure or slice_["first_failure"]
        self.latency.update(slice_["latency"])

    def percentile(self, p: float) -> float:
        """Milliseconds; exact over every request of every slice."""
        total = sum(self.latency.values())
        if not total:
            return float("nan")
        seen = 0
        for value in sorted(self.latency):
            seen += self.latency[value]
            if seen >= total * p / 100:
                return value / 1000
        return max(self.latency) / 1000

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> bool:
        return bool(self.failures or self.socket_errors)

    def summary(self) -> dict:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 2),
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "failures": self.failures,
            "socket_errors": self.socket_errors,
            "first_failure": self.first_failure,
            "cpu_ms_per_request": round(1000 * self.cpu_side / self.requests, 3)
            if self.requests
            else None,
            "postgres_cpu_ms_per_request": round(1000 * self.cpu_postgres / self.requests, 3)
            if self.requests
            else None,
        }


def wrk(
    port: int,
    bodies: Path,
    auth: str,
    connections: int,
    seconds: int,
    lua: Path,
    *,
    seed: int = 42,
    tag: str = "0",
) -> dict:
    env = dict(os.environ, WRK_BODIES=str(bodies), WRK_AUTH=auth, WRK_SEED=str(seed), WRK_TAG=tag)
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
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"wrk failed: {done.stderr or done.stdout}")
    out = done.stdout
    lines = {x.split(" ", 1)[0]: x.split(" ", 1)[1] if " " in x else "" for x in out.splitlines()}
    requests, duration_us, socket_errors, failures = (int(x) for x in lines["RESULT"].split())
    latency: Counter = Counter()
    for pair in lines.get("LATENCY", "").split():
        value, count = pair.split(":")
        latency[int(value)] += int(count)
    return {
        "requests": requests,
        "seconds": duration_us / 1e6,
        "socket_errors": socket_errors,
        "failures": failures,
        "first_failure": lines.get("FAILURE", ""),
        "latency": latency,
    }


def write_bodies(path: Path, query: str, variables: list[dict]) -> Path:
    path.write_bytes(
        b"\n".join(orjson.dumps({"query": query, "variables": v}) for v in variables) + b"\n"
    )
    return path


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


def _restart(services, starts, timed, sides_of, conns_of, bodies, lua) -> list:
    """--fresh: ours' services stopped and started anew, each warmed up for 2 s per shape;
    the RSS samplers carry their peaks over."""
    renewed = []
    for side, proc, sampler in services:
        if side.name not in starts:
            renewed.append((side, proc, sampler))
            continue
        sampler.stop.set()
        sampler.join()
        proc.terminate()
        proc.wait(timeout=30)
        proc = starts[side.name]()
        fresh = RssSampler(proc.pid)
        fresh.peak.update(sampler.peak)
        fresh.start()
        for key in timed:
            if side in sides_of(key):
                body = bodies[(key, side.name)]
                wrk(side.port, body, side.auth, max(conns_of(key)), 2, lua, tag=f"f{time.time()}")
        renewed.append((side, proc, fresh))
    return renewed


def _rotate(items: list, by: int) -> list:
    by %= len(items) or 1
    return items[by:] + items[:by]


def _ratio(value: float) -> str:
    return "-" if value != value else f"{value:.2f}x"  # NaN: nothing to compare


def _cell(t: Tally | None) -> tuple[str, str, float, float]:
    """(req/s, p99) as printed, and as numbers (NaN when not timed or failed)."""
    if t is None:
        return "-", "-", float("nan"), float("nan")
    if t.failed:
        n = t.failures + t.socket_errors
        return f"FAILED ({n})", "-", float("nan"), float("nan")
    return f"{t.rps:.1f}", f"{t.percentile(99):.1f}", t.rps, t.percentile(99)


def cpu_seconds(roots: list[int] | None = None, name: str | None = None) -> dict[int, float]:
    """User + system CPU seconds by pid: the process trees at `roots`, or every process
    whose name starts with `name` (PostgreSQL's: the postmaster, backends, autovacuum)."""
    procs: list[psutil.Process] = []
    if roots is not None:
        for pid in roots:
            try:
                root = psutil.Process(pid)
                procs += [root, *root.children(recursive=True)]
            except psutil.Error:
                pass
    if name is not None:
        named = psutil.process_iter(["name"])
        procs += [p for p in named if (p.info["name"] or "").startswith(name)]
    out: dict[int, float] = {}
    for p in procs:
        try:
            times = p.cpu_times()
            out[p.pid] = times.user + times.system
        except psutil.Error:
            pass
    return out


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two `cpu_seconds`: a process that started meanwhile counts
    whole; one that ended (an autovacuum worker) is left out, not subtracted."""
    return sum(max(0.0, t - before.get(pid, 0.0)) for pid, t in after.items())


def metered(run: Callable[[], dict], side_cpu: Callable[[], dict[int, float]]) -> dict:
    """A wrk slice with the CPU its side and PostgreSQL spent meanwhile (wrk's own is
    neither): what one request costs each, which says who a second worker would help."""
    side0, pg0 = side_cpu(), cpu_seconds(name="postgres")
    got = run()
    got["cpu_side"] = spent(side0, side_cpu())
    got["cpu_postgres"] = spent(pg0, cpu_seconds(name="postgres"))
    return got


def print_cpu(rows: list[tuple[str, int]], names: list[str], tallies: dict) -> None:
    """CPU milliseconds per request: each side's processes, and PostgreSQL's meanwhile."""
    print()
    print("CPU ms per request (the service's processes / PostgreSQL's, during its slices)")
    print("| shape | conc | " + " | ".join(names) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in names) + " |")
    for key, conc in rows:
        cells = []
        for name in names:
            t = tallies.get((key, conc, name))
            cells.append(
                f"{1000 * t.cpu_side / t.requests:.2f} / {1000 * t.cpu_postgres / t.requests:.2f}"
                if t and t.requests
                else "-"
            )
        print(f"| {key} {S.SHAPES[key].title} | {conc} | " + " | ".join(cells) + " |")


def print_table(
    title: str,
    left: str,
    right: str,
    rows: list[tuple[str, int]],
    tallies: dict,
    notes: dict[str, str],
) -> list[dict]:
    """One line per (shape, connections): left vs right; ratios > 1 favour the left."""
    print()
    print(title)
    print(
        f"| shape | conc | {left} req/s | {right} req/s | ratio | {left} p99 ms "
        f"| {right} p99 ms | p99 ratio ({right}/{left}) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    out = []
    for key, conc in rows:
        a, ap99, a_rps, a_p99 = _cell(tallies.get((key, conc, left)))
        b, bp99, b_rps, b_p99 = _cell(tallies.get((key, conc, right)))
        ratio = a_rps / b_rps if b_rps == b_rps and b_rps else float("nan")
        p99_ratio = b_p99 / a_p99 if a_p99 == a_p99 and a_p99 else float("nan")
        shape = S.SHAPES[key]
        print(
            f"| {key} {shape.title} | {conc} | {a} | {b} | {_ratio(ratio)} | {ap99} | {bp99} "
            f"| {_ratio(p99_ratio)} |"
        )
        out.append({"shape": key, "connections": conc, "ratio": ratio, "p99_ratio": p99_ratio})
    for key, note in notes.items():
        print(f"  {key}: {note}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--duration", type=int, default=5, help="seconds per slice")
    p.add_argument("--rounds", type=int, default=4, help="rounds of slices (alternating)")
    p.add_argument("--shapes", default="a,b,c,d,e,f", help="which shapes, e.g. a,b")
    p.add_argument("--warmup", type=int, default=5, help="seconds of warm-up per shape/side")
    p.add_argument("--pages", type=int, default=2000, help="distinct keyset pages to draw from")
    p.add_argument("--params", type=int, default=1000, help="parameter sets for c, d, f")
    p.add_argument("--workers", type=int, default=1, help="workers of ours")
    p.add_argument(
        "--compare-workers",
        action="store_true",
        help="also serve ours with 1 worker and time it in the same rounds: 1 vs"
        " max(2, --workers) workers",
    )
    p.add_argument(
        "--compare-server",
        action="store_true",
        help="also serve ours under granian (serve --server granian), timed in the same rounds",
    )
    p.add_argument(
        "--compare-observe",
        action="store_true",
        help="ours logs a JSON request line per request and keeps metrics on; a second ours"
        " runs with both off (CUSTOMER_GRAPH_METRICS=0, --no-access-log): what observing costs",
    )
    p.add_argument(
        "--compare-pooler",
        action="store_true",
        help="also serve ours through a PgBouncer in transaction mode (bench/pooler.py;"
        " CUSTOMER_GRAPH_TRANSACTION_POOLER=1, LISTEN direct), timed in the same rounds",
    )
    p.add_argument("--no-peer", action="store_true", help="ours only")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start ours anew before every round (a 2 s warm-up per shape), so one"
        " process's luck averages out over the rounds",
    )
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--peer-port", type=int, default=5001)
    p.add_argument("--connections", default="1,10", help="for reads; writes run at 10")
    p.add_argument("--owner", action="store_true", help="serve as the owner: no row-level security")
    p.add_argument("--json", action="store_true", help="write the results to bench/results/")
    p.add_argument(
        "--access-log",
        action="store_true",
        help="the service logs a JSON request line per request (to service.log in the data"
        " dir); metrics are on unless CUSTOMER_GRAPH_METRICS=0",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=BENCH_DIR,
    )
    args = p.parse_args(argv)
    keys = [k.strip() for k in args.shapes.split(",") if k.strip()]
    if unknown := [k for k in keys if k not in S.SHAPES]:
        p.error(f"unknown shape(s) {unknown}: choose among {','.join(S.SHAPES)}")
    read_conns = [int(c) for c in args.connections.split(",")]
    workers = max(2, args.workers) if args.compare_workers else args.workers
    ensure_wrk()

    embedded, url, token = open_bench_database(args.data_dir, args.customers)
    services: list[tuple[Side, subprocess.Popen, RssSampler]] = []
    starts: dict[str, Callable[[], subprocess.Popen]] = {}  # ours, by side: for --fresh
    stops: list = []  # more to stop at the end (a PgBouncer)
    peer_started = False
    tmp = Path(tempfile.mkdtemp(prefix="cg-bench-"))
    failed_checks: dict[str, str] = {}
    try:
        wants_log = args.access_log or args.compare_observe
        log = args.data_dir / "service.log" if wants_log else None
        sides: list[Side] = []

        def serve_ours(side: Side, n_workers: int = workers, **options) -> None:
            """Start one of ours (again every round with --fresh) and time it."""
            options.setdefault("owner", args.owner)
            starts[side.name] = partial(start_service, url, side.port, n_workers, **options)
            proc = starts[side.name]()
            services.append((side, proc, RssSampler(proc.pid)))
            sides.append(side)

        ours = Side(f"ours {workers}w" if args.compare_workers else "ours", args.port, token, False)
        serve_ours(ours, log=log)
        if args.compare_workers:
            serve_ours(Side("ours 1w", args.port + 1, token, False), 1, log=log)
        others: list[tuple[Side, str]] = []  # (side, the table's title)
        if args.compare_server:
            granian = Side("ours granian", args.port + 2, token, False)
            serve_ours(granian, log=log, server="granian")
            others.append((granian, "ours under granian vs uvicorn (same workers)"))
        if args.compare_observe:
            bare = Side("ours bare", args.port + 3, token, False)
            serve_ours(bare, env_extra={"CUSTOMER_GRAPH_METRICS": "0"})
            what = "observing's cost: ours (request line + metrics) vs bare (target: < 5%)"
            others.append((bare, what))
        if args.compare_pooler:
            from bench.pooler import PgBouncer
            from server.runtime import APP_ROLE, with_user

            bouncer = PgBouncer(url, {APP_ROLE: None}).start()
            stops.append(bouncer.stop)
            pooled = Side("ours pgbouncer", args.port + 4, token, False)
            env = {
                "DATABASE_URL": bouncer.url(APP_ROLE, "customer_graph"),
                "CUSTOMER_GRAPH_TRANSACTION_POOLER": "1",
                "CUSTOMER_GRAPH_LISTEN_URL": with_user(url, APP_ROLE),
            }
            serve_ours(pooled, log=log, env_extra=env, owner=False)
            others.append((pooled, "through PgBouncer (transaction mode) vs direct"))
        peer = None
        if not args.no_peer:
            start_peer(url, args.peer_port, args.data_dir, mutations="e" in keys)
            peer_started = True
            peer = Side("peer", args.peer_port, None, True)
            sides.append(peer)

        # parameters: the same rows for every side
        params: dict[str, S.Params] = asyncio.run(_draw_params(url, keys, args.params))
        if "a" in keys or "b" in keys:
            ours_cursors = cursors(ours.url, OUR_CURSORS, "customers", args.pages, token)
            peer_cursors = (
                cursors(peer.url, PEER_CURSORS, "allCustomers", args.pages, None)
                if peer
                else ours_cursors
            )
            pages = min(len(ours_cursors), len(peer_cursors))
            print(f"{pages} keyset pages of 50 customers", flush=True)
            page_params = [
                ({"after": a}, {"after": b})
                for a, b in zip(ours_cursors[:pages], peer_cursors[:pages], strict=True)
            ]
            params["a"] = params["b"] = page_params
        for key in keys:
            if not params.get(key):
                failed_checks[key] = "no parameters in this database"

        # same data?
        rng = random.Random(11)
        for key in keys:
            if key in failed_checks:
                continue
            n = len(params[key])
            samples = sorted({0, n - 1, *rng.sample(range(n), min(6, n))})
            problem = None
            for side in sides:
                if side.peer:
                    continue
                problem = problem or check_shape(S.SHAPES[key], params[key], side, peer, samples)
            if problem:
                failed_checks[key] = problem
                print(f"{key} {S.SHAPES[key].title}: NOT TIMED: {problem}", flush=True)
            else:
                print(
                    f"{key} {S.SHAPES[key].title}: same data on {len(samples)} parameter sets",
                    flush=True,
                )
        if "a" in keys and "a" not in failed_checks:
            size = len(orjson.dumps(post(ours.url, OURS, params["a"][1][0], token)))
            print(f"  (a heavy page is {size:,} bytes of JSON)", flush=True)
        timed = [k for k in keys if k not in failed_checks]

        lua = tmp / "shapes.lua"
        lua.write_text(WRK_LUA)
        bodies: dict[tuple[str, str], Path] = {}
        for key in timed:
            shape = S.SHAPES[key]
            for side in sides:
                query = shape.peer if side.peer else shape.ours
                if query is None:
                    continue
                variables = [v[1] if side.peer else v[0] for v in params[key]]
                name = f"{key}-{side.name.replace(' ', '')}.jsonl"
                bodies[(key, side.name)] = write_bodies(tmp / name, query, variables)

        def sides_of(key: str) -> list[Side]:
            return [s for s in sides if (key, s.name) in bodies]

        def conns_of(key: str) -> list[int]:
            return [10] if S.SHAPES[key].write else read_conns

        started = time.perf_counter()
        warm_query = OURS if "a" in timed else S.LIGHT_OURS if "b" in timed else None
        if warm_query:
            warm(ours.url, warm_query, [v[0]["after"] for v in params["a"]], token)
            if peer:
                peer_query = PEER_PAGE if warm_query is OURS else S.LIGHT_PEER
                warm(peer.url, peer_query, [v[1]["after"] for v in params["a"]], None)
        for key in timed:
            for side in sides_of(key):
                wrk(
                    side.port,
                    bodies[(key, side.name)],
                    side.auth,
                    max(conns_of(key)),
                    args.warmup,
                    lua,
                    tag=f"{int(time.time())}w{key}{side.port}",
                )
        print(f"warmed up ({time.perf_counter() - started:.0f} s)", flush=True)

        for _, _, sampler in services:
            sampler.start()
        tallies: dict[tuple[str, int, str], Tally] = {}

        def side_cpu(side: Side) -> dict[int, float]:
            if side.peer:  # run.sh's node process (nothing else here runs node)
                return cpu_seconds(name="node")
            return cpu_seconds(roots=[proc.pid for s, proc, _ in services if s.name == side.name])

        seeds = itertools.count(1)
        for r in range(args.rounds):
            started = time.perf_counter()
            if args.fresh and r > 0:
                services = _restart(services, starts, timed, sides_of, conns_of, bodies, lua)
            for key in timed:
                for conc in conns_of(key):
                    for side in _rotate(sides_of(key), r):
                        seed = next(seeds)
                        got = metered(
                            partial(
                                wrk,
                                side.port,
                                bodies[(key, side.name)],
                                side.auth,
                                conc,
                                args.duration,
                                lua,
                                seed=seed,
                                tag=f"{int(time.time())}r{r}s{seed}",
                            ),
                            partial(side_cpu, side),
                        )
                        tallies.setdefault((key, conc, side.name), Tally()).add(got)
                        if got["failures"] or got["socket_errors"]:
                            print(
                                f"  {key} c={conc} {side.name}: {got['failures']} failed answers,"
                                f" {got['socket_errors']} socket errors: {got['first_failure']}",
                                flush=True,
                            )
            print(
                f"round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        for _, _, sampler in services:
            sampler.stop.set()
            sampler.join()

        rows = [(k, c) for k in timed for c in conns_of(k)]
        notes = {k: S.SHAPES[k].peer_note for k in timed if S.SHAPES[k].peer_note}
        notes.update({k: f"NOT TIMED: {why}" for k, why in failed_checks.items()})
        title = (
            f"{args.rounds} round(s) x {args.duration:g} s slices per cell, wrk -t1, loopback;"
            f" ours: {workers} worker(s)"
        )
        ratios = []
        if peer or not args.compare_workers:  # without the peer, the second table says it
            ratios = print_table(title, ours.name, "peer", rows, tallies, notes)
        worker_ratios = []
        if args.compare_workers:
            worker_ratios = print_table(
                f"ours, {workers} workers vs 1 (target: >= 1.6x at 10 connections on a and b)",
                ours.name,
                "ours 1w",
                rows,
                tallies,
                {},
            )
        for other, what in others:
            print_table(what, ours.name, other.name, rows, tallies, {})
        print_cpu(rows, [side.name for side in sides], tallies)
        rss = {}
        for side, _, sampler in services:
            peaks = [v / 2**20 for v in sampler.peak.values()]
            if args.fresh and peaks:  # one figure over the processes of every round
                peaks = [max(peaks)]
            rss[side.name] = [round(v) for v in peaks]
            shown = ", ".join(f"{v:.0f} MB" for v in peaks) or "-"
            print(f"{side.name}: peak RSS per worker: {shown}")
        failures = sum(t.failures + t.socket_errors for t in tallies.values())
        if args.json:
            RESULTS.mkdir(exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            out = RESULTS / f"compare-{stamp}.json"
            out.write_bytes(
                orjson.dumps(
                    {
                        "at": stamp,
                        "args": {k: str(v) for k, v in vars(args).items()},
                        "ours_workers": workers,
                        "cells": [
                            {"shape": k, "connections": c, "side": s, **t.summary()}
                            for (k, c, s), t in tallies.items()
                        ],
                        "ratios": ratios,
                        "worker_ratios": worker_ratios,
                        "not_timed": failed_checks,
                        "peak_rss_mb": rss,
                    },
                    option=orjson.OPT_INDENT_2,
                )
            )
            print(f"wrote {out}")
        return 1 if failed_checks or failures else 0
    finally:
        for _, proc, _ in services:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if peer_started:
            stop_peer(args.peer_port, args.data_dir)
        for stop in stops:
            stop()
        try:
            asyncio.run(_remove_created(url))
        finally:
            embedded.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
