"""Behind PgBouncer in transaction mode (Debian's 1.18: no prepared statement support).

A server connection is the client's only for one transaction: whatever a session keeps
(prepared statements, settings, session advisory locks, LISTEN) is left on a server
connection the next transaction may not get. CUSTOMER_GRAPH_TRANSACTION_POOLER=1
(`make_engine(transaction_pooler=True)`) keeps nothing; these tests show what fails
without it and that `serve` works through PgBouncer. Each module-level PgBouncer here is
this module's own, with two server connections per pool, so which one a transaction gets
is known (PgBouncer lends the one released last).

Needs the pgbouncer binary; absent, these tests skip saying how to run them (under CI=1
they fail). TEST_THROUGH_PGBOUNCER=1 runs the rest of the suite through one too.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.pooler import PgBouncer
from resolvers.timeline import CHANNEL
from server.app import create_app
from server.database import (
    CLIENT_SETTINGS,
    apply_role_settings,
    keeping_viewer,
    keeps_viewers,
    make_engine,
    to_asyncpg_url,
    with_database,
)
from server.migrate import alembic_config, upgrade
from server.notify import TimelineHub
from server.runtime import with_user
from tests.conftest import THROUGH_PGBOUNCER, direct_app_url, pooled, start_pgbouncer
from tests.factories import make_customer, make_user
from tests.test_operating_serve import serving
from tests.test_session_viewer import PAGE, people
from tests.test_subscriptions import ALL, Client

pytestmark = pytest.mark.pooler

PROBE_ROLE = "cg_pooler_probe"  # a role of these tests' own, for its defaults
SUM = text("SELECT CAST(:a AS int) + CAST(:b AS int)")


@pytest.fixture(scope="module")
def bouncer(database_url: str) -> Iterator[PgBouncer]:
    bouncer = start_pgbouncer(database_url, pool_size=2)
    yield bouncer
    bouncer.stop()


@contextlib.asynccontextmanager
async def disposing(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_the_suite_goes_through_pgbouncer_when_asked(app_engine, engine, request):
    if not THROUGH_PGBOUNCER:
        pytest.skip("TEST_THROUGH_PGBOUNCER is not set: the suite runs direct")
    port = request.getfixturevalue("pgbouncer").port
    assert app_engine.url.port == engine.url.port == port
    async with app_engine.connect() as conn:  # PgBouncer's SHOW is not PostgreSQL's
        assert await conn.scalar(text("SELECT current_user")) == "customer_graph_app"


async def test_session_settings_at_connect_are_refused(bouncer, database_url):
    """PgBouncer passes on only the startup parameters it tracks (TimeZone, application_name,
    …): jit, random_page_cost and statement_timeout become the role's defaults instead."""
    url = pooled(bouncer, direct_app_url(database_url))
    async with disposing(make_engine(url, pool_size=1, transaction_pooler=False)) as plain:
        with pytest.raises(Exception, match="unsupported startup parameter: jit"):
            async with plain.connect():
                pass
    async with disposing(make_engine(url, pool_size=1, transaction_pooler=True)) as safe:
        async with safe.connect() as conn:
            assert await conn.scalar(text("SHOW TimeZone")) == "UTC"
            assert await conn.scalar(text("SHOW application_name")) == "customer-graph"


async def run_twice_elsewhere(engine: AsyncEngine) -> int:
    """A statement in one transaction, then again while another client holds the server
    connection that ran it: the second run is on another server connection."""
    async with engine.connect() as one, engine.connect() as other:
        first = (await one.execute(SUM, {"a": 1, "b": 2})).scalar()
        await one.commit()  # its server connection is now the one released last
        await other.execute(text("SELECT 1"))  # so `other` gets it, and keeps it
        try:
            return first + (await one.execute(SUM, {"a": 3, "b": 4})).scalar()
        finally:
            await one.rollback()
            await other.rollback()


async def test_kept_prepared_statements_fail_on_another_server_connection(bouncer, database_url):
    url = to_asyncpg_url(pooled(bouncer, database_url))
    # asyncpg's and SQLAlchemy's defaults (both cache prepared statements, named), with
    # only the startup parameters PgBouncer accepts.
    plain = create_async_engine(url, connect_args={"server_settings": CLIENT_SETTINGS})
    async with disposing(plain):
        with pytest.raises(Exception, match=r"prepared statement .* does not exist"):
            await run_twice_elsewhere(plain)
    async with disposing(make_engine(url, transaction_pooler=True)) as safe:
        assert await run_twice_elsewhere(safe) == 10


async def test_many_clients_on_two_server_connections(bouncer, database_url):
    """Transactions, statements outside any (the bare asyncpg driver, as the compiled read
    path and the LISTEN health check use it) and type codecs (jsonb), from ten clients
    sharing two server connections."""
    url = pooled(bouncer, database_url)
    async with disposing(make_engine(url, pool_size=10, transaction_pooler=True)) as safe:

        async def client(i: int) -> None:
            for k in range(15):
                async with safe.begin() as conn:
                    assert (await conn.execute(SUM, {"a": i, "b": k})).scalar() == i + k
                    doc = text("SELECT CAST(:j AS jsonb)")
                    assert (await conn.execute(doc, {"j": f'{{"k": {k}}}'})).scalar() == {"k": k}
                async with safe.connect() as conn:
                    pg = (await conn.get_raw_connection()).driver_connection
                    assert await pg.fetchval(f"SELECT $1::int * {k % 4}", i) == i * (k % 4)

        await asyncio.gather(*(client(i) for i in range(10)))


async def test_listen_needs_a_direct_connection(bouncer, database_url, engine):
    """LISTEN through the pooler registers on a server connection that goes back to the
    pool (PgBouncer drops it when a notification arrives): nothing is delivered. The hub
    listens on CUSTOMER_GRAPH_LISTEN_URL instead."""
    pooled_app = make_engine(pooled(bouncer, direct_app_url(database_url)), transaction_pooler=True)
    async with disposing(pooled_app):
        for listen_url, delivered in ((None, []), (direct_app_url(database_url), [7])):
            hub = TimelineHub(pooled_app, max_pending=10, max_per_user=10, listen_url=listen_url)
            try:
                async with hub.subscribe(1, None) as sub:
                    async with engine.begin() as conn:
                        await conn.execute(text("SELECT pg_notify(:c, '7,3')"), {"c": CHANNEL})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(sub.wake.wait(), 1.5)
                    assert list(sub.pending) == delivered, listen_url
            finally:
                await hub.close()


@pytest.fixture
async def probe_role(database_url: str) -> AsyncIterator[str]:
    owner = make_engine(database_url, pool_size=1, transaction_pooler=False)
    async with owner.begin() as conn:
        await conn.execute(text(f"DROP ROLE IF EXISTS {PROBE_ROLE}"))
        await conn.execute(text(f"CREATE ROLE {PROBE_ROLE} LOGIN"))
    try:
        yield PROBE_ROLE
    finally:
        async with owner.begin() as conn:
            await conn.execute(text(f"DROP ROLE IF EXISTS {PROBE_ROLE}"))
        await owner.dispose()


async def test_role_defaults_replace_the_startup_parameters(database_url, probe_role):
    as_probe = with_user(database_url, probe_role)

    def bouncer_for_probe() -> PgBouncer:
        return start_pgbouncer(database_url, pool_size=2, also={probe_role: None})

    first = bouncer_for_probe()
    try:
        probe_url = pooled(first, as_probe)
        # An ordinary role may set its own defaults: no owner needed.
        changed = await apply_role_settings(probe_url, 0.25)
        assert changed == {
            "jit": "off",
            "random_page_cost": "1.1",
            "TimeZone": "UTC",
            "statement_timeout": "250",
        }
        assert await apply_role_settings(probe_url, 0.25) == {}  # already so: nothing done
    finally:
        first.stop()
    # Sessions opened before keep their old values: new server connections have them.
    second = bouncer_for_probe()
    try:
        probe = make_engine(pooled(second, as_probe), transaction_pooler=True)
        async with disposing(probe), probe.connect() as conn:
            shown = [
                await conn.scalar(text(f"SHOW {name}"))
                for name in ("jit", "random_page_cost", "TimeZone", "statement_timeout")
            ]
            assert shown == ["off", "1.1", "UTC", "250ms"]
            with pytest.raises(Exception, match="statement timeout"):
                await conn.execute(text("SELECT pg_sleep(2)"))
    finally:
        second.stop()


@pytest.fixture
async def empty_database(server_url: str) -> AsyncIterator[str]:
    name = f"cg_pool_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url, pool_size=1, transaction_pooler=False)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield with_database(server_url, name)
    async with admin.connect() as conn:  # PgBouncer still holds connections to it
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    await admin.dispose()


async def test_migrations_run_through_pgbouncer(bouncer, empty_database, monkeypatch):
    """Every migration from an empty database, then again at the head (what each `serve`
    start does), through the pooler."""
    monkeypatch.setenv("CUSTOMER_GRAPH_TRANSACTION_POOLER", "1")  # migrations' make_engine
    for _ in range(2):
        await asyncio.to_thread(upgrade, pooled(bouncer, empty_database))
    async with disposing(make_engine(empty_database, transaction_pooler=False)) as direct:
        async with direct.connect() as conn:
            version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == ScriptDirectory.from_config(alembic_config(empty_database)).get_current_head()


async def test_serve_through_pgbouncer(bouncer, database_url, engine, tmp_path: Path):
    """`serve` with DATABASE_URL and the migration URL at PgBouncer: migrations (at head,
    through it), reads on both paths, a mutation, and a subscription on the direct LISTEN
    connection."""
    customer = await make_customer(engine, last_name="Pooled")
    _, token = await make_user(engine, role="ADMIN", email="pooled@example.com")
    env = {
        "DATABASE_URL": pooled(bouncer, direct_app_url(database_url)),
        "CUSTOMER_GRAPH_MIGRATION_URL": pooled(bouncer, database_url),
        "CUSTOMER_GRAPH_TRANSACTION_POOLER": "1",
        "CUSTOMER_GRAPH_LISTEN_URL": direct_app_url(database_url),
    }
    async with serving(database_url, tmp_path, 1, **env) as (_, address, log_path):
        auth = {"Authorization": f"Bearer {token}"}
        async with (
            httpx.AsyncClient(base_url=f"http://{address}", headers=auth) as http,
            Client.connect(address, token) as ws,
        ):
            await ws.subscribe(ALL, {})
            page = "{ customers(first: 5) { nodes { number lastName } } }"
            mixed = "{ customers(first: 5) { nodes { number } } me { user { email } } }"
            for query in (page, page, mixed):  # compiled twice (cached), then mixed
                response = await http.post("/graphql", json={"query": query})
                assert response.status_code == 200, response.text
                assert "errors" not in response.json(), response.json()
                nodes = response.json()["data"]["customers"]["nodes"]
                assert nodes[0]["number"] == customer.number
            await asyncio.sleep(1.0)  # the subscriber registered
            create = """mutation($input: CustomerCreateInput!) { customerCreate(input: $input) {
              customer { number } userErrors { code } } }"""
            response = await http.post(
                "/graphql", json={"query": create, "variables": {"input": {"lastName": "New"}}}
            )
            created = response.json()["data"]["customerCreate"]
            assert created["userErrors"] == [], created
            [event] = await ws.events(1)
            assert event["customer"]["number"] == created["customer"]["number"]
        log = log_path.read_text()
        assert "prepared statement" not in log and "unsupported startup parameter" not in log


async def test_an_undeclared_pooler_never_answers_as_another_viewer(database_url, engine, settings):
    """The misconfiguration the kept session viewer must survive: a transaction pooler the
    service was not told about (CUSTOMER_GRAPH_TRANSACTION_POOLER unset; a PgBouncer that
    ignores `jit` and keeps prepared statements would connect). Here one server connection
    serves every client, so a kept viewer is any client's: the admin's read finds the
    rep's, answers field by field with everyone's rows, and the engine stops keeping."""
    (_, admin), (rep_id, _) = await people(engine)
    single = start_pgbouncer(database_url, pool_size=1)
    url = pooled(single, direct_app_url(database_url))
    # PgBouncer 1.18 has no prepared statements: the pooler's connect arguments stand in for
    # a newer one that keeps them; only the viewer keeping is what `serve` would do.
    own = make_engine(url, pool_size=2, transaction_pooler=True, keep_viewers=True)
    settings = replace(
        settings,
        compiled_reads=True,
        migration_url=database_url,
        listen_url=direct_app_url(database_url),
    )
    app = create_app(engine=own, settings=settings)
    signed = {"Authorization": f"Bearer {admin}"}

    async def read(client: httpx.AsyncClient) -> tuple[list[str], str | None]:
        response = await client.post("/graphql", json={"query": PAGE}, headers=signed)
        nodes = response.json()["data"]["customers"]["nodes"]
        return sorted(n["lastName"] for n in nodes), response.headers.get("x-customer-graph-path")

    everyone = (["Other", "Theirs"], "compiled")
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            assert (await client.get("/readyz")).status_code == 200
            assert await read(client) == everyone  # looks the token up
            assert await read(client) == everyone  # its client connection keeps the admin
            # While the admin's client connection is out, another client reaches the same
            # server session and makes it the rep's.
            async with keeping_viewer(own), keeping_viewer(own) as other:
                pg = (await other.get_raw_connection()).driver_connection
                await pg.execute(f"SELECT cg_keep_viewer({rep_id}, 'SALES_REP')")
            assert (await read(client))[0] == everyone[0]  # not only the rep's
            assert not keeps_viewers(own)
            assert await read(client) == everyone
    finally:
        await app.state.engine_ref["hub"].close()
        await own.dispose()
        single.stop()
