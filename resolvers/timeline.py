"""Timeline: reads, and the one function every mutation uses to record an event."""

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from models import TimelineEvent
from resolvers.pagination import Ordering

timeline_event = TimelineEvent.__table__
NEWEST_FIRST = Ordering((timeline_event.c.id,), descending=True)


async def record(
    conn: AsyncConnection,
    customer_id: int,
    kind: str,
    summary: str,
    *,
    actor_id: int | None,
    data: dict[str, Any] | None = None,
) -> int:
    """Append a timeline event inside the caller's transaction (it commits with the change)."""
    stmt = (
        insert(timeline_event)
        .values(
            customer_id=customer_id, kind=kind, summary=summary, actor_id=actor_id, data=data or {}
        )
        .returning(timeline_event.c.id)
    )
    return (await conn.execute(stmt)).scalar_one()
