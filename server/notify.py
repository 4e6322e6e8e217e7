"""Live timeline fan-out: one LISTEN connection per worker, many subscribers in-process.

PostgreSQL delivers NOTIFY at commit, to every listening worker on every host. A
notification only wakes the subscribers it may concern; each subscriber then reads the
events with id > its cursor through its own viewer's scope (resolvers/timeline.py), so
nothing out of scope is ever sent and nothing is missed or repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from resolvers.timeline import CHANNEL

log = logging.getLogger(__name__)


class SlowConsumer(Exception):
    """A subscriber fell too far behind; its connection is closed rather than buffered."""


class TooManySubscriptions(Exception):
    pass


@dataclass(eq=False)
class Subscriber:
    user_id: int
    customer_id: int | None  # None: every customer (scope still applies when reading)
    max_pending: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pending: deque[int] = field(default_factory=deque)
    overflowed: bool = False

    def notify(self, event_id: int) -> None:
        self.pending.append(event_id)
        if len(self.pending) > self.max_pending:
            self.overflowed = True
        self.wake.set()

    def caught_up_to(self, event_id: int) -> None:
        """Everything notified up to `event_id` has been read (delivered or out of scope)."""
        while self.pending and self.pending[0] <= event_id:
            self.pending.popleft()


class TimelineHub:
    def __init__(self, engine: AsyncEngine, *, max_pending: int, max_per_user: int) -> None:
        self.engine = engine
        self.max_pending = max_pending
        self.max_per_user = max_per_user
        self.subscribers: set[Subscriber] = set()
        self._conn = None
        self._raw = None
        self._lock = asyncio.Lock()

    async def _ensure_listening(self) -> None:
        async with self._lock:
            if self._raw is not None and not self._raw.is_closed():
                return
            self._conn = await self.engine.connect()
            raw = await self._conn.get_raw_connection()
            self._raw = raw.driver_connection
            await self._raw.add_listener(CHANNEL, self._on_notify)
            log.info("listening on %s", CHANNEL)

    def _on_notify(self, _conn, _pid, _channel, payload: str) -> None:
        event_id, customer_id = (int(x) for x in payload.split(","))
        for sub in self.subscribers:
            if sub.customer_id is None or sub.customer_id == customer_id:
                sub.notify(event_id)

    @contextlib.asynccontextmanager
    async def subscribe(self, user_id: int, customer_id: int | None) -> AsyncIterator[Subscriber]:
        if sum(s.user_id == user_id for s in self.subscribers) >= self.max_per_user:
            raise TooManySubscriptions(
                f"At most {self.max_per_user} live subscriptions per user on this worker."
            )
        await self._ensure_listening()
        sub = Subscriber(user_id, customer_id, self.max_pending)
        self.subscribers.add(sub)
        try:
            yield sub
        finally:
            self.subscribers.discard(sub)

    async def close(self) -> None:
        if self._raw is not None and not self._raw.is_closed():
            with contextlib.suppress(Exception):
                await self._raw.remove_listener(CHANNEL, self._on_notify)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = self._raw = None
