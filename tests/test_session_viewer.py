"""A compiled read's connection keeps its viewer on the session (migration 0022,
server/database.keeping_viewer), so a viewer's next read is one statement with no BEGIN
or ROLLBACK; every other checkout of that connection first forgets the viewer, so no
other code ever runs as it, and a viewer switch on one session sees only its own rows."""

from __future__ import annotations

import logging
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import text

from models.enums import Role
from resolvers.viewer import Viewer
from server import logs
from server.app import create_app
from server.compiled import _keep_viewer
from server.database import (
    SESSION_VIEWER,
    UNSURE,
    StatementCounter,
    keeping_viewer,
    keeps_viewers,
    make_engine,
)
from tests.conftest import THROUGH_PGBOUNCER, GraphQLClient
from tests.factories import make_customer, make_user

pytestmark = pytest.mark.skipif(
    THROUGH_PGBOUNCER, reason="behind a transaction pooler no session keeps a viewer"
)

PAGE = "{ customers(first: 10) { nodes { lastName } } }"
CREATE = """mutation { customerCreate(input: {kind: INDIVIDUAL, firstName: "New",
  lastName: "Written"}) { customer { lastName } userErrors { code } } }"""


@pytest.fixture(scope="module")
def seen(app_engine) -> StatementCounter:
    """Every statement the app engine runs, the viewer preambles included."""
    return StatementCounter(app_engine)


@pytest.fixture
async def http(app_engine, settings, database_url):
    settings = replace(settings, compiled_reads=True, migration_url=database_url, access_log=True)
    app = create_app(engine=app_engine, settings=settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            assert (await client.get("/readyz")).status_code == 200  # the token cache listens
            yield client
    finally:
        await app.state.engine_ref["hub"].close()


async def names(gql: GraphQLClient) -> list[str]:
    return sorted(n["lastName"] for n in (await gql.data(PAGE))["customers"]["nodes"])


async def people(engine):
    admin_id, admin = await make_user(engine, role="ADMIN", email="admin@example.com")
    rep_id, rep = await make_user(engine, role="SALES_REP", email="rep@example.com")
    await make_customer(engine, last_name="Theirs", sales_rep_id=rep_id)
    await make_customer(engine, last_name="Other")
    return (admin_id, admin), (rep_id, rep)


async def test_a_viewers_next_read_is_one_statement(http, engine, seen, caplog):
    (_, admin), _ = await people(engine)
    gql = GraphQLClient(http, admin)
    assert await names(gql) == ["Other", "Theirs"]  # looks the token up, caches it
    assert await names(gql) == ["Other", "Theirs"]  # sets the session's viewer
    seen.reset()
    with caplog.at_level(logging.INFO, logger=logs.REQUEST_LOGGER):
        assert await names(gql) == ["Other", "Theirs"]
    assert len(seen.statements) == 1, seen.statements
    assert seen.statements[0].startswith("SELECT convert_to("), seen.statements
    (line,) = [r.msg for r in caplog.records if r.name == logs.REQUEST_LOGGER]
    assert line["read_path"] == "compiled" and line["statements"] == 1, line


async def test_viewers_taking_turns_see_only_their_rows(http, engine, seen):
    (_, admin), (rep_id, rep) = await people(engine)
    as_admin, as_rep = GraphQLClient(http, admin), GraphQLClient(http, rep)
    for _ in range(3):
        seen.reset()
        assert await names(as_admin) == ["Other", "Theirs"]
        assert await names(as_rep) == ["Theirs"]
    # one connection (the pool hands out the last returned first), switched each time
    assert f"SELECT cg_keep_viewer({rep_id}, 'SALES_REP')" in seen.statements, seen.statements


async def test_a_switch_on_one_session_changes_who_reads(app_engine, engine):
    (admin_id, _), (rep_id, _) = await people(engine)
    admin = Viewer(user_id=admin_id, role=Role.ADMIN, email="admin@example.com")
    rep = Viewer(user_id=rep_id, role=Role.SALES_REP, email="rep@example.com")
    pids, counts = [], []
    for viewer in (admin, rep, admin, rep):
        async with keeping_viewer(app_engine) as conn:
            raw = await conn.get_raw_connection()
            pg = raw.driver_connection
            await _keep_viewer(app_engine, pg, raw.info, viewer)
            pids.append(pg.get_server_pid())
            counts.append(await pg.fetchval("SELECT count(*) FROM customer"))
            assert await pg.fetchval("SHOW default_transaction_read_only") == "on"
    assert len(set(pids)) == 1, pids  # the same session each time
    assert counts == [2, 1, 2, 1]


async def test_any_other_checkout_forgets_the_viewer(http, app_engine, engine):
    (admin_id, admin), _ = await people(engine)
    gql = GraphQLClient(http, admin)
    await names(gql)
    async with keeping_viewer(app_engine) as conn:
        raw = await conn.get_raw_connection()
        viewer = Viewer(user_id=admin_id, role=Role.ADMIN, email="admin@example.com")
        await _keep_viewer(app_engine, raw.driver_connection, raw.info, viewer)
        kept_pid = raw.driver_connection.get_server_pid()
    async with app_engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection.get_server_pid() == kept_pid
        assert SESSION_VIEWER not in raw.info
        row = (
            await conn.execute(
                text(
                    "SELECT current_user, coalesce(current_setting('cg.viewer_id', true), ''),"
                    " current_setting('default_transaction_read_only'),"
                    " (SELECT count(*) FROM customer)"
                )
            )
        ).one()
    assert tuple(row) == ("customer_graph_app", "", "off", 0)  # no viewer sees no customer
    # and a mutation after a compiled read writes (the session is no longer read-only)
    await names(gql)
    created = await gql.data(CREATE)
    assert created["customerCreate"] == {"customer": {"lastName": "Written"}, "userErrors": []}
    assert await names(gql) == ["Other", "Theirs", "Written"]


async def test_an_unsure_session_is_set_again(app_engine, engine, seen):
    (admin_id, _), (rep_id, _) = await people(engine)
    rep = Viewer(user_id=rep_id, role=Role.SALES_REP, email="rep@example.com")
    async with keeping_viewer(app_engine) as conn:
        raw = await conn.get_raw_connection()
        pg = raw.driver_connection
        await pg.execute(f"SELECT cg_keep_viewer({admin_id}, 'ADMIN')")
        raw.info[SESSION_VIEWER] = UNSURE  # as if a change was interrupted
    seen.reset()
    async with keeping_viewer(app_engine) as conn:
        raw = await conn.get_raw_connection()
        await _keep_viewer(app_engine, raw.driver_connection, raw.info, rep)
        assert await raw.driver_connection.fetchval("SELECT count(*) FROM customer") == 1
    assert seen.statements == [f"SELECT cg_keep_viewer({rep_id}, 'SALES_REP')"]


def test_only_engines_that_forget_keep_viewers(app_url):
    pooled = make_engine(app_url, transaction_pooler=True)
    direct = make_engine(app_url, transaction_pooler=False)
    assert not keeps_viewers(pooled)
    assert keeps_viewers(direct)


async def lend_elsewhere(engine, viewer_sql: str) -> None:
    """What a transaction pooler nobody declared does: the server session behind the
    connection a kept read takes next carries another viewer than the pool entry says.
    Here that session is changed directly, behind the pool's back."""
    async with keeping_viewer(engine) as conn:
        await (await conn.get_raw_connection()).driver_connection.execute(viewer_sql)


@pytest.mark.parametrize(
    "elsewhere",
    ["SELECT cg_keep_viewer({rep_id}, 'SALES_REP')", "SELECT cg_forget_viewer()"],
    ids=["another viewer", "no viewer"],
)
async def test_a_session_that_lost_its_viewer_never_answers_as_another(
    app_url, engine, settings, database_url, caplog, elsewhere
):
    (_, admin), (rep_id, _) = await people(engine)
    own = make_engine(app_url, pool_size=2)  # this test stops it keeping viewers
    settings = replace(settings, compiled_reads=True, migration_url=database_url)
    app = create_app(engine=own, settings=settings)
    signed = {"Authorization": f"Bearer {admin}"}
    everyone = ["Other", "Theirs"]

    async def read(client: httpx.AsyncClient) -> tuple[list[str], str | None]:
        response = await client.post("/graphql", json={"query": PAGE}, headers=signed)
        nodes = response.json()["data"]["customers"]["nodes"]
        return sorted(n["lastName"] for n in nodes), response.headers.get("x-customer-graph-path")

    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            assert (await client.get("/readyz")).status_code == 200
            assert await read(client) == (everyone, "compiled")  # looks the token up
            assert await read(client) == (everyone, "compiled")  # the session keeps it
            await lend_elsewhere(own, elsewhere.format(rep_id=rep_id))
            with caplog.at_level(logging.ERROR, logger="server.compiled"):
                names_seen, path = await read(client)
            assert names_seen == everyone  # the rep's session (or none) would see less
            assert path != "compiled"  # answered field by field, in its own transaction
            assert not keeps_viewers(own)  # from now on, the viewer per transaction
            assert any("lost the viewer" in r.getMessage() for r in caplog.records)
            for _ in range(2):
                assert await read(client) == (everyone, "compiled")
    finally:
        await app.state.engine_ref["hub"].close()
        await own.dispose()


async def test_a_non_admin_transaction_drops_a_session_role(app_engine, engine):
    """Migration 0023: whatever role a session was left with (a kept ADMIN behind a pooler
    nobody declared), another viewer's transaction runs as the application role."""
    (admin_id, _), (rep_id, _) = await people(engine)
    async with keeping_viewer(app_engine) as conn:
        pg = (await conn.get_raw_connection()).driver_connection
        await pg.execute(f"SELECT cg_keep_viewer({admin_id}, 'ADMIN')")
        try:
            async with pg.transaction(readonly=True):
                await pg.execute(f"SELECT cg_set_viewer({rep_id}, 'SALES_REP')")
                seen = await pg.fetchrow("SELECT current_user, count(*) FROM customer")
            assert tuple(seen) == ("customer_graph_app", 1)
            async with pg.transaction(readonly=True):  # and ADMIN's role for ADMIN
                await pg.execute(f"SELECT cg_set_viewer({admin_id}, 'ADMIN')")
                assert await pg.fetchval("SELECT count(*) FROM customer") == 2
        finally:
            await pg.execute("SELECT cg_forget_viewer()")


SEARCH = """query($p: String!) { customerSearch(filter: {lastName: $p, nameMatch: PREFIX}) {
  ... on CustomerSearchMatches { customers { nodes { lastName } } } } }"""
GENERIC = "SET plan_cache_mode = force_generic_plan"


async def test_a_bounded_prefix_search_keeps_one_generic_plan(http, app_engine, engine, seen):
    """PostgreSQL would plan a search by a 4-letter prefix per value; a kept session runs
    it on one generic plan, goes back to the default for other reads, and forgets it with
    the viewer."""
    (_, admin), _ = await people(engine)
    for name in ("Garcia", "Garfield", "Gardner", "Lopez"):
        await make_customer(engine, last_name=name)
    gql = GraphQLClient(http, admin)
    await names(gql)  # caches the token, keeps the viewer
    seen.reset()
    found = {}
    for prefix in ("garc", "garf", "gard", "lope", "garc", "garf", "gard", "lope"):
        data = await gql.data(SEARCH, {"p": prefix})
        found[prefix] = [n["lastName"] for n in data["customerSearch"]["customers"]["nodes"]]
    assert found == {
        "garc": ["Garcia"],
        "garf": ["Garfield"],
        "gard": ["Gardner"],
        "lope": ["Lopez"],
    }
    assert seen.statements.count(GENERIC) == 1, seen.statements
    async with keeping_viewer(app_engine) as conn:
        pg = (await conn.get_raw_connection()).driver_connection
        assert await pg.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        plans = await pg.fetch(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE 'SELECT convert_to(%' AND statement LIKE '%cg_prefix_end(%'"
        )
    assert [tuple(p) for p in plans] == [(8, 0)], plans
    # three letters stay LIKE, planned per value; other reads go back to the default
    seen.reset()
    await gql.data(SEARCH, {"p": "gar"})
    assert "RESET plan_cache_mode" in seen.statements and len(seen.statements) == 2
    await gql.data(SEARCH, {"p": "garc"})
    async with app_engine.connect() as conn:  # any other checkout forgets it
        assert (await conn.execute(text("SHOW plan_cache_mode"))).scalar() == "auto"
