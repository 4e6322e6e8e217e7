"""What the background job tables share (import jobs, bulk jobs): the jobs a stopped
process left unfinished, and who sees a job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Select, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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


async def claim(conn: AsyncConnection, table: Table, job_id: int) -> Any:
    """Mark a QUEUED or RUNNING job RUNNING (keeping when it first started) and return its
    row; None when it has ended meanwhile."""
    stmt = (
        update(table)
        .where(table.c.id == job_id, table.c.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        .values(status=JobStatus.RUNNING, started_at=func.coalesce(table.c.started_at, func.now()))
        .returning(table)
    )
    return (await conn.execute(stmt)).first()


def visible(ctx: Context, table: Table, columns: list[Column] | None = None) -> Select:
    """An admin sees every job; anyone else their own."""
    stmt = select(*(columns or table.c))
    if ctx.viewer.role is Role.ADMIN:
        return stmt
    return stmt.where(table.c.owner_id == ctx.viewer.user_id)
