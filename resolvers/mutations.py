"""The shape of every mutation: one transaction; check, validate, write, record, return.

A use case raises `Refused` with one or more user errors; the transaction rolls back and
the payload carries the errors. Nothing half-written ever commits.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from models.enums import Role
from resolvers import timeline
from resolvers.context import Context
from resolvers.errors import UserErrorCode
from resolvers.viewer import Viewer


@dataclass(frozen=True, slots=True)
class Problem:
    field: list[str] | None
    code: UserErrorCode
    message: str


class Refused(Exception):
    def __init__(self, *problems: Problem) -> None:
        super().__init__(problems[0].message if problems else "refused")
        self.problems = list(problems)

    @classmethod
    def one(cls, field: str | list[str] | None, code: UserErrorCode, message: str) -> Refused:
        path = [field] if isinstance(field, str) else field
        return cls(Problem(path, code, message))


def begin_as(viewer: Viewer) -> str:
    """BEGIN and row-level security's viewer in one simple-protocol round trip. Both values
    are ours (an id, a Role), never client text."""
    who = "NULL" if viewer.user_id is None else str(int(viewer.user_id))
    role = "NULL" if viewer.role is None else f"'{Role(viewer.role).value}'"
    return f"BEGIN; SELECT cg_set_viewer({who}, {role})"


@contextlib.asynccontextmanager
async def transaction(ctx: Context) -> AsyncIterator[AsyncConnection]:
    """One transaction per mutation; commits on success, rolls back on any exception.

    Driven by hand on an autocommit connection, to save round trips: BEGIN and the viewer
    for row-level security are one message, and so are the timeline events the mutation
    recorded and COMMIT (timeline.commit), so the timeline's order lock is held by the
    server alone, never across a round trip to this process. SQLAlchemy's own commit and
    rollback still run (no SQL in autocommit) so its events (metrics) see the outcome."""
    async with ctx.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        pg = (await conn.get_raw_connection()).driver_connection
        try:
            await pg.execute(begin_as(ctx.viewer))
            timeline.stage(conn)
            yield conn
            await timeline.commit(conn, pg)
        except BaseException:
            await _roll_back(conn, pg)
            raise
        finally:
            timeline.unstage(conn)
        await conn.commit()


async def _roll_back(conn: AsyncConnection, pg: Any) -> None:
    """ROLLBACK, or drop a connection that cannot: it never returns to the pool inside a
    transaction (autocommit: the pool's own reset would not end it)."""
    try:
        if not pg.is_closed() and pg.is_in_transaction():
            await pg.execute("ROLLBACK")
        await conn.rollback()
    except Exception:
        await conn.invalidate()
