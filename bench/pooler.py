"""A PgBouncer in transaction mode in front of a PostgreSQL server, in a temporary directory.

    python -m bench.pooler --server-url postgresql://postgres@/db?host=/socket/dir \\
        [--user customer_graph_app] [--port 6432] [--pool-size 20]

prints one pooled URL per user (passwords generated for this run) and waits until Ctrl-C;
then, e.g. `DATABASE_URL=<the URL> CUSTOMER_GRAPH_TRANSACTION_POOLER=1 python -m bench.compare`.
With no --server-url it starts (or reuses) the benchmarks' embedded PostgreSQL
($CUSTOMER_GRAPH_BENCH_DIR, default ~/.cache/customer-graph-bench, as bench.compare).
The test suite starts one the same way (tests/conftest.py, TEST_THROUGH_PGBOUNCER=1).
`python -m bench.pooler --measure 2000` instead times a page of 20 customers in process,
direct and through PgBouncer, on a throwaway server.
Needs the `pgbouncer` binary (Debian: apt-get install pgbouncer).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

HOW_TO_INSTALL = "apt-get install -y pgbouncer (Debian/Ubuntu) or brew install pgbouncer"


def pgbouncer_binary() -> str | None:
    """The pgbouncer executable: $PGBOUNCER, else on PATH or in /usr/sbin (Debian's place)."""
    if chosen := os.environ.get("PGBOUNCER"):
        return shutil.which(chosen)
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_address(url: str) -> tuple[str, int, str | None, str | None]:
    """(host or socket directory, port, user, password) of a libpq URL."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "localhost"
    port = int(query.get("port") or parts.port or 5432)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return host, port, user, password


class PgBouncer:
    """pgbouncer, pool_mode=transaction, listening on 127.0.0.1:<free port> (and a Unix
    socket in its directory), with SCRAM auth against a generated auth_file. Every database
    of the server is reachable (`* =` entry) under its own name."""

    def __init__(
        self,
        server_url: str,
        users: dict[str, str | None],
        *,
        port: int | None = None,
        pool_size: int = 20,
        max_client_conn: int = 1000,
    ) -> None:
        """`users`: user name → password clients must give (None: generate one). The server
        login uses the same password (an embedded server trusts its socket anyway)."""
        self.server_url = server_url
        self.passwords = {u: p or secrets.token_urlsafe(12) for u, p in users.items()}
        self.port = port or free_port()
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.dir: Path | None = None
        self.process: subprocess.Popen | None = None

    def url(self, user: str, database: str) -> str:
        password = quote(self.passwords[user], safe="")
        return f"postgresql://{quote(user, safe='')}:{password}@127.0.0.1:{self.port}/{database}"

    def _config(self, host: str, port: int) -> str:
        assert self.dir is not None
        return "\n".join(
            [
                "[databases]",
                f"* = host={host} port={port}",
                "[pgbouncer]",
                "pool_mode = transaction",
                "listen_addr = 127.0.0.1",
                f"listen_port = {self.port}",
                f"unix_socket_dir = {self.dir}",
                "auth_type = scram-sha-256",
                f"auth_file = {self.dir / 'userlist.txt'}",
                f"default_pool_size = {self.pool_size}",
                f"max_client_conn = {self.max_client_conn}",
                f"logfile = {self.dir / 'pgbouncer.log'}",
                f"pidfile = {self.dir / 'pgbouncer.pid'}",
                "",
            ]
        )

    def start(self, timeout: float = 10.0) -> PgBouncer:
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError(f"pgbouncer is not installed: {HOW_TO_INSTALL}")
        host, port, server_user, server_password = _server_address(self.server_url)
        if server_user and server_password and server_user not in self.passwords:
            self.passwords[server_user] = server_password
        self.dir = Path(tempfile.mkdtemp(prefix="customer-graph-pgbouncer-"))
        (self.dir / "userlist.txt").write_text(
            "".join(f'"{u}" "{p}"\n' for u, p in self.passwords.items())
        )
        (self.dir / "pgbouncer.ini").write_text(self._config(host, port))
        argv = [binary, "-q", str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:
            # pgbouncer refuses to run as root: run as the user that may reach the server's
            # Unix socket (the embedded server's own user), else nobody.
            owner = Path(host).stat().st_uid if host.startswith("/") else None
            user = pwd.getpwuid(owner).pw_name if owner else "nobody"
            shutil.chown(self.dir, user)
            for child in self.dir.iterdir():
                shutil.chown(child, user)
            argv[1:1] = ["-u", user]
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log()
                    self.stop()
                    raise RuntimeError(f"pgbouncer did not start:\n{log}") from None
                time.sleep(0.05)

    def log(self) -> str:
        path = None if self.dir is None else self.dir / "pgbouncer.log"
        return path.read_text() if path is not None and path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)  # immediate shutdown
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


PAGE = """query Page($after: String) { customers(first: 20, after: $after, orderBy: {field: NAME}) {
  pageInfo { endCursor }
  nodes { number displayName email addresses { city country }
    orders(first: 5) { nodes { number status total { amount currency } } } } } }"""


async def _measure(direct_url: str, pooled_url: str, token: str, requests: int) -> None:
    """The same pages through an app in this process, on the direct and the pooled engine
    (sequential, then 10 at once): what the pooler and its unnamed statements cost."""
    import httpx

    from server.app import create_app
    from server.database import make_engine
    from server.settings import Settings

    settings = Settings(database_url="unused", cost_budget=0)
    variants = (
        ("direct", direct_url, False),
        ("direct, no statement cache", direct_url, True),  # what the setting alone costs
        ("pgbouncer", pooled_url, True),
    )
    for label, url, pooler in variants:
        engine = make_engine(url, pool_size=10, transaction_pooler=pooler)
        app = create_app(engine=engine, settings=settings)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://b", headers=headers
        ) as c:

            async def page() -> None:
                response = await c.post("/graphql", json={"query": PAGE, "variables": {}})
                assert "errors" not in response.json(), response.text

            for _ in range(20):  # warm-up: caches, connections
                await page()
            for concurrency in (1, 10):
                started = time.perf_counter()
                for _ in range(requests // concurrency):
                    await asyncio.gather(*(page() for _ in range(concurrency)))
                elapsed = time.perf_counter() - started
                rate = (requests // concurrency) * concurrency / elapsed
                print(f"{label:26s} concurrency {concurrency:2d}: {rate:7.1f} req/s", flush=True)
        await engine.dispose()


def measure(requests: int, customers: int) -> None:
    """A throwaway embedded server seeded with `customers`, PgBouncer in front: _measure."""
    from server.database import EmbeddedPostgres, ensure_database
    from server.migrate import upgrade
    from server.runtime import APP_ROLE, with_user
    from server.seed import seed
    from server.users import create_user

    tmp = Path(tempfile.mkdtemp(prefix="customer-graph-pooler-bench-"))
    embedded = EmbeddedPostgres(tmp / "pgdata", ephemeral=True)
    try:
        url = ensure_database(embedded, "customer_graph")
        upgrade(url)
        asyncio.run(seed(url, customers=customers))
        token = asyncio.run(create_user(url, email="bench@example.com", role="ADMIN"))
        app_url = with_user(url, APP_ROLE)
        bouncer = PgBouncer(url, {APP_ROLE: None}).start()
        try:
            asyncio.run(_measure(app_url, bouncer.url(APP_ROLE, "customer_graph"), token, requests))
        finally:
            bouncer.stop()
    finally:
        embedded.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pooler",
        description="PgBouncer (transaction mode) in front of a PostgreSQL server",
    )
    parser.add_argument("--server-url", help="default: the benchmarks' embedded PostgreSQL")
    parser.add_argument("--database", help="default: the server URL's database")
    parser.add_argument("--user", action="append", default=[], help="(repeatable)")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--pool-size", type=int, default=20, help="default_pool_size")
    parser.add_argument(
        "--measure",
        type=int,
        metavar="REQUESTS",
        help="instead: seed a throwaway server and time REQUESTS pages direct and through"
        " PgBouncer, in process",
    )
    parser.add_argument("--customers", type=int, default=2000, help="with --measure")
    args = parser.parse_args(argv)
    if args.measure:
        measure(args.measure, args.customers)
        return 0
    embedded = None
    url = args.server_url
    if url is None:
        from bench.compare import BENCH_DIR
        from server.database import EmbeddedPostgres, ensure_database

        embedded = EmbeddedPostgres(BENCH_DIR / "pgdata")
        url = ensure_database(embedded, "customer_graph")
    database = args.database or urlsplit(url).path.lstrip("/") or "postgres"
    owner = _server_address(url)[2] or "postgres"
    users = {u: None for u in [owner, "customer_graph_app", *args.user]}
    bouncer = PgBouncer(url, users, port=args.port, pool_size=args.pool_size).start()
    try:
        for user in users:
            print(f"{user}: {bouncer.url(user, database)}", flush=True)
        print(f"direct (LISTEN, migrations): {url}", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        bouncer.stop()
        if embedded is not None:
            embedded.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
