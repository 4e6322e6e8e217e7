"""What the background job tables share (import jobs, bulk jobs): the jobs a stopped
process left unfinished, and who sees a job."""

from __future__ import annotations

from sqlalchemy import Column, Select, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from models.enums import JobStatus, Role
from resolvers.context import Context


async def unfinished(engine: AsyncEngine, table: Table) -> list[int]:
    """Ids of the jobs left QUEUED or RUNNING, oldest first (to run again at start-up)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(table.c.id)
            .where(table.c.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
            .order_by(table.c.id)
        )
        return [r[0] for r in rows]


def visible(ctx: Context, table: Table, columns: list[Column] | None = None) -> Select:
    """An admin sees every job; anyone else their own."""
    stmt = select(*(columns or table.c))
    if ctx.viewer.role is Role.ADMIN:
        return stmt
    return stmt.where(table.c.owner_id == ctx.viewer.user_id)
