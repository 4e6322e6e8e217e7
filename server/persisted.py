"""Apollo persisted queries (APQ) for every instance: PostgreSQL's `persisted_query`, with
this process's LRU in front as a read-through cache (server/compiled.py asks).

A hash one instance registered is found by another: a hash missing from the process's
cache is looked up on the request's read connection (one statement), and kept. Only
signed-in requests get here, and only a text whose sha256 the front checked is stored.

Bounded for hostile clients too (anyone may sign up as a site user): the table holds at
most `store_bytes` (each row counts its text's bytes plus `ROW_BYTES`). The running sum
lives in `persisted_query_total`, updated by the registration itself; a registration
that takes it past the cap evicts the least recently used rows down to nine tenths of it
(one walk of the `last_used` index per tenth of the cap registered, not per request).
`last_used` is renewed when a process reads a row from the table and, for hashes it keeps
using from its own cache, at most every `TOUCH_SECONDS`; that renewal writes the row
again if it was evicted meanwhile. Writes run after the read's transaction (read-only,
perhaps on a replica), on a connection of their own from the primary's pool; when they
fail the answer still goes out and the process keeps the text.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from cachetools import LRUCache
from sqlalchemy.ext.asyncio import AsyncEngine

from resolvers.errors import is_timeout, is_unavailable

log = logging.getLogger(__name__)

ROW_BYTES = 256  # a row's overhead beyond its text: hash, tuple header, index entries
TOUCH_SECONDS = 600.0  # renew a hash's last_used at most this often per process
EVICT_TO = (9, 10)  # eviction leaves the table at nine tenths of the cap
PENDING_KEY = "customer_graph.persisted"  # ASGI scope: (hash, text) to write after the read

LOOKUP = "SELECT query FROM persisted_query WHERE hash = $1"
# Insert unless known; the total grows by what was inserted (the returned total: None
# when the row was there already).
REGISTER = """
WITH added AS (
    INSERT INTO persisted_query (hash, query, bytes, last_used)
    VALUES ($1, $2, octet_length($2) + $3, now())
    ON CONFLICT (hash) DO NOTHING
    RETURNING bytes
)
INSERT INTO persisted_query_total (id, bytes)
SELECT 1, bytes FROM added
ON CONFLICT (id) DO UPDATE SET bytes = persisted_query_total.bytes + excluded.bytes
RETURNING bytes"""
TOUCH = "UPDATE persisted_query SET last_used = now() WHERE hash = $1"
# The least recently used rows whose bytes add up to at least $1, deleted; the total
# shrinks by what this statement deleted (a concurrent eviction's rows are skipped).
EVICT = """
WITH victims AS (
    SELECT hash FROM (
        SELECT hash, sum(bytes) OVER (ORDER BY last_used, hash) - bytes AS before
        FROM persisted_query
    ) ranked
    WHERE before < $1
), gone AS (
    DELETE FROM persisted_query p USING victims v WHERE p.hash = v.hash RETURNING p.bytes
)
UPDATE persisted_query_total SET bytes = bytes - (SELECT coalesce(sum(bytes), 0) FROM gone)
WHERE id = 1
RETURNING bytes"""


@dataclass(slots=True)
class _Entry:
    query: str
    touched: float  # time.monotonic() of the last write of its row by this process


class PersistedQueries:
    """hash → query text: the table for every instance, a byte-bounded LRU per process."""

    def __init__(self, cache_bytes: int, store_bytes: int) -> None:
        self.store_bytes = store_bytes  # 0: this process's cache only
        self.cache: LRUCache = LRUCache(
            maxsize=max(cache_bytes, 1), getsizeof=lambda e: 512 + len(e.query)
        )

    def __len__(self) -> int:
        return len(self.cache)

    async def resolve(self, pg, scope: dict, digest: str, query: str | None) -> str | None:
        """The text of `digest` for a signed-in request (None: unknown). `query`, when
        given, has been checked against the hash: it is registered. `pg` is the request's
        read connection (asyncpg, read-only transaction): the lookup runs there; writes
        are queued in `scope` for `write` once that transaction has ended."""
        now = time.monotonic()
        entry = self.cache.get(digest)
        if query is not None:
            if entry is None or now - entry.touched >= TOUCH_SECONDS:
                self._keep(scope, digest, query, now)
            return query
        if entry is not None:
            if now - entry.touched >= TOUCH_SECONDS:
                self._keep(scope, digest, entry.query, now)
            return entry.query
        if not self.store_bytes:
            return None
        try:
            text = await pg.fetchval(LOOKUP, digest)
        except Exception as error:
            if is_timeout(error) or is_unavailable(error):
                raise  # server.errors.DatabaseFailures answers
            log.exception("persisted query lookup failed; answering not found")
            return None
        if text is None or hashlib.sha256(text.encode()).hexdigest() != digest:
            return None  # unknown (a row whose text does not match is ignored)
        self._keep(scope, digest, text, now)  # renews last_used
        return text

    def _keep(self, scope: dict, digest: str, query: str, now: float) -> None:
        entry = _Entry(query, now)
        if 512 + len(query) <= self.cache.maxsize:
            self.cache[digest] = entry
        if self.store_bytes:
            scope[PENDING_KEY] = (digest, query)

    async def write(self, engine: AsyncEngine, scope: dict) -> None:
        """Register (or renew) what `resolve` queued for this request, on a connection of
        its own (after the read's was given back), evicting past the cap."""
        pending = scope.pop(PENDING_KEY, None)
        if pending is None:
            return
        digest, query = pending
        try:
            async with engine.connect() as conn:
                pg = (await conn.get_raw_connection()).driver_connection
                total = await pg.fetchval(REGISTER, digest, query, ROW_BYTES)
                if total is None:  # known already: renew it
                    await pg.execute(TOUCH, digest)
                elif total > self.store_bytes:
                    excess = total - self.store_bytes * EVICT_TO[0] // EVICT_TO[1]
                    left = await pg.fetchval(EVICT, excess)
                    log.info("persisted queries over %d bytes: evicted to %s", total, left)
        except Exception:
            # The answer does not depend on it; another request registers it again.
            log.warning("storing a persisted query failed", exc_info=True)
