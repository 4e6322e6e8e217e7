"""/livez and /readyz in process: what readiness checks, and 503 while draining."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from sqlalchemy import text

from server.app import create_app
from server.settings import Settings
from tests.conftest import serve


@contextlib.asynccontextmanager
async def app_with(app_engine, database_url: str) -> AsyncIterator[tuple]:
    # The owner's URL: the application role may not read alembic_version.
    settings = Settings(database_url="unused", migration_url=database_url)
    app = create_app(engine=app_engine, settings=settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield app, http
    finally:
        hub = app.state.engine_ref.get("hub")
        if hub is not None:
            await hub.close()


async def test_ready_when_database_migrations_and_listen_are(app_engine, database_url):
    async with app_with(app_engine, database_url) as (app, http):
        assert (await http.get("/livez")).json() == {"status": "ok"}
        response = await http.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "ready",
            "checks": {"database": "ok", "migrations": "ok", "listen": "ok"},
        }
        # The probe started the live timeline's LISTEN connection.
        assert app.state.engine_ref["hub"].listener_pid is not None
        assert (await http.get("/healthz")).json() == {"status": "ok"}


async def test_not_ready_off_the_migration_head(app_engine, engine, database_url):
    async with engine.begin() as conn:
        head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        async with app_with(app_engine, database_url) as (_, http):
            response = await http.get("/readyz")
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == "unavailable"
            assert body["checks"]["migrations"] == f"at 0001, code expects {head}"
            assert body["checks"]["database"] == "ok"
            assert (await http.get("/livez")).status_code == 200  # alive all the same
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


async def test_not_ready_when_the_database_is_out_of_reach(database_url):
    from server.database import make_engine

    dead = make_engine("postgresql://nobody@127.0.0.1:9/none", connect_timeout=1)
    try:
        async with app_with(dead, database_url) as (_, http):
            response = await http.get("/readyz")
            assert response.status_code == 503
            checks = response.json()["checks"]
            assert checks["database"].startswith("failed") and checks["listen"] != "ok"
    finally:
        await dead.dispose()


async def test_draining_answers_503_and_refuses_websockets_with_1001(app_engine, database_url):
    async with app_with(app_engine, database_url) as (app, http):
        app.state.drain.draining = True
        response = await http.get("/readyz")
        assert response.status_code == 503 and response.json() == {"status": "draining"}
        assert (await http.get("/livez")).status_code == 200
        async with serve(app) as address:
            async with websockets.connect(
                f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]
            ) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
        assert closed.value.rcvd.code == 1001
        assert "since" in closed.value.rcvd.reason


async def test_ready_past_the_head_a_newer_release_migrated(app_engine, engine, database_url):
    """A revision this code does not know is a newer release's (a rolling deploy, or the
    code rolled back): ready, since migrations keep the previous release working."""
    async with engine.begin() as conn:
        head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        async with app_with(app_engine, database_url) as (_, http):
            response = await http.get("/readyz")
            assert response.status_code == 200, response.text
            assert response.json()["checks"]["migrations"] == "ok"
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
