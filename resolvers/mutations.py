"""The shape of every mutation: one transaction; check, validate, write, record, return.

A use case raises `Refused` with one or more user errors; the transaction rolls back and
the payload carries the errors. Nothing half-written ever commits.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers.context import Context
from resolvers.errors import UserErrorCode
from resolvers.rls import set_viewer


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


@contextlib.asynccontextmanager
async def transaction(ctx: Context) -> AsyncIterator[AsyncConnection]:
    """One transaction per mutation; commits on success, rolls back on any exception.
    Its first statement sets the viewer for row-level security."""
    async with ctx.engine.begin() as conn:
        await set_viewer(conn, ctx.viewer)
        yield conn
