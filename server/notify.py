"""Live timeline fan-out: one LISTEN connection per worker, many subscribers in-process.

PostgreSQL delivers NOTIFY at commit, to every listening worker on every host. A
notification only wakes the subscribers it may concern; each subscriber then reads the
events with id > its cursor through its own viewer's scope (resolvers/timeline.py), so
nothing out of scope is ever sent and nothing is missed or repeated.

The LISTEN connection can die (database restart, failover) or stop answering (a frozen
host): the hub notices (asyncpg's termination callback, and a periodic `SELECT 1`),
listens again on a new connection and then wakes every subscriber, which re-reads
`id > last`: notifications lost meanwhile do not matter, the events are in the table.
If it cannot listen again within `reconnect_seconds`, every subscriber ends with
`ListenLost` and its socket is closed with `CLOSE_RECONNECT`: reconnect with `since`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from resolvers.errors import database_unavailable
from resolvers.timeline import CHANNEL, ListenLost, TooManySubscriptions
from server.database import make_engine

log = logging.getLogger(__name__)

MAX_BACKOFF = 2.0  # seconds between attempts to listen again, at most


class SlowConsumer(Exception):
    """A subscriber fell too far behind; its connection is closed rather than buffered."""


@dataclass(eq=False)
class Subscriber:
    user_id: int
    customer_id: int | None  # None: every customer (scope still applies when reading)
    max_pending: int
    # How long its reads may fail (the database restarting) before it gives up: ListenLost.
    retry_seconds: float = 30.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pending: deque[int] = field(default_factory=deque)
    overflowed: bool = False
    lost: bool = False  # the hub could not listen again: end with ListenLost

    def notify(self, event_id: int) -> None:
        self.pending.append(event_id)
        if len(self.pending) > self.max_pending:
            self.overflowed = True
        self.wake.set()

    def caught_up_to(self, event_id: int) -> None:
        """Everything notified up to `event_id` has been read (delivered or out of scope)."""
        while self.pending and self.pending[0] <= event_id:
            self.pending.popleft()

    def catch_up(self) -> None:
        """Re-read `id > last`: notifications may have been lost while nobody listened."""
        self.wake.set()

    def lose(self) -> None:
        self.lost = True
        self.wake.set()


class TimelineHub:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_pending: int,
        max_per_user: int,
        reconnect_seconds: float = 30.0,
        health_seconds: float = 5.0,
        listen_url: str | None = None,
    ) -> None:
        self.engine = engine
        # LISTEN needs a session of its own: behind a transaction pooler, the pooled engine
        # would lend it a server connection for one statement only (and PgBouncer drops a
        # server that gets a notification while idle). `listen_url` names a direct one.
        self.listen_url = listen_url
        self._listen_engine: AsyncEngine | None = None
        self.max_pending = max_pending
        self.max_per_user = max_per_user
        self.reconnect_seconds = reconnect_seconds
        self.health_seconds = health_seconds
        self.subscribers: set[Subscriber] = set()
        self._conn: AsyncConnection | None = None
        self._raw: Any = None  # its asyncpg connection
        self._dead = asyncio.Event()  # set by asyncpg when the LISTEN connection terminates
        self._watcher: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    @property
    def listener_pid(self) -> int | None:
        """The LISTEN connection's server process (None when not listening)."""
        return None if self._raw is None else self._raw.get_server_pid()

    async def _ensure_listening(self) -> None:
        """Listen and watch the connection, unless already doing so (or reconnecting)."""
        async with self._lock:
            if self._watcher is not None and not self._watcher.done():
                return
            try:
                await asyncio.wait_for(self._listen(), self.reconnect_seconds)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                raise ListenLost() from exc
            self._watcher = asyncio.create_task(self._watch(), name="timeline-listen")

    async def listening(self) -> bool:
        """For /readyz: listening on a live connection (listening now if nobody has
        subscribed yet; False while it listens again after losing the connection)."""
        try:
            await self._ensure_listening()
        except Exception:
            return False
        return self._raw is not None and not self._raw.is_closed()

    def _engine_for_listen(self) -> AsyncEngine:
        if self.listen_url is None:
            return self.engine  # one of the app pool's connections
        if self._listen_engine is None:
            self._listen_engine = make_engine(
                self.listen_url, pool_size=1, transaction_pooler=False
            )
        return self._listen_engine

    async def _listen(self) -> None:
        conn = await self._engine_for_listen().connect()
        try:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.add_listener(CHANNEL, self._on_notify)
            raw.add_termination_listener(self._on_terminated)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()
            raise
        self._dead.clear()
        self._conn, self._raw = conn, raw
        log.info("listening on %s", CHANNEL)

    def _on_terminated(self, raw: Any) -> None:
        if raw is self._raw:
            self._dead.set()

    def _on_notify(self, _conn, _pid, _channel, payload: str) -> None:
        event_id, customer_id = (int(x) for x in payload.split(","))
        for sub in self.subscribers:
            if sub.customer_id is None or sub.customer_id == customer_id:
                sub.notify(event_id)

    async def _watch(self) -> None:
        """Until closed: notice a dead LISTEN connection, listen again, make everyone catch up."""
        while True:
            await self._until_dead()
            log.warning("lost the LISTEN connection on %s; listening again", CHANNEL)
            await self._drop()
            if not await self._relisten():
                log.error(
                    "could not listen again within %ss; closing %d subscriptions",
                    self.reconnect_seconds,
                    len(self.subscribers),
                )
                for sub in self.subscribers:
                    sub.lose()
                return
            for sub in self.subscribers:
                sub.catch_up()

    async def _until_dead(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dead.wait(), self.health_seconds)
                return
            # A server that stops answering closes nothing: ask it.
            try:
                await asyncio.wait_for(self._raw.fetchval("SELECT 1"), self.health_seconds)
            except Exception as exc:
                log.warning("LISTEN connection health check failed: %r", exc)
                return

    async def _drop(self) -> None:
        """Discard the dead connection: terminated, never returned to the pool as it is."""
        conn, raw = self._conn, self._raw
        self._conn = self._raw = None
        if raw is not None:
            raw.remove_termination_listener(self._on_terminated)
            raw.terminate()  # no goodbye to a server that may not answer
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()

    async def _relisten(self) -> bool:
        """Listen on a new connection, with backoff, for at most `reconnect_seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_seconds
        delay = 0.05
        while True:
            remaining = deadline - loop.time()
            try:
                await asyncio.wait_for(self._listen(), max(remaining, delay))
                return True
            except Exception as exc:
                log.info("listening again failed: %r", exc)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_BACKOFF)

    @contextlib.asynccontextmanager
    async def subscribe(self, user_id: int, customer_id: int | None) -> AsyncIterator[Subscriber]:
        if sum(s.user_id == user_id for s in self.subscribers) >= self.max_per_user:
            raise TooManySubscriptions(
                f"At most {self.max_per_user} live subscriptions per user on this worker."
            )
        await self._ensure_listening()
        sub = Subscriber(
            user_id,
            customer_id,
            self.max_pending,
            # the hub's own budget comes first: noticing the death, then trying again
            retry_seconds=self.reconnect_seconds + 2 * self.health_seconds,
        )
        self.subscribers.add(sub)
        try:
            yield sub
        finally:
            self.subscribers.discard(sub)

    async def close(self) -> None:
        """Stop watching and give the LISTEN connection back (discarded if it died)."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        conn, raw = self._conn, self._raw
        self._conn = self._raw = None
        alive = raw is not None and not raw.is_closed()
        if raw is not None:
            raw.remove_termination_listener(self._on_terminated)
        if alive:
            with contextlib.suppress(Exception):
                await raw.remove_listener(CHANNEL, self._on_notify)
        if conn is not None:
            with contextlib.suppress(Exception):
                if not alive:
                    await conn.invalidate()
                await conn.close()
        if self._listen_engine is not None:
            await self._listen_engine.dispose()
            self._listen_engine = None
