"""Read replicas (DATABASE_REPLICA_URL): which database answers a read.

Query operations (compiled or field by field) and the replay of a subscription's old
events may run on a streaming replica; mutations (with their payload re-reads and
idempotency keys), LISTEN and everything else stay on the primary.

A replica is used only when it is up and at most `max_lag` seconds behind. Staleness is
measured against the primary itself: every check samples the primary's
`pg_current_wal_lsn()` with the time, then reads each replica's
`pg_last_wal_replay_lsn()`; a replica that has replayed a sample taken at time t holds
everything committed before t, so it is at most `now - t` behind (exact to within one check
interval). Unlike the replica's own `pg_last_xact_replay_timestamp()`, this neither grows
while the primary is idle nor stays small while the replica is cut off from the primary.

Read-your-writes: a mutation's response carries the primary's WAL position after its
commit (`X-Customer-Graph-LSN`), and this worker remembers it for the bearer token that
made it. A later read with that token, or with that header sent back (from any instance),
goes to a replica that has replayed that position, else to the primary. The memory is per
worker and per token (a device's session); the header is what carries it across workers,
instances behind a load balancer, and a user's other devices.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncEngine

from resolvers.errors import chain, database_unavailable

log = logging.getLogger(__name__)

LSN_HEADER = "x-customer-graph-lsn"
ENGINE_KEY = "customer_graph.engine"  # the ASGI scope's engine for Strawberry's context
# The primary's WAL insert position: at a record boundary, past every commit so far.
_CURRENT_LSN = "SELECT pg_current_wal_insert_lsn()::text"
_POSITIONS = "SELECT pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text"
# A tiny WAL record, flushed (a logical decoding message: nothing else reads it). Before
# PostgreSQL 17 (no `flush` argument) a transactional one, flushed by its commit.
_NUDGE = "SELECT pg_logical_emit_message(false, 'customer-graph', '', true)::text"
_NUDGE_BEFORE_17 = "SELECT pg_logical_emit_message(true, 'customer-graph', '')::text"
_REPLAY_LSN = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"
# A standby cancels a read that conflicts with what it replays (vacuum on the primary):
# the same read on the primary answers.
_RECOVERY_CONFLICT = "40001"
_DOWN = "replica %s unavailable (%r); reading from the primary"
_MAX_PINS = 100_000  # tokens with a recent write per worker (~100 bytes each)


def parse_lsn(text: str | None) -> int | None:
    """PostgreSQL's `16/B374D848` as a number; None for anything else."""
    if not text or "/" not in text or len(text) > 17:
        return None
    high, _, low = text.strip().partition("/")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def replica_failed(error: BaseException) -> bool:
    """A read on a replica worth answering on the primary instead: the replica is out of
    reach, or it cancelled the read for a conflict with recovery."""
    if database_unavailable(error):
        return True
    return any(getattr(e, "sqlstate", None) == _RECOVERY_CONFLICT for e in chain(error))


@dataclass(eq=False)
class Replica:
    engine: AsyncEngine
    name: str  # host and database, for logs (never the password)
    up: bool = False  # answered the last check, in recovery
    replay_lsn: int = 0
    staleness: float = math.inf  # seconds behind the primary, at most
    primary: bool = False  # found not in recovery (promoted?): never read from

    def usable(self, max_lag: float, lsn: int) -> bool:
        return self.up and self.staleness <= max_lag and self.replay_lsn >= lsn


def _name(engine: AsyncEngine) -> str:
    url = engine.url
    host = url.host or url.query.get("host") or "localhost"
    return f"{host}:{url.port or 5432}/{url.database}"


class Replicas:
    """This worker's replicas, their state, and the tokens that wrote recently."""

    def __init__(
        self,
        primary: Callable[[], AsyncEngine],
        engines: Sequence[AsyncEngine],
        *,
        max_lag: float,
        check_seconds: float,
    ) -> None:
        self.primary = primary  # a callable: the app opens the primary in its lifespan
        self.replicas = [Replica(e, _name(e)) for e in engines]
        self.max_lag = max_lag
        self.check_seconds = check_seconds
        self.check_timeout = max(check_seconds, 1.0)  # a check waits this long at most
        # (monotonic time, primary LSN) of recent checks, oldest first.
        self.samples: deque[tuple[float, int]] = deque()
        # sha256(token) -> LSN of its last write. Past the TTL every usable replica has
        # replayed it anyway (it is at most max_lag behind, measured a check ago).
        self.pins: TTLCache = TTLCache(_MAX_PINS, ttl=max_lag + 2 * check_seconds + 1)
        self._turn = itertools.count()
        self._inserted: int | None = None  # the primary's insert position at the last check
        self._task: asyncio.Task | None = None

    def __bool__(self) -> bool:
        return bool(self.replicas)

    # -- choosing ------------------------------------------------------------------------

    def for_read(self, token_key: bytes | None = None, lsn: int | None = None):
        """A replica for this read, or None: the primary. `token_key` is the bearer token's
        hash (its own recent write), `lsn` the position the client sent back."""
        self.start()
        needed = max(lsn or 0, self.pins.get(token_key, 0) if token_key else 0)
        usable = [r for r in self.replicas if r.usable(self.max_lag, needed)]
        if not usable:
            return None
        return usable[next(self._turn) % len(usable)].engine

    def is_replica(self, engine: AsyncEngine | None) -> bool:
        return any(r.engine is engine for r in self.replicas)

    def failed(self, engine: AsyncEngine, error: BaseException) -> None:
        """A read on `engine` failed for a reason the primary does not share: skip the
        replica until the next check finds it up (a recovery conflict leaves it up)."""
        for replica in self.replicas:
            if replica.engine is engine and database_unavailable(error) and replica.up:
                replica.up = False
                log.warning(_DOWN, replica.name, error)

    # -- read-your-writes ----------------------------------------------------------------

    async def written(self, token_key: bytes | None) -> str | None:
        """After a mutation: the primary's WAL position now (past its commit), remembered
        for the token; the value of the LSN header. None when the primary cannot say."""
        try:
            async with self.primary().connect() as conn:
                text = (await conn.exec_driver_sql(_CURRENT_LSN)).scalar_one()
        except Exception:
            log.warning("could not read the primary's WAL position after a write", exc_info=True)
            return None
        lsn = parse_lsn(text)
        if lsn is not None and token_key:
            self.pins[token_key] = max(lsn, self.pins.get(token_key, 0))
        return text

    # -- checking ------------------------------------------------------------------------

    def start(self) -> None:
        """Check in the background from now on (idempotent; needs a running loop)."""
        if self._task is None and self.replicas:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="replica-checks")

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("checking the replicas failed")
            await asyncio.sleep(self.check_seconds)

    async def check(self) -> None:
        """One round: sample the primary's position, then every replica's."""
        now = time.monotonic()
        try:
            async with asyncio.timeout(self.check_timeout):
                lsn = await self._sample()
        except Exception as error:
            # No reference: staleness cannot be told, so the replicas are not used (the
            # primary is likely down too, and reads answer 503 as without replicas).
            log.debug("sampling the primary failed: %r", error)
            lsn = None
        if lsn is not None:
            self.samples.append((now, lsn))
        window = self.max_lag + 3 * self.check_seconds + 1
        while len(self.samples) > 1 and self.samples[1][0] < now - window:
            self.samples.popleft()
        await asyncio.gather(*(self._check(r) for r in self.replicas))

    async def _sample(self) -> int | None:
        """The primary's insert position. A replica replays only whole records the primary
        has flushed, and nothing flushes the last records of an otherwise idle primary
        that wrote no commit (a read setting hint bits logs a full-page image when data
        checksums are on): when nothing was written since the last check (or this is the
        first), a tiny flushed record pushes it out, or no replica would be seen to catch
        up before the next commit."""
        async with self.primary().connect() as conn:
            inserted, flushed = map(parse_lsn, (await conn.exec_driver_sql(_POSITIONS)).one())
            idle = self._inserted in (None, inserted)  # nothing new since the last check
            if None not in (inserted, flushed) and flushed < inserted and idle:
                old = (conn.dialect.server_version_info or (0,)) < (17,)
                nudged = await conn.exec_driver_sql(_NUDGE_BEFORE_17 if old else _NUDGE)
                inserted = parse_lsn(nudged.scalar_one())
                await conn.commit()
            self._inserted = inserted
            return inserted

    async def _check(self, replica: Replica) -> None:
        was_up = replica.up
        try:
            async with asyncio.timeout(self.check_timeout), replica.engine.connect() as conn:
                recovering, replayed = (await conn.exec_driver_sql(_REPLAY_LSN)).one()
        except Exception as error:
            replica.up, replica.staleness = False, math.inf
            if was_up:
                log.warning(_DOWN, replica.name, error)
            return
        if not recovering:  # promoted, or not a replica at all: its data may diverge
            if not replica.primary:
                log.error("%s is not in recovery (promoted?); not reading from it", replica.name)
            replica.up, replica.staleness, replica.primary = False, math.inf, True
            return
        replica.primary = False
        replica.replay_lsn = parse_lsn(replayed) or 0
        was_usable = was_up and replica.staleness <= self.max_lag
        replica.staleness = self._staleness(replica.replay_lsn)
        replica.up = True
        usable = replica.staleness <= self.max_lag
        if usable and not was_usable:
            log.info("replica %s in use (%.1f s behind)", replica.name, replica.staleness)
        elif was_usable and not usable:
            log.warning(
                "replica %s over %g s behind; reading from the primary", replica.name, self.max_lag
            )

    def _staleness(self, replayed: int) -> float:
        """Seconds since the newest primary sample the replica has replayed; infinite
        when it has replayed none of those kept."""
        now = time.monotonic()
        for at, lsn in reversed(self.samples):
            if lsn <= replayed:
                return now - at
        return math.inf

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for replica in self.replicas:
            await replica.engine.dispose()
