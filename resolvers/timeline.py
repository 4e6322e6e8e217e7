"""Timeline: reads, live delivery, and the one function every mutation uses to record.

Ordering guarantee: events are inserted after a transaction-scoped advisory lock, so
event-writing transactions commit one after another and event ids are in commit order.
That is what makes "every event with id > cursor" a gap-free replay for subscriptions
(without it a transaction holding id 10 could commit after one holding id 11). The lock
is held from the event insert to commit. In a mutation's transaction (`stage`) the events
wait in this process and go with the COMMIT message (`commit`): the lock then covers only
the server's own work, never a round trip to a busy worker, which had serialised every
mutation behind the slowest event loop. Elsewhere `record` writes at once: record last.
"""

import asyncio
import contextlib
import logging
import secrets
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from sqlalchemy import Row, Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from models import CustomerSalesChannel, TimelineEvent
from resolvers.children import visible
from resolvers.context import Context
from resolvers.errors import database_unavailable
from resolvers.pagination import Ordering
from resolvers.relations import ChildConnection

log = logging.getLogger(__name__)

timeline_event = TimelineEvent.__table__
link = CustomerSalesChannel.__table__
NEWEST_FIRST = Ordering((timeline_event.c.id,), descending=True)
# Customer.timeline, declared once (resolvers/relations.py).
EVENTS = ChildConnection(timeline_event, NEWEST_FIRST)
OLDEST_FIRST = Ordering((timeline_event.c.id,))
CHANNEL = "customer_graph_timeline"
ORDER_LOCK = 0x7C6A11E  # advisory lock key: "timeline commit order"


# Events a mutation's transaction (resolvers.mutations.transaction) records, kept here until
# its COMMIT: written with it, in the same message. Beside the connection, like metrics'.
_STAGED: weakref.WeakKeyDictionary[AsyncConnection, list[dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


async def record(
    conn: AsyncConnection,
    customer_id: int,
    kind: str,
    summary: str,
    *,
    actor_id: int | None,
    data: dict[str, Any] | None = None,
    at_once: bool = False,
) -> int | None:
    """Append a timeline event inside the caller's transaction (it commits with the change)
    and notify listeners; a rolled-back transaction delivers nothing (NOTIFY is transactional).

    In a mutation's transaction the event is written with its COMMIT (None is returned);
    elsewhere, or `at_once` (the caller needs the id), it is written now and the order lock
    is held from here to commit: then record events last in a use case."""
    event = {
        "customer_id": customer_id,
        "kind": kind,
        "summary": summary,
        "actor_id": actor_id,
        "data": data or {},
    }
    ids = await record_many(conn, [event], at_once=at_once)
    return ids[0] if ids else None


async def record_many(
    conn: AsyncConnection, events: list[dict[str, Any]], *, at_once: bool = False
) -> list[int] | None:
    """record() for many events at once (each: customer_id, kind, summary, actor_id, data),
    in order. Written now (their ids) unless staged for the transaction's COMMIT (None):
    the order lock, the INSERT and the NOTIFYs are then one statement."""
    if not events:
        return []
    staged = _STAGED.get(conn)
    if staged is not None and not at_once:
        staged.extend(events)
        return None
    rows = (await conn.execute(_RECORD, {"key": ORDER_LOCK, "events": _json(events)})).all()
    return [row[0] for row in rows]


def stage(conn: AsyncConnection) -> None:
    """From now on, record() keeps this transaction's events for `commit`."""
    _STAGED[conn] = []


def unstage(conn: AsyncConnection) -> None:
    _STAGED.pop(conn, None)


async def commit(conn: AsyncConnection, pg: Any) -> None:
    """COMMIT the transaction on `pg` (its asyncpg connection), with its staged events: they
    travel as a transaction-local setting first, then the order lock, the INSERT, the
    NOTIFYs and COMMIT are one simple-protocol message. The lock is thus held only while the
    server writes and commits, never while this process is busy with other requests."""
    events = _STAGED.pop(conn, None)
    if events:
        await pg.execute(_flush_and_commit(_json(events)))
    else:
        await pg.execute("COMMIT")


def _json(events: list[dict[str, Any]]) -> str:
    return orjson.dumps(
        [{**e, "data": e.get("data") or {}} for e in events], option=orjson.OPT_NON_STR_KEYS
    ).decode()


# The events as one JSON array, in order. The lock is a MATERIALIZED CTE the INSERT's rows
# are joined to: it is taken before the first id is drawn.
_INSERT_EVENTS = (
    "WITH ordered AS MATERIALIZED (SELECT pg_advisory_xact_lock({key})),"
    " event AS (INSERT INTO timeline_event (customer_id, kind, summary, actor_id, data)"
    " SELECT (e->>'customer_id')::bigint, e->>'kind', e->>'summary',"
    " (e->>'actor_id')::bigint, e->'data'"
    " FROM ordered, jsonb_array_elements({events}) WITH ORDINALITY AS s(e, n)"
    " ORDER BY s.n RETURNING id, customer_id)"
    " SELECT id, pg_notify('" + CHANNEL + "', id || ',' || customer_id) FROM event ORDER BY id"
)
_RECORD = text(_INSERT_EVENTS.format(key=":key", events="CAST(:events AS jsonb)"))


def _flush_and_commit(events: str) -> str:
    """The order lock, the INSERT, the NOTIFYs and COMMIT as one simple-protocol message,
    the events (client text among them) a dollar-quoted literal whose tag they do not
    contain: nothing in them can end the literal. (They travelled as a transaction-local
    setting before, which cost a round trip of its own.)"""
    tag = "cg"
    while f"${tag}$" in events:
        tag = f"cg{secrets.token_hex(4)}"
    literal = f"${tag}${events}${tag}$::jsonb"
    return _INSERT_EVENTS.format(key=ORDER_LOCK, events=literal) + "; COMMIT"


def events_after(
    ctx: Context,
    after_id: int,
    *,
    customer_id: int | None = None,
    kinds: Sequence[str] | None = None,
    channel_ids: Sequence[int] | None = None,
) -> Select:
    """Visible events with id > after_id, oldest first (the subscription replay and catch-up)."""
    stmt = visible(ctx, timeline_event).where(timeline_event.c.id > after_id)
    if customer_id is not None:
        stmt = stmt.where(timeline_event.c.customer_id == customer_id)
    if kinds:
        stmt = stmt.where(timeline_event.c.kind.in_(list(kinds)))
    if channel_ids:
        in_channels = select(link.c.customer_id).where(
            link.c.sales_channel_id.in_(list(channel_ids))
        )
        stmt = stmt.where(timeline_event.c.customer_id.in_(in_channels))
    return stmt.order_by(timeline_event.c.id)


async def latest_event_id(ctx: Context) -> int:
    rows = await ctx.rows(select(func.coalesce(func.max(timeline_event.c.id), 0)))
    return rows[0][0]


async def follow(
    ctx: Context,
    sub: Any,
    after_id: int,
    *,
    batch: int = 200,
    replay: bool = False,
    **filters: Any,
) -> AsyncIterator[Any]:
    """Events with id > after_id, in id order, forever: replay first, then live ones.

    Each pass reads what is committed (id order = commit order, see `record`), so an event
    notified while we read is either in this read or in the next one: no gap, no repeat.
    `replay`: old events come from a read replica while there is one (its committed events
    are a prefix of the primary's), then the primary carries on from the last one read.
    """
    last = after_id
    replica = ctx.read_replica() if replay and ctx.read_replica is not None else None
    while True:
        if sub.overflowed:
            raise SlowConsumerError(len(sub.pending))
        if sub.lost:
            raise ListenLost()
        sub.wake.clear()
        horizon = sub.pending[-1] if sub.pending else 0
        rows = await _read(ctx, sub, events_after(ctx, last, **filters).limit(batch), replica)
        for row in rows:
            last = row.id
            yield row
        if len(rows) == batch:
            sub.caught_up_to(last)
            continue
        if replica is not None:  # the replica's part is replayed; the primary has the rest
            replica = None
            continue
        sub.caught_up_to(max(horizon, last))
        if not sub.pending:
            await sub.wake.wait()


async def _read(ctx: Context, sub: Any, stmt: Select, replica: Any = None) -> Sequence[Row]:
    """One pass's rows, read again while the database restarts: each attempt takes a new
    pooled connection, and the hub's wake-up after it listens again retries at once.
    ListenLost when the hub gives up, or after `sub.retry_seconds` of failures. On a
    `replica` (an engine) once: should it fail, the primary answers."""
    if replica is not None:
        try:
            return await ctx.fresh(replica).rows(stmt)
        except Exception as exc:  # down, or a conflict with recovery: the primary answers
            log.info("timeline replay on a replica failed, reading the primary: %r", exc)
    loop = asyncio.get_running_loop()
    deadline = None
    delay = 0.05
    while True:
        try:
            return await ctx.fresh().rows(stmt)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            deadline = deadline or loop.time() + sub.retry_seconds
            if sub.lost or loop.time() >= deadline:
                raise ListenLost() from exc
            log.info("timeline read failed, retrying: %r", exc)
        # Cleared before waiting: the retry reads everything committed by then anyway.
        sub.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sub.wake.wait(), delay)
        delay = min(delay * 2, 1.0)


# WebSocket close code "Service Restart": the client reconnects and resumes with `since`.
CLOSE_RECONNECT = 1012


class TooManySubscriptions(Exception):
    """A user already has the most live subscriptions allowed (every instance counted)."""


class ListenLost(Exception):
    """The live timeline could not reach the database again in time (server.notify)."""

    def __init__(self) -> None:
        super().__init__("The live timeline lost its database connection; reconnect with `since`.")


class SlowConsumerError(Exception):
    def __init__(self, behind: int) -> None:
        super().__init__(f"Slow consumer: {behind} events behind; reconnect with `since`.")
