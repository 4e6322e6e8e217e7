"""Test fixtures: one throwaway embedded PostgreSQL per run (or TEST_DATABASE_URL).

Isolation: every test starts from empty tables (TRUNCATE ... RESTART IDENTITY, with
triggers off for the session so the append-only ledger can be reset between tests).
API tests send real GraphQL over HTTP through the ASGI app (httpx ASGITransport).

Two roles, as in production: `engine` is the owner (superuser: factories, truncation);
`client` serves the app through `app_engine`, the application role that row-level
security binds (TEST_APP_DATABASE_URL, else the test server's URL as that role).

TEST_THROUGH_PGBOUNCER=1 puts both engines behind a PgBouncer in transaction mode that the
session starts (bench/pooler.py), pooler-safe as CUSTOMER_GRAPH_TRANSACTION_POOLER=1 makes
`serve`; the `settings` fixture's live timeline listens on the direct URL
(CUSTOMER_GRAPH_LISTEN_URL).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
import uvicorn
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

import models
from bench.pooler import HOW_TO_INSTALL, PgBouncer, pgbouncer_binary
from server.app import create_app
from server.database import (
    _BARE_LISTENERS,
    EmbeddedPostgres,
    StatementCounter,
    apply_role_settings,
    ensure_database,
    make_engine,
)
from server.migrate import upgrade
from server.runtime import APP_ROLE, with_user
from server.settings import Settings

# Cost budgets (server/budget.py) are off unless a test turns them on: other tests compare
# exact answers and send many queries with one token.
os.environ.setdefault("CUSTOMER_GRAPH_COST_BUDGET", "0")

THROUGH_PGBOUNCER = os.environ.get("TEST_THROUGH_PGBOUNCER", "") in {"1", "true", "yes"}
RUN_POOLER_TESTS = (
    "TEST_THROUGH_PGBOUNCER=1 pytest -m pooler (the marked set), or the whole suite:"
    " TEST_THROUGH_PGBOUNCER=1 pytest"
)


# The set `.ci/run` runs again through PgBouncer (`-m pooler`, about 3-4 minutes on a
# shared 2-core machine; 183 tests of 828 took 8.5, so the whole suite twice is too long):
# reads on both paths (compiled, field by field, the access matrix), writes, the live
# timeline (LISTEN), imports and bulk jobs (their advisory locks), tokens, exports (COPY),
# and tests/test_pooler.py itself.
POOLER_MODULES = frozenset(
    {
        "test_compiled.py",
        "test_nested_reads.py",
        "test_access.py",
        "test_customers_write.py",
        "test_orders_write.py",
        "test_subscriptions.py",
        "test_import.py",
        "test_import_jobs.py",
        "test_bulk_updates.py",
        "test_auth.py",
        "test_export.py",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in POOLER_MODULES:
            item.add_marker(pytest.mark.pooler)


def need_pgbouncer() -> None:
    """Skip a test that needs the pgbouncer binary, saying how to get it; under CI=1 fail
    instead (.ci/run installs it: CI must not skip these)."""
    if pgbouncer_binary():
        return
    message = f"pgbouncer is not installed: {HOW_TO_INSTALL}; then {RUN_POOLER_TESTS}"
    if os.environ.get("CI") or THROUGH_PGBOUNCER:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def server_url() -> Any:
    """URL of a PostgreSQL server's maintenance database, for tests that need fresh databases."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    tmp = Path(tempfile.mkdtemp(prefix="customer-graph-test-"))
    embedded = EmbeddedPostgres(tmp / "pgdata", ephemeral=True)
    yield ensure_database(embedded, "cg_test")
    embedded.stop()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> str:
    upgrade(server_url)
    return server_url


def direct_app_url(database_url: str) -> str:
    return os.environ.get("TEST_APP_DATABASE_URL") or with_user(database_url, APP_ROLE)


def start_pgbouncer(
    database_url: str, *, also: dict[str, str | None] | None = None, **kw: Any
) -> PgBouncer:
    """PgBouncer (transaction mode) in front of the test server, for the owner, the
    application role and `also` (passwords from the URLs, else generated for the run)."""
    need_pgbouncer()
    owner, app = urlsplit(database_url), urlsplit(direct_app_url(database_url))
    users = {unquote(owner.username or "postgres"): None, unquote(app.username or APP_ROLE): None}
    if app.password:
        users[unquote(app.username)] = unquote(app.password)
    return PgBouncer(database_url, {**users, **(also or {})}, **kw).start()


def pooled(bouncer: PgBouncer, url: str) -> str:
    """`url`'s user and database, through `bouncer`."""
    parts = urlsplit(url)
    return bouncer.url(unquote(parts.username or "postgres"), parts.path.lstrip("/"))


@pytest.fixture(scope="session")
async def pgbouncer(database_url: str) -> AsyncIterator[PgBouncer]:
    """The session's PgBouncer, the application role's defaults set as `serve` sets them
    behind one (the `settings` fixture then LISTENs on the direct URL)."""
    bouncer = start_pgbouncer(database_url)
    await apply_role_settings(
        pooled(bouncer, direct_app_url(database_url)),
        None,
        owner_url=pooled(bouncer, database_url),
    )
    yield bouncer
    bouncer.stop()


@pytest.fixture(scope="session")
def owner_url(request: pytest.FixtureRequest, database_url: str) -> str:
    """The owner's URL the session's engines use: through PgBouncer with
    TEST_THROUGH_PGBOUNCER=1, else direct."""
    if not THROUGH_PGBOUNCER:
        return database_url
    return pooled(request.getfixturevalue("pgbouncer"), database_url)


@pytest.fixture(scope="session")
def app_url(request: pytest.FixtureRequest, database_url: str) -> str:
    """The application role's URL the app engine uses (direct, or through PgBouncer)."""
    if not THROUGH_PGBOUNCER:
        return direct_app_url(database_url)
    return pooled(request.getfixturevalue("pgbouncer"), direct_app_url(database_url))


@pytest.fixture(scope="session")
async def engine(owner_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(owner_url, pool_size=5, transaction_pooler=THROUGH_PGBOUNCER)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def app_engine(engine: AsyncEngine, app_url: str) -> AsyncIterator[AsyncEngine]:
    app_engine = make_engine(app_url, pool_size=5, transaction_pooler=THROUGH_PGBOUNCER)
    yield app_engine
    await app_engine.dispose()


class _Counter(StatementCounter):
    """Counts both engines' statements, except the preamble that sets the viewer of a
    transaction (resolvers/rls.py) or of a compiled read's session (cg_keep_viewer): like
    BEGIN, it is not a statement of the query's plan."""

    def __init__(self, *engines: AsyncEngine) -> None:
        super().__init__(engines[0])
        for other in engines[1:]:
            event.listen(other.sync_engine, "before_cursor_execute", self._on_execute)
            _BARE_LISTENERS.setdefault(other.sync_engine, []).append(self._note)

    def _note(self, statement: str) -> None:
        if not statement.startswith(("SELECT cg_set_viewer(", "SELECT cg_keep_viewer(")):
            super()._note(statement)


@pytest.fixture(scope="session")
def counter(engine: AsyncEngine, app_engine: AsyncEngine) -> StatementCounter:
    return _Counter(engine, app_engine)


TABLES = ", ".join(t.name for t in models.metadata.sorted_tables)


@pytest.fixture(autouse=True)
async def clean(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "engine" not in request.fixturenames:
        return
    engine: AsyncEngine = request.getfixturevalue("engine")
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))


READ_PATHS = ("compiled", "field_by_field")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module that sets `BOTH_PATHS = True` runs each of its tests on both read paths: the
    compiled one (production's default) and field by field (the access matrix, search, bad
    input, limits and the property-based tests do)."""
    if metafunc.definition.get_closest_marker("field_by_field_only"):
        return  # it breaks a field-by-field resolver on purpose: nothing to compare
    if getattr(metafunc.module, "BOTH_PATHS", False) and "settings" in metafunc.fixturenames:
        metafunc.parametrize("settings", READ_PATHS, indirect=True)


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    # Elsewhere field by field (statement counts are that path's); tests/test_compiled*.py
    # compare both paths' bytes, and BOTH_PATHS modules run every test on both.
    path = getattr(request, "param", "field_by_field")
    # Through PgBouncer, LISTEN needs its direct connection (CUSTOMER_GRAPH_LISTEN_URL).
    listen_url = (
        direct_app_url(request.getfixturevalue("database_url")) if THROUGH_PGBOUNCER else None
    )
    return Settings(
        database_url="unused",
        debug=False,
        compiled_reads=path == "compiled",
        listen_url=listen_url,
    )


@pytest.fixture
async def client(app_engine: AsyncEngine, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(engine=app_engine, settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def gid(type_name: str, pk: object) -> str:
    """A Relay global ID, as the API prints it."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


class GraphQLClient:
    """Posts GraphQL to /graphql as a given token, returning the decoded body."""

    def __init__(self, http: httpx.AsyncClient, token: str | None = None) -> None:
        self.http = http
        self.token = token

    def as_(self, token: str | None) -> GraphQLClient:
        return GraphQLClient(self.http, token)

    async def __call__(self, query: str, variables: dict | None = None, **kw: Any) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers, **kw
        )
        assert response.headers["content-type"].startswith("application/json"), response.text
        return response.json()

    async def data(self, query: str, variables: dict | None = None) -> dict:
        """Post and insist on no errors; returns `data`."""
        body = await self(query, variables)
        assert "errors" not in body, body.get("errors")
        return body["data"]


@pytest.fixture
async def gql(client: httpx.AsyncClient, admin_token: str) -> GraphQLClient:
    return GraphQLClient(client, admin_token)


@pytest.fixture
async def admin_token(engine: AsyncEngine) -> str:
    from tests.factories import make_user

    _, token = await make_user(engine, role="ADMIN", email="admin@example.com")
    return token


@contextlib.asynccontextmanager
async def serve(app) -> AsyncIterator[str]:
    """The app on a real uvicorn server on loopback (WebSockets need one): its host:port."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        hub = app.state.engine_ref.get("hub")
        if hub is not None:
            await hub.close()
        server.should_exit = True
        await task


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Runs `customer-graph ARGS` against the test database: (exit code, stdout, stderr)."""
    from server.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)

    async def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        # The CLI runs its own event loop: give it a thread.
        code = await asyncio.to_thread(main, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
