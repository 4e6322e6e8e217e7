"""Liveness, readiness, and draining on SIGTERM.

- `/livez`: the process answers (nothing else: a database outage must not get a worker
  restarted, it would not help).
- `/readyz`: this worker should get traffic: the database answers, its schema is at this
  code's migration head, and the live timeline's LISTEN connection is up (started by the
  first probe if nobody subscribed yet). 503 otherwise, and while draining.
- Draining: the first SIGTERM (or SIGINT) makes /readyz answer 503, closes every
  WebSocket with 1001 (Going Away: clients reconnect elsewhere and resume with `since`),
  keeps serving for `CUSTOMER_GRAPH_DRAIN_DELAY_SECONDS` so a load balancer notices, then
  hands the signal to uvicorn, which stops accepting and lets in-flight requests finish
  within `CUSTOMER_GRAPH_DRAIN_SECONDS` (its graceful shutdown timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from server.database import one_off_engine
from server.migrate import compare, script_head

log = logging.getLogger(__name__)

GOING_AWAY = 1001
GOING_AWAY_REASON = "server shutting down: reconnect and resume with `since`"
MIGRATIONS_CACHE_SECONDS = 30.0  # an owner connection per check: not on every probe


class Drain:
    """One worker's drain: its state, and the WebSockets to close."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.draining = False
        self.sockets: weakref.WeakSet[WebSocket] = weakref.WeakSet()

    def track(self, websocket: WebSocket) -> None:
        self.sockets.add(websocket)

    async def close_sockets(self) -> None:
        sockets = list(self.sockets)
        if sockets:
            log.info("closing %d WebSocket(s) with %d", len(sockets), GOING_AWAY)
        await asyncio.gather(*(_going_away(ws) for ws in sockets))

    async def run(self, stop: Callable[[], None]) -> None:
        """Readiness off, sockets closed, the delay, then `stop` (uvicorn's own handler)."""
        self.draining = True
        log.info("draining: /readyz answers 503; in-flight requests finish")
        try:
            await self.close_sockets()
            if self.delay > 0:
                await asyncio.sleep(self.delay)
        finally:
            stop()

    def install(self) -> None:
        """Put the drain in front of uvicorn's SIGTERM/SIGINT handlers (the worker's main
        thread; uvicorn restores its predecessors when it stops). A second SIGINT goes
        straight to uvicorn (it forces the exit); a second SIGTERM is ignored."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if callable(previous):
                signal.signal(sig, self._handler(loop, previous))

    def _handler(self, loop: asyncio.AbstractEventLoop, previous: Callable) -> Callable:
        def handle(signum: int, frame: Any) -> None:
            if self.draining:
                if signum == signal.SIGINT:
                    previous(signum, frame)
                return
            self.draining = True
            stop = lambda: previous(signum, frame)  # noqa: E731
            loop.call_soon_threadsafe(lambda: loop.create_task(self.run(stop)))

        return handle


async def _going_away(websocket: WebSocket) -> None:
    with contextlib.suppress(Exception):  # already closing: nothing to do
        await websocket.close(code=GOING_AWAY, reason=GOING_AWAY_REASON)


async def refuse_websocket(scope, receive, send) -> None:
    """A WebSocket opened while draining: accepted, then closed with 1001 at once (a
    refused handshake would look like a network error to graphql-ws clients)."""
    websocket = WebSocket(scope, receive, send)
    offered = scope.get("subprotocols") or []
    await websocket.accept(subprotocol=offered[0] if offered else None)
    await websocket.close(code=GOING_AWAY, reason=GOING_AWAY_REASON)


class Migrations:
    """Is the database at this code's migration head? Read as the owner (the application
    role may not read alembic_version); a good answer is kept for 30 s."""

    def __init__(self) -> None:
        self.head: str | None = None
        self.checked_at = -MIGRATIONS_CACHE_SECONDS

    async def check(self, owner_url: str | None, app_engine: AsyncEngine) -> str:
        if time.monotonic() - self.checked_at < MIGRATIONS_CACHE_SECONDS:
            return "ok"
        if self.head is None:
            self.head = await asyncio.to_thread(script_head)
        current = await _current_revision(owner_url, app_engine)
        # Ahead (a revision this code does not know: a newer release migrated during a
        # rolling deploy) is ready: migrations keep the previous release working.
        if (
            current != self.head
            and await asyncio.to_thread(compare, current, self.head) == "behind"
        ):
            return f"at {current}, code expects {self.head}"
        self.checked_at = time.monotonic()
        return "ok"


async def _current_revision(owner_url: str | None, app_engine: AsyncEngine) -> str | None:
    """The database's revision; None when it was never migrated (`serve --no-migrate`)."""

    async def read(conn) -> str | None:
        if (await conn.execute(text("SELECT to_regclass('alembic_version')"))).scalar() is None:
            return None
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()

    if owner_url is None:  # the app's engine is the owner's (no second role configured)
        async with app_engine.connect() as conn:
            return await read(conn)
    engine = one_off_engine(owner_url)  # pooler-safe when CUSTOMER_GRAPH_TRANSACTION_POOLER
    try:
        async with engine.connect() as conn:
            return await read(conn)
    finally:
        await engine.dispose()


def endpoints(engine_ref: dict, drain: Drain, hub: Callable[[], Any], timeout: float):
    """(/livez, /readyz) handlers; `hub` gives the worker's TimelineHub."""
    migrations = Migrations()

    async def livez(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        if drain.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        engine = engine_ref["engine"]
        checks: dict[str, str] = {}

        async def run(name: str, check) -> None:
            try:
                async with asyncio.timeout(timeout):
                    checks[name] = await check()
            except Exception as error:  # the check's answer, not the request's
                checks[name] = f"failed: {type(error).__name__}"

        async def database() -> str:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return "ok"

        async def schema() -> str:
            return await migrations.check(engine_ref.get("owner_url"), engine)

        async def listen() -> str:
            return "ok" if await hub().listening() else "not listening"

        await run("database", database)
        await run("migrations", schema)
        await run("listen", listen)
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    return livez, readyz
