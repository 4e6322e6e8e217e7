"""Read replicas (server/replicas.py) on a real streaming replica (tests/replica.py).

Which server answered is proved, not assumed: reads are counted on each engine, and where
it matters the replica is made to hold stale data (replay paused or delayed) so that an
answer from the wrong server shows in the data itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import models
from resolvers.timeline import record
from server.app import create_app
from server.database import StatementCounter, make_engine
from server.replicas import (
    _NUDGE,
    _POSITIONS,
    _REPLAY_LSN,
    LSN_HEADER,
    Replicas,
    format_lsn,
    parse_lsn,
)
from server.settings import Settings
from tests.conftest import gid, serve
from tests.factories import make_customer, make_user
from tests.replica import ReplicaCluster
from tests.test_subscriptions import TIMELINE, Client

PAGE = """{ customers(first: 20, orderBy: {field: NAME, direction: ASC}) {
  totalCount edges { node { number displayName salesRep { displayName } } } } }"""
NAME = "query($id: ID!) { node(id: $id) { ... on Customer { firstName } } }"
RENAME = """mutation($input: CustomerUpdateInput!) {
  customerUpdate(input: $input) { customer { firstName } userErrors { field code message } } }"""
PATHS = ("compiled", "field_by_field")
TABLES = ", ".join(t.name for t in models.metadata.sorted_tables)


@pytest.fixture(scope="module")
def cluster() -> AsyncIterator[ReplicaCluster]:
    cluster = ReplicaCluster().start()
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
async def owner(cluster: ReplicaCluster) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(cluster.primary_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def primary(cluster: ReplicaCluster) -> AsyncIterator[AsyncEngine]:
    """The application role on the primary: what DATABASE_URL points at."""
    engine = make_engine(cluster.primary_app_url, pool_size=5)
    yield engine
    await engine.dispose()


class Reads(StatementCounter):
    """Statements of requests: not the replica checks' (server/replicas.py)."""

    def _note(self, statement: str) -> None:
        if statement not in (_POSITIONS, _NUDGE, _REPLAY_LSN):
            super()._note(statement)


@pytest.fixture(scope="module")
def on_primary(primary: AsyncEngine) -> StatementCounter:
    return Reads(primary)


@pytest.fixture(autouse=True)
async def fresh_cluster(cluster: ReplicaCluster, owner: AsyncEngine) -> AsyncIterator[None]:
    """Each test starts with empty tables, a running replica replaying at once."""
    yield
    if not (cluster.replica_dir / "postmaster.pid").exists():
        cluster.start_replica()
    cluster.resume()
    cluster.set_delay(0)
    async with owner.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))


@dataclass
class Served:
    """The app with one replica, seen through httpx, and what ran on the replica."""

    http: httpx.AsyncClient
    replicas: Replicas
    on_replica: StatementCounter

    async def post(self, token: str, query: str, variables: dict | None = None, **headers):
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {token}", **headers},
        )
        assert response.status_code == 200, response.text
        return response

    async def data(self, token: str, query: str, variables: dict | None = None, **headers):
        body = (await self.post(token, query, variables, **headers)).json()
        assert "errors" not in body, body
        return body["data"]

    @property
    def replica(self):
        return self.replicas.replicas[0]


@contextlib.asynccontextmanager
async def served(
    cluster: ReplicaCluster,
    primary: AsyncEngine,
    *,
    path: str = "compiled",
    max_lag: float = 60.0,
    with_replica: bool = True,
    replica_url: str | None = None,
) -> AsyncIterator[Served]:
    settings = Settings(
        database_url="unused",
        debug=False,
        compiled_reads=path == "compiled",
        replica_urls=(replica_url or cluster.replica_app_url,) if with_replica else (),
        replica_max_lag=max_lag,
        replica_check_seconds=0.1,
    )
    app = create_app(engine=primary, settings=settings)
    replicas: Replicas = app.state.engine_ref["replicas"]
    counter = Reads(replicas.replicas[0].engine) if with_replica else None
    if with_replica:  # as the lifespan does before serving
        await replicas.check()
        replicas.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield Served(http, replicas, counter)
    finally:
        await replicas.close()
        if (hub := app.state.engine_ref.get("hub")) is not None:  # /readyz made it listen
            await hub.close()


async def until(condition, seconds: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def people(owner: AsyncEngine, cluster: ReplicaCluster):
    """An admin, a second admin, two reps with a customer each, all on the replica too."""
    _, admin = await make_user(owner, role="ADMIN", email="admin@example.com")
    _, other = await make_user(owner, role="ADMIN", email="other@example.com")
    rep_id, rep = await make_user(
        owner, role="SALES_REP", email="rep@example.com", first_name="Rae", last_name="Rep"
    )
    rival_id, _ = await make_user(owner, role="SALES_REP", email="rival@example.com")
    mine = await make_customer(owner, first_name="Mina", sales_rep_id=rep_id)
    await make_customer(owner, first_name="Theo", sales_rep_id=rival_id)
    await asyncio.to_thread(cluster.caught_up)
    return admin, other, rep, mine


def test_replica_urls_split_between_urls_not_inside_one(monkeypatch) -> None:
    monkeypatch.setenv(
        "DATABASE_REPLICA_URL",
        "postgresql://app:pw@r1/cg, postgresql://app@h1,h2:5433/cg?target_session_attrs=any,"
        "postgres://app@/cg?host=/run/pg",
    )
    assert Settings().replica_urls == (
        "postgresql://app:pw@r1/cg",
        "postgresql://app@h1,h2:5433/cg?target_session_attrs=any",
        "postgres://app@/cg?host=/run/pg",
    )
    monkeypatch.delenv("DATABASE_REPLICA_URL")
    assert Settings().replica_urls == ()


def test_lsn_text_round_trips() -> None:
    for text_lsn in ("0/0", "0/3020AD8", "16/B374D848", "FFFFFFFF/FFFFFFFF"):
        assert format_lsn(parse_lsn(text_lsn)) == text_lsn
    assert parse_lsn("16/B374D849") > parse_lsn("16/B374D848") > parse_lsn("15/FFFFFFFF")
    for bad in (None, "", "abc", "1/2/3", "g/1", "1" * 30):
        assert parse_lsn(bad) is None


async def test_the_replica_is_a_standby_of_the_primary(cluster, primary, owner) -> None:
    await people(owner, cluster)
    async with served(cluster, primary) as app:
        async with app.replica.engine.connect() as conn:
            assert (await conn.execute(text("SELECT pg_is_in_recovery()"))).scalar() is True
            users = (await conn.execute(text("SELECT count(*) FROM app_user"))).scalar()
        assert users == 4
        assert app.replica.up and app.replica.staleness < 1.0


@pytest.mark.parametrize("path", PATHS)
async def test_a_read_is_served_by_the_replica(cluster, primary, owner, on_primary, path) -> None:
    admin, _, rep, _ = await people(owner, cluster)
    async with served(cluster, primary, with_replica=False, path=path) as only_primary:
        expected = {
            who: (await only_primary.post(token, PAGE)).content
            for who, token in (("admin", admin), ("rep", rep))
        }
    assert b'"totalCount":1' in expected["rep"] and b'"totalCount":2' in expected["admin"]
    async with served(cluster, primary, path=path) as app:
        await asyncio.to_thread(cluster.caught_up)
        await app.replicas.check()
        # The replica stops replaying: a customer added now exists on the primary only.
        await asyncio.to_thread(cluster.pause)
        await make_customer(owner, first_name="Zed")
        await app.replicas.check()
        for who, token in (("admin", admin), ("rep", rep)):
            on_primary.reset()
            app.on_replica.reset()
            answer = (await app.post(token, PAGE)).content
            # Byte for byte what the primary answered before Zed, row-level security
            # included (the rep sees their own customer only): the replica's copy.
            assert on_primary.count == 0, (on_primary.statements, app.replica)
            assert answer == expected[who], who
            assert app.on_replica.count >= 2  # the token lookup, then the read
    # Without replicas, the primary answers with Zed.
    async with served(cluster, primary, with_replica=False, path=path) as only_primary:
        assert b'"totalCount":3' in (await only_primary.post(admin, PAGE)).content


async def test_a_replicas_sessions_keep_their_viewer(cluster, primary, owner, on_primary) -> None:
    """With the token cache listening, a token first looked up on the replica is cached
    from the primary in the background (never from the replica, which may lag a
    revocation); then a viewer's reads there are one statement once its session keeps
    the viewer, and viewers taking turns see only their rows."""
    admin, _, rep, _ = await people(owner, cluster)
    async with served(cluster, primary) as app:
        ready = await app.http.get("/readyz")  # the cache listens from here on
        assert '"listen":"ok"' in ready.text, ready.text
        for token in (admin, rep):
            for _ in range(100):
                app.on_replica.reset()
                await app.post(token, PAGE)
                if not any("api_token" in s for s in app.on_replica.statements):
                    break  # cached: no lookup any more
                await asyncio.sleep(0.05)
            assert not any("api_token" in s for s in app.on_replica.statements)
        for _ in range(2):
            for token, total in ((admin, b'"totalCount":2'), (rep, b'"totalCount":1')):
                on_primary.reset()
                app.on_replica.reset()
                assert total in (await app.post(token, PAGE)).content
                assert on_primary.count == 0, on_primary.statements
                kept = [s for s in app.on_replica.statements if "cg_keep_viewer" in s]
                assert app.on_replica.count == 1 + len(kept), app.on_replica.statements
                assert not any("BEGIN" in s for s in app.on_replica.statements)
        app.on_replica.reset()
        await app.post(rep, PAGE)  # the same viewer again, the session it left
        assert app.on_replica.count == 1, app.on_replica.statements


@pytest.mark.parametrize("path", PATHS)
async def test_the_writer_reads_their_write(cluster, primary, owner, on_primary, path) -> None:
    admin, other, _, mine = await people(owner, cluster)
    await asyncio.to_thread(cluster.set_delay, 2.0)  # every commit reaches the replica 2 s late
    customer = {"id": gid("Customer", mine.id)}
    async with (
        served(cluster, primary, path=path) as app,
        served(cluster, primary, path=path) as elsewhere,  # another instance
    ):
        on_primary.reset()
        app.on_replica.reset()
        written = await app.post(admin, RENAME, {"input": {**customer, "firstName": "Renamed"}})
        assert written.json()["data"]["customerUpdate"]["userErrors"] == []
        # A mutation runs on the primary. The first time a worker sees its text it may be
        # taken for a query and its token looked up on the replica: then again on the
        # primary, whose answer counts (test_a_token_revoked_on_the_primary_cannot_write).
        assert all(s.startswith("SELECT app_user.id") for s in app.on_replica.statements)
        lsn = written.headers[LSN_HEADER]
        assert parse_lsn(lsn) is not None

        # The writer, at once: the primary answers, with the write.
        app.on_replica.reset()
        assert (await app.data(admin, NAME, customer))["node"]["firstName"] == "Renamed"
        assert app.on_replica.count == 0
        # Someone else, at once: the replica answers, without it (it is 2 s behind).
        assert (await app.data(other, NAME, customer))["node"]["firstName"] == "Mina"
        assert app.on_replica.count >= 1

        # Another instance knows nothing of the write, unless the client sends the LSN back.
        assert (await elsewhere.data(admin, NAME, customer))["node"]["firstName"] == "Mina"
        sent = {LSN_HEADER: lsn}
        renamed = await elsewhere.data(admin, NAME, customer, **sent)
        assert renamed["node"]["firstName"] == "Renamed"

        # Once the replica has replayed the write, the writer reads from it again.
        await until(lambda: app.replica.replay_lsn >= parse_lsn(lsn), what="the replay")
        app.on_replica.reset()
        assert (await app.data(admin, NAME, customer))["node"]["firstName"] == "Renamed"
        assert app.on_replica.count >= 1


@pytest.mark.parametrize("path", PATHS)
async def test_a_token_revoked_on_the_primary_cannot_write(cluster, primary, owner, path) -> None:
    """The replica still has the token (its replay is paused), the primary revoked it."""
    admin, *_, mine = await people(owner, cluster)
    customer = {"id": gid("Customer", mine.id)}
    async with served(cluster, primary, path=path) as app:
        await asyncio.to_thread(cluster.pause)
        async with owner.begin() as conn:
            await conn.execute(text("UPDATE api_token SET revoked_at = now()"))
        for _ in range(2):  # the document unknown to the worker, then known
            body = (await app.post(admin, RENAME, {"input": {**customer, "firstName": "X"}})).json()
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
    async with owner.connect() as conn:
        name = "SELECT first_name FROM customer WHERE id = :id"
        assert (await conn.execute(text(name), {"id": mine.id})).scalar() == "Mina"


async def test_a_replica_too_far_behind_is_skipped(cluster, primary, owner, on_primary) -> None:
    _, other, _, mine = await people(owner, cluster)
    customer = {"id": gid("Customer", mine.id)}
    async with served(cluster, primary, max_lag=0.5) as app:
        # An idle primary: the replica is not behind, however long nothing is written.
        await asyncio.sleep(0.6)
        assert app.replica.staleness < 0.5
        await asyncio.to_thread(cluster.set_delay, 2.0)
        async with owner.begin() as conn:  # someone else's write, straight to the primary
            await conn.execute(
                text("UPDATE customer SET first_name = 'Later' WHERE id = :id"), {"id": mine.id}
            )
        await until(lambda: app.replica.staleness > 0.5, seconds=3, what="lag past 0.5 s")
        app.on_replica.reset()
        on_primary.reset()
        assert (await app.data(other, NAME, customer))["node"]["firstName"] == "Later"
        assert app.on_replica.count == 0 and on_primary.count >= 1
        # Caught up again (2 s after the write): back on the replica.
        await until(lambda: app.replica.staleness < 0.5, seconds=5, what="the catch-up")
        app.on_replica.reset()
        assert (await app.data(other, NAME, customer))["node"]["firstName"] == "Later"
        assert app.on_replica.count >= 1


async def test_reads_survive_a_stopped_replica(cluster, primary, owner, on_primary) -> None:
    """Both read paths choose the server in the same place (server/compiled._decide);
    the field-by-field path's own retry is the next test's."""
    admin, *_ = await people(owner, cluster)
    async with served(cluster, primary) as app:
        assert b'"totalCount":2' in (await app.post(admin, PAGE)).content
        assert app.replica.up
        await asyncio.to_thread(cluster.stop_replica)
        # Before any check notices: the failed connection sends the read to the primary.
        on_primary.reset()
        assert b'"totalCount":2' in (await app.post(admin, PAGE)).content
        assert on_primary.count >= 1
        assert not app.replica.up
        await app.replicas.check()
        assert not app.replica.up
        assert b'"totalCount":2' in (await app.post(admin, PAGE)).content
        # Back: the next check finds it, and reads go to it again.
        await asyncio.to_thread(cluster.start_replica)
        await until(lambda: app.replica.up, what="the replica back up")
        app.on_replica.reset()
        assert b'"totalCount":2' in (await app.post(admin, PAGE)).content
        assert app.on_replica.count >= 1


async def test_a_replica_dying_mid_query_is_retried_on_the_primary(
    cluster, primary, owner, on_primary
) -> None:
    """Field by field, the token is looked up on the replica before Strawberry reads: the
    replica crashes between the two, and the query runs again on the primary."""
    admin, *_ = await people(owner, cluster)
    async with served(cluster, primary, path="field_by_field") as app:
        from sqlalchemy import event

        def crash(*_args) -> None:
            event.remove(app.replica.engine.sync_engine, "before_cursor_execute", crash)
            cluster.stop_replica()  # a real crash, before the statement is sent

        event.listen(app.replica.engine.sync_engine, "before_cursor_execute", crash)
        on_primary.reset()
        assert b'"totalCount":2' in (await app.post(admin, PAGE)).content
        assert not (cluster.replica_dir / "postmaster.pid").exists()  # it did crash
        assert on_primary.count >= 1
        assert not app.replica.up


async def test_a_server_not_in_recovery_is_never_read_from(cluster, primary, owner, caplog) -> None:
    """A replica promoted after a failover (here: the primary's own URL) may diverge."""
    admin, *_ = await people(owner, cluster)
    async with served(cluster, primary, replica_url=cluster.primary_app_url) as app:
        assert not app.replica.up and app.replica.primary
        assert "is not in recovery" in caplog.text
        assert b'"totalCount":2' in (await app.post(admin, PAGE)).content
        assert app.on_replica.count == 0


async def test_a_subscription_replays_from_the_replica_then_the_primary(
    cluster, primary, owner
) -> None:
    """Old events come from the replica, the ones it has not replayed yet from the
    primary: all of them, in order, once each."""
    admin, *_ = await people(owner, cluster)
    customer = await make_customer(owner)
    async with owner.begin() as conn:
        for i in range(3):
            await record(conn, customer.id, "NOTE_ADDED", f"old {i}", actor_id=None)
    await asyncio.to_thread(cluster.caught_up)
    settings = Settings(
        database_url="unused",
        debug=False,
        replica_urls=(cluster.replica_app_url,),
        replica_check_seconds=0.1,
    )
    app = create_app(engine=primary, settings=settings)
    replicas: Replicas = app.state.engine_ref["replicas"]
    on_replica = Reads(replicas.replicas[0].engine)
    await asyncio.to_thread(cluster.caught_up)
    await replicas.check()
    replicas.start()
    await asyncio.to_thread(cluster.pause)
    async with owner.begin() as conn:  # on the primary only
        for i in range(2):
            await record(conn, customer.id, "NOTE_ADDED", f"new {i}", actor_id=None)
    await replicas.check()
    async with serve(app) as address:
        first = await httpx.AsyncClient(base_url=f"http://{address}").post(
            "/graphql",
            json={
                "query": "query($id: ID!) { node(id: $id) { ... on Customer {"
                " timeline(first: 5) { edges { node { summary cursor } } } } } }",
                "variables": {"id": gid("Customer", customer.id)},
            },
            headers={"authorization": f"Bearer {admin}"},
        )
        edges = first.json()["data"]["node"]["timeline"]["edges"]
        oldest = next(e["node"] for e in edges if e["node"]["summary"] == "old 0")
        on_replica.reset()
        async with Client.connect(address, admin) as client:
            await client.subscribe(
                TIMELINE, {"id": gid("Customer", customer.id), "since": oldest["cursor"]}
            )
            events = await client.events(4)
            assert [e["summary"] for e in events] == ["old 1", "old 2", "new 0", "new 1"]
            assert any("timeline_event" in s for s in on_replica.statements)
            assert await client.nothing_within(0.3)
    await replicas.close()
