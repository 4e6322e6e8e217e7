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

The per-user limit on open subscriptions counts every worker of every instance: each
subscription holds a row of `subscription_lease` (its worker's id, an expiry). Taking one
is a transaction that locks the user (a transaction-level advisory lock), counts their
unexpired rows and inserts one if under the limit; ending one deletes it. The worker
renews its rows every third of `lease_seconds` (writing them again if a crash emptied
the UNLOGGED table), so the rows of a worker that died stop counting within
`lease_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from resolvers.errors import database_unavailable
from resolvers.timeline import CHANNEL, ListenLost, TooManySubscriptions
from resolvers.tokens import TOKEN_CHANNEL
from server.database import make_engine

log = logging.getLogger(__name__)

MAX_BACKOFF = 2.0  # seconds between attempts to listen again, at most

# Serialises one user's lease-taking across instances (a transaction-level lock: it also
# works through a transaction pooler), then counts with a fresh snapshot.
LOCK_USER = text("SELECT pg_advisory_xact_lock(hashtextextended('subscription_lease', :user))")
TAKE_LEASE = text(
    """INSERT INTO subscription_lease (id, instance, user_id, expires_at)
SELECT :id, :instance, :user, clock_timestamp() + make_interval(secs => :seconds)
WHERE (SELECT count(*) FROM subscription_lease
       WHERE user_id = :user AND expires_at > clock_timestamp()) < :limit
RETURNING id"""
)
END_LEASES = text("DELETE FROM subscription_lease WHERE id = ANY(:ids)")
RENEW_LEASES = text(
    """INSERT INTO subscription_lease (id, instance, user_id, expires_at)
SELECT id, :instance, user_id, clock_timestamp() + make_interval(secs => :seconds)
FROM unnest(CAST(:ids AS uuid[]), CAST(:users AS bigint[])) AS t(id, user_id)
ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at"""
)
EXPIRED = text("DELETE FROM subscription_lease WHERE expires_at < clock_timestamp()")
END_INSTANCE = text("DELETE FROM subscription_lease WHERE instance = :instance")


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
    lease: uuid.UUID = field(default_factory=uuid.uuid4)  # its subscription_lease row

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
        lease_seconds: float = 30.0,
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
        self.lease_seconds = lease_seconds
        self.instance = uuid.uuid4()  # this worker, in subscription_lease
        self._renewer: asyncio.Task | None = None
        self.reconnect_seconds = reconnect_seconds
        self.health_seconds = health_seconds
        self.subscribers: set[Subscriber] = set()
        self._conn: AsyncConnection | None = None
        self._raw: Any = None  # its asyncpg connection
        self._dead = asyncio.Event()  # set by asyncpg when the LISTEN connection terminates
        self._watcher: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        # Token revocations (migration 0021) ride the same connection: the cache of who a
        # token stands for is trusted only while it listens (resolvers/tokens.ViewerCache).
        self.viewers: Any = None

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
            if self.viewers is not None:
                await raw.add_listener(TOKEN_CHANNEL, self._on_token)
            raw.add_termination_listener(self._on_terminated)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()
            raise
        self._dead.clear()
        self._conn, self._raw = conn, raw
        if self.viewers is not None:
            self.viewers.listening(True)
        log.info("listening on %s", CHANNEL)

    def _on_terminated(self, raw: Any) -> None:
        if raw is self._raw:
            self._dead.set()

    def _on_token(self, _conn, _pid, _channel, payload: str) -> None:
        self.viewers.forget(payload)

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
        if self.viewers is not None:
            self.viewers.listening(False)
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
        sub = Subscriber(
            user_id,
            customer_id,
            self.max_pending,
            # the hub's own budget comes first: noticing the death, then trying again
            retry_seconds=self.reconnect_seconds + 2 * self.health_seconds,
        )
        too_many = TooManySubscriptions(f"At most {self.max_per_user} live subscriptions per user.")
        if sum(s.user_id == user_id for s in self.subscribers) >= self.max_per_user:
            raise too_many  # this worker's alone: no need to ask the database
        if not await self._take_lease(sub):
            raise too_many
        try:
            await self._ensure_listening()
            self.subscribers.add(sub)
            self._renew_leases()
            yield sub
        finally:
            self.subscribers.discard(sub)
            await self._end_leases([sub.lease])

    async def _take_lease(self, sub: Subscriber) -> bool:
        """A subscription_lease row for `sub`, if its user is under the limit counted over
        every instance (False: not)."""
        values = {
            "id": sub.lease,
            "instance": self.instance,
            "user": sub.user_id,
            "seconds": self.lease_seconds,
            "limit": self.max_per_user,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(LOCK_USER, {"user": sub.user_id})
                return (await conn.execute(TAKE_LEASE, values)).first() is not None
        except Exception as exc:
            if database_unavailable(exc):
                raise ListenLost() from exc
            raise

    async def _end_leases(self, leases: list[uuid.UUID]) -> None:
        """Delete ended subscriptions' rows (best effort: otherwise they expire)."""
        try:
            async with asyncio.timeout(self.lease_seconds), self.engine.begin() as conn:
                await conn.execute(END_LEASES, {"ids": leases})
        except Exception as exc:
            log.warning("could not end subscription leases (they expire): %r", exc)

    def _renew_leases(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renewing(), name="subscription-leases")

    async def _renewing(self) -> None:
        """Every third of the lease: push this worker's rows' expiry (writing them again if
        missing) and delete every instance's expired rows."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            subs = list(self.subscribers)
            try:
                async with self.engine.begin() as conn:
                    if subs:
                        values = {
                            "instance": self.instance,
                            "seconds": self.lease_seconds,
                            "ids": [s.lease for s in subs],
                            "users": [s.user_id for s in subs],
                        }
                        await conn.execute(RENEW_LEASES, values)
                    await conn.execute(EXPIRED)
            except Exception as exc:
                log.warning("renewing subscription leases failed: %r", exc)
                continue
            # Ended while the renewal ran: its row may have been written again.
            ended = [s.lease for s in subs if s not in self.subscribers]
            if ended:
                await self._end_leases(ended)

    async def close(self) -> None:
        """Stop watching and renewing (this worker's leases deleted) and give the LISTEN
        connection back (discarded if it died)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
            try:
                async with asyncio.timeout(self.lease_seconds), self.engine.begin() as conn:
                    await conn.execute(END_INSTANCE, {"instance": self.instance})
            except Exception as exc:
                log.warning("could not end this worker's subscription leases: %r", exc)
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        conn, raw = self._conn, self._raw
        self._conn = self._raw = None
        if self.viewers is not None:
            self.viewers.listening(False)
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
