"""Import rows: each validated like customerCreate/Update, upserted by a key.

A row is planned in Python first (the write side's validation: names, email, phone in the
row's country, ISO codes, custom field types, card numbers refused), then a batch of
plans is written in one transaction: rows whose key matches a live customer update it
(only what differs, one CUSTOMER_UPDATED event with the changes), others create one. A
rejected row carries its line, column, code and message; it never stops the others
(`on_error="skip"`), or it stops everything and nothing is written (`"abort"`).
`dry_run` plans and checks every row against the database, then rolls back.

This module is the driver: `run_import`, its options and the batches' transactions. The
file is read by resolvers/imports.py, each row planned by resolvers/import_plans.py, and
each batch written by resolvers/import_writer.py (deciding its rows in memory with
resolvers/import_decisions.py), which also holds `ImportResult`, the counts it keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import CustomFieldDefinition
from models.enums import Role
from resolvers.import_plans import Plan, Planner, Rejected
from resolvers.import_writer import ImportResult, Writer
from resolvers.imports import FileRefused, Reader, Row
from resolvers.rls import set_viewer
from resolvers.viewer import Viewer

definition = CustomFieldDefinition.__table__

KEYS = {"reference-id": "reference_id", "email": "email"}


@dataclass(frozen=True)
class ImportOptions:
    key: str = "reference-id"  # or "email"
    on_error: str = "skip"  # or "abort"
    dry_run: bool = False
    mapping: dict[str, str] | None = None
    batch_size: int = 2000  # rows per transaction: a dozen statements whatever the size
    source: str = "import"  # the timeline's `data.source`


def _batches(items: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Abort(Exception):
    """Rolls an abort-on-error or dry-run import back."""


# Called inside each batch's transaction with the rows it rejected: a job stores its
# progress there, so the counters commit with the rows (or not at all).
BatchHook = Callable[[AsyncConnection, "ImportResult", list[Rejected]], Awaitable[None]]


async def run_import(
    engine: AsyncEngine,
    stream: IO[bytes],
    options: ImportOptions,
    *,
    actor_id: int | None = None,
    sales_rep_id: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_batch: BatchHook | None = None,
    skip: int = 0,
    counts: dict[str, int] | None = None,
) -> ImportResult:
    """Import a file; see the module docstring. Raises FileRefused for a file that cannot
    be imported at all (nothing is written then). `skip`: rows already committed by an
    earlier run of the same job (a resumed job starts after them)."""
    if options.key not in KEYS:
        raise FileRefused("BAD_KEY", f"--key is one of {', '.join(KEYS)}.")
    key = KEYS[options.key]
    async with engine.connect() as conn:
        definitions = {
            r.key: r for r in await conn.execute(select(definition).where(~definition.c.archived))
        }
    reader = Reader(stream, mapping=options.mapping, custom_keys=frozenset(definitions))
    result = ImportResult(
        header=reader.columns.header,
        unknown_columns=list(reader.columns.unknown),
        ignored_columns=list(reader.columns.unused),
    )
    planner = Planner(reader.columns, key, definitions)
    writer = Writer(key, options.source, actor_id, sales_rep_id, definitions)
    writer.column_of = planner.column_of
    rows = _after(reader, skip)
    result.rows = skip
    for name, value in (counts or {}).items():  # a resumed job goes on counting
        setattr(result, name, value)

    async def write(conn: AsyncConnection, plans: list[Plan | Rejected]) -> None:
        before = _counts(result), dict(writer.seen), len(result.errors)
        try:
            async with conn.begin_nested():  # the batch fast, unless a race refuses a row
                await writer.write(conn, plans, result)
        except IntegrityError:
            _restore(result, before[0])
            writer.seen = before[1]
            del result.errors[before[2] :]
            writer.careful = True  # this batch row by row, each in a savepoint
            try:
                await writer.write(conn, plans, result)
            finally:
                writer.careful = False
        if on_batch is not None:
            await on_batch(conn, result, writer.rejected)
        if progress:
            progress(len(plans))

    # Row-level security: every transaction names its viewer first. Imports are an
    # admin's (the CLI's operator, or the admin who started the job).
    viewer = Viewer(user_id=actor_id, role=Role.ADMIN)
    whole = options.dry_run or options.on_error == "abort"
    batches = _batches(rows, options.batch_size)
    try:
        if whole:  # one transaction: all or nothing
            async with engine.begin() as conn:
                await set_viewer(conn, viewer)
                async with contextlib.aclosing(_planned(planner, batches)) as planned:
                    async for plans in planned:
                        await write(conn, plans)
                if result.rejected or options.dry_run:
                    raise _Abort
        else:
            async with contextlib.aclosing(_planned(planner, batches)) as planned:
                async for plans in planned:
                    async with engine.begin() as conn:
                        await _begin(conn, viewer)
                        await write(conn, plans)
        result.written = not options.dry_run
    except _Abort:
        result.written = False
    return result


_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def _begin(conn: AsyncConnection, viewer: Viewer) -> None:
    """An import transaction's first statements. Its reads are planned for the tables as
    they are now: an import grows the very tables it reads, and asyncpg's prepared
    statements would otherwise keep a generic plan made while they were empty (a sequential
    scan that, at 20,000 customers, took a second per batch) until autovacuum analyzes."""
    await set_viewer(conn, viewer)
    await conn.execute(_CUSTOM_PLANS)


async def _planned(
    planner: Planner, batches: Iterator[list[Row]]
) -> AsyncIterator[list[Plan | Rejected]]:
    """The batches read and planned one ahead, in a worker thread: reading and validating
    the next batch (pure Python: CSV, phonenumbers, pycountry) runs while PostgreSQL writes
    this one, so the import costs about the slower of the two, not their sum."""

    def plan_next() -> list[Plan | Rejected] | None:
        batch = next(batches, None)
        return None if batch is None else [planner.plan(row) for row in batch]

    pending = asyncio.ensure_future(asyncio.to_thread(plan_next))
    try:
        while (plans := await pending) is not None:
            pending = asyncio.ensure_future(asyncio.to_thread(plan_next))
            yield plans
    finally:
        # Stopped early (an abort, an error): the file is not read again once this returns.
        if not pending.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)


_COUNTS = ("rows", "created", "updated", "unchanged", "rejected")


def _counts(result: ImportResult) -> dict[str, int]:
    return {name: getattr(result, name) for name in _COUNTS}


def _restore(result: ImportResult, counts: dict[str, int]) -> None:
    for name, value in counts.items():
        setattr(result, name, value)


def _after(rows: Iterable[Row], skip: int) -> Iterator[Row]:
    for index, row in enumerate(rows):
        if index >= skip:
            yield row
