"""Several instances: two real `customer-graph serve` processes on two ports against one
database. Started together on an empty database they migrate once (the migration lock);
a persisted query registered on one is found on the other; a timeline event written
through one reaches a subscriber on the other; the per-user subscription limit counts
both, and a killed instance's subscriptions stop counting. `serve --no-migrate` on a
database behind the head is alive but not ready until `customer-graph migrate` runs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.database import make_engine, with_database
from server.migrate import MIGRATION_LOCK, script_head
from server.runtime import APP_ROLE, with_user
from tests.conftest import gid
from tests.factories import make_customer, make_user
from tests.test_subscriptions import ALL, TIMELINE, Client

ROOT = Path(__file__).resolve().parent.parent
STARTUP = 120.0  # seconds: two instances import and migrate on a loaded 2-core machine
LEASE_SECONDS = 3
ENV = {
    "CUSTOMER_GRAPH_POOL_SIZE": "3",
    "CUSTOMER_GRAPH_LOG_FORMAT": "json",
    "CUSTOMER_GRAPH_SUBSCRIPTIONS_PER_USER": "2",
    "CUSTOMER_GRAPH_SUBSCRIPTION_LEASE_SECONDS": str(LEASE_SECONDS),
}


@dataclass
class Instance:
    proc: asyncio.subprocess.Process
    address: str
    log: Path

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"http://{self.address}", timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _cli(url: str, tmp_path: Path, *args: str) -> tuple[asyncio.subprocess.Process, Path]:
    """`python -m server.cli ARGS` as the owner of `url` (the application role serves)."""
    log = tmp_path / f"{args[0]}-{uuid.uuid4().hex[:6]}.log"
    environment = {
        **os.environ,
        **ENV,
        "DATABASE_URL": with_user(url, APP_ROLE),
        "CUSTOMER_GRAPH_MIGRATION_URL": url,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{log.stem}"),
    }
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", *args,
            cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return proc, log


async def start(url: str, tmp_path: Path, *extra: str) -> Instance:
    port = _free_port()
    proc, log = await _cli(url, tmp_path, "serve", "--port", str(port), *extra)
    return Instance(proc, f"127.0.0.1:{port}", log)


async def until(instance: Instance, path: str, status: int = 200) -> httpx.Response:
    deadline = time.monotonic() + STARTUP
    async with instance.http() as http:
        while True:
            assert instance.proc.returncode is None, instance.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{path} never answered {status}"
            with contextlib.suppress(httpx.HTTPError):
                response = await http.get(path)
                if response.status_code == status:
                    return response
            await asyncio.sleep(0.2)


async def stop(instance: Instance) -> None:
    if instance.proc.returncode is None:
        instance.proc.kill()
        await instance.proc.wait()


@contextlib.asynccontextmanager
async def empty_database(server_url: str) -> AsyncIterator[str]:
    name = f"cg_inst_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url, pool_size=1)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(server_url, name)
    finally:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


async def migration_waiters(engine: AsyncEngine) -> int:
    """Sessions of this database waiting for the migration lock."""
    sql = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid = :high AND objid = :low"
    )
    key = {"high": MIGRATION_LOCK >> 32, "low": MIGRATION_LOCK & 0xFFFFFFFF}
    async with engine.connect() as conn:
        return (await conn.execute(sql, key)).scalar_one()


@dataclass
class Pair:
    a: Instance
    b: Instance
    engine: AsyncEngine  # the owner's, on the instances' database
    token: str


@pytest.fixture(scope="module")
async def pair(server_url: str, tmp_path_factory) -> AsyncIterator[Pair]:
    """Two instances started together on an empty database: both queue on the migration
    lock (held here until both wait for it), then race for it."""
    tmp_path = tmp_path_factory.mktemp("instances")
    async with empty_database(server_url) as url:
        engine = make_engine(url, pool_size=2)
        a = b = None
        try:
            async with engine.connect() as holder:
                await holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
                a, b = await start(url, tmp_path), await start(url, tmp_path)
                deadline = time.monotonic() + STARTUP
                while await migration_waiters(engine) < 2:
                    assert time.monotonic() < deadline, "both instances never waited to migrate"
                    assert a.proc.returncode is None, a.log.read_text()[-3000:]
                    assert b.proc.returncode is None, b.log.read_text()[-3000:]
                    await asyncio.sleep(0.2)
                await holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            await asyncio.gather(until(a, "/readyz"), until(b, "/readyz"))
            _, token = await make_user(engine, role="ADMIN", email="ops@example.com")
            yield Pair(a, b, engine, token)
        finally:
            for instance in (a, b):
                if instance is not None:
                    await stop(instance)
            await engine.dispose()


async def test_started_together_they_migrate_once(pair):
    async with pair.engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    assert version == script_head()
    # Alembic's INFO line per migration, from whichever instance took the lock first.
    first = [i for i in (pair.a, pair.b) if "Running upgrade  -> 0001" in i.log.read_text()]
    assert len(first) == 1
    assert all(i.proc.returncode is None for i in (pair.a, pair.b))


async def test_a_query_registered_on_one_instance_is_found_on_the_other(pair):
    query = "query Count { customers { totalCount } }"
    ext = {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}
    }
    auth = {"Authorization": f"Bearer {pair.token}"}
    async with pair.a.http() as a, pair.b.http() as b:
        r = await b.post("/graphql", json={"extensions": ext}, headers=auth)
        assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        r = await a.post("/graphql", json={"query": query, "extensions": ext}, headers=auth)
        expected = r.json()
        assert "totalCount" in expected["data"]["customers"]
        r = await b.post("/graphql", json={"extensions": ext}, headers=auth)
        assert r.json() == expected
        assert r.headers["x-customer-graph-path"] == "compiled"


UPDATE = """mutation($input: CustomerUpdateInput!) { customerUpdate(input: $input) {
  userErrors { code } } }"""


async def test_an_event_written_through_one_instance_reaches_a_subscriber_on_the_other(pair):
    customer = await make_customer(pair.engine, last_name="Twin")
    async with Client.connect(pair.b.address, pair.token) as ws:
        await ws.subscribe(TIMELINE, {"id": gid("Customer", customer.id)})
        await asyncio.sleep(1.0)  # registered on B before the event is written on A
        async with pair.a.http() as a:
            r = await a.post(
                "/graphql",
                json={
                    "query": UPDATE,
                    "variables": {"input": {"id": gid("Customer", customer.id), "firstName": "Bo"}},
                },
                headers={"Authorization": f"Bearer {pair.token}"},
            )
            assert r.json() == {"data": {"customerUpdate": {"userErrors": []}}}
        [event] = await ws.events(1)
        assert event["kind"] == "CUSTOMER_UPDATED"
        assert event["customer"]["number"] == customer.number


async def _refused(ws: Client) -> bool:
    """Subscribe to every event: refused for the limit (True), or running (False)."""
    await ws.subscribe(ALL, {})
    try:
        message = await ws.receive(wait=1.5)
    except TimeoutError:
        return False  # running: no event yet
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "RATE_LIMITED", message
    return True


async def test_the_subscription_limit_counts_both_instances(pair):
    """Limit 2 per user. The last test: it kills instance A."""
    async with (
        Client.connect(pair.a.address, pair.token) as on_a,
        Client.connect(pair.b.address, pair.token) as on_b,
    ):
        assert not await _refused(on_a)
        assert not await _refused(on_b)
        assert await _refused(on_a) and await _refused(on_b)  # one each: two in all
        # ending B's frees a place, on A too
        await on_b.ws.send('{"id": "1", "type": "complete"}')
        await asyncio.sleep(0.5)
        assert not await _refused(on_a)
        assert await _refused(on_b)
        # A dies with two subscriptions: they stop counting within the lease
        pair.a.proc.send_signal(signal.SIGKILL)
        await pair.a.proc.wait()
        assert await _refused(on_b)
        await asyncio.sleep(LEASE_SECONDS + 0.5)
        assert not await _refused(on_b)


async def test_no_migrate_is_not_ready_until_migrated(server_url, tmp_path):
    async with empty_database(server_url) as url:
        instance = await start(url, tmp_path, "--no-migrate")
        try:
            await until(instance, "/livez")
            response = await until(instance, "/readyz", 503)
            assert (
                response.json()["checks"]["migrations"] == f"at None, code expects {script_head()}"
            )
            assert "this code expects" in instance.log.read_text()  # the start-up warning
            migrate, log = await _cli(url, tmp_path, "migrate")
            assert await migrate.wait() == 0, log.read_text()[-3000:]
            await until(instance, "/readyz")  # ready once migrated, no restart
        finally:
            await stop(instance)
