"""Import jobs: an import as a row that outlives the process running it.

`customerImportStart` stores the file and its options in `import_job` and runs it in the
background: each batch of rows commits together with the job's counters and its rejected
rows (`import_job_error`), so a job a stopped process left RUNNING resumes after its last
committed batch (`resume_jobs`, at start-up). Imports take one advisory lock: they run one
at a time, never two racing on one email.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import CustomFieldDefinition, ImportJob, ImportJobError
from models.enums import JobStatus
from resolvers import jobs
from resolvers.context import Context
from resolvers.import_plans import Rejected
from resolvers.import_rows import ImportOptions, ImportResult, run_import
from resolvers.imports import FileRefused, error_report_header, error_report_row
from resolvers.pagination import Ordering, Page, PageArgs, paginate
from resolvers.telemetry import Progress

definition = CustomFieldDefinition.__table__

job_table = ImportJob.__table__
job_error = ImportJobError.__table__
IMPORT_LOCK = 0x1A9077  # advisory lock: imports run one at a time (no two racing on an email)
log = logging.getLogger(__name__)


def options_json(options: ImportOptions) -> dict[str, Any]:
    return {
        "key": options.key,
        "onError": options.on_error,
        "dryRun": options.dry_run,
        "mapping": options.mapping,
    }


def options_of(data: dict[str, Any], job_id: int) -> ImportOptions:
    return ImportOptions(
        key=data["key"],
        on_error=data["onError"],
        dry_run=data["dryRun"],
        mapping=data.get("mapping"),
        source=f"import:{job_id}",
    )


async def create_job(
    engine: AsyncEngine,
    *,
    owner_id: int | None,
    file_name: str,
    data: bytes,
    options: ImportOptions,
) -> int:
    async with engine.begin() as conn:
        return (
            await conn.execute(
                insert(job_table)
                .values(
                    owner_id=owner_id,
                    status=JobStatus.QUEUED,
                    file_name=file_name,
                    source=data,
                    options=options_json(options),
                )
                .returning(job_table.c.id)
            )
        ).scalar_one()


async def run_job(engine: AsyncEngine, job_id: int) -> None:
    """Run (or resume) a job to its end: SUCCEEDED with its counts, or FAILED with why.
    Every batch commits with the job's counters and its rejected rows."""
    async with engine.connect() as lock_conn:
        # Held for the whole run, by a transaction left open on its own connection: one
        # import at a time. Transaction-scoped, so a pooler in transaction mode (PgBouncer)
        # keeps it on one server connection and its end releases it.
        await lock_conn.execute(select(func.pg_advisory_xact_lock(IMPORT_LOCK)))
        try:
            await _run_job(engine, job_id)
        finally:
            await lock_conn.rollback()  # releases the lock


async def _run_job(engine: AsyncEngine, job_id: int) -> None:
    async with engine.begin() as conn:
        row = await jobs.claim(conn, job_table, job_id)
    if row is None:
        return  # finished meanwhile
    options = options_of(row.options, job_id)
    whole = options.dry_run or options.on_error == "abort"
    skip = 0 if whole else row.rows_done

    outcomes = ("created", "updated", "unchanged", "rejected")
    progress = Progress("import", **{n: 0 if whole else getattr(row, n) for n in outcomes})

    async def store(conn: AsyncConnection, result: ImportResult, rejected: list[Rejected]):
        if whole:
            return  # all or nothing: counted once at the end
        await _save_progress(conn, job_id, result, rejected)
        progress.report(**{n: getattr(result, n) for n in outcomes})

    try:
        result = await run_import(
            engine,
            io.BytesIO(row.source or b""),
            options,
            actor_id=row.owner_id,
            on_batch=store,
            skip=skip,
            counts=None
            if whole
            else {n: getattr(row, n) for n in ("created", "updated", "unchanged", "rejected")},
        )
    except FileRefused as refused:
        await _finish(engine, job_id, JobStatus.FAILED, f"{refused.message} ({refused.code})")
        return
    except Exception:
        log.exception("import job %s failed", job_id)
        await _finish(engine, job_id, JobStatus.FAILED, "Internal error; see the service log.")
        return
    if whole:
        async with engine.begin() as conn:
            await _save_progress(conn, job_id, result, result.errors)
        written = outcomes if result.written else ("rejected",)
        progress.report(**{n: getattr(result, n) for n in written})
    message = None
    if not result.written:
        message = (
            "A dry run: nothing was written."
            if options.dry_run
            else ("Rows were rejected and onError is ABORT: nothing was written.")
        )
    await _finish(engine, job_id, JobStatus.SUCCEEDED, message)


async def _save_progress(
    conn: AsyncConnection, job_id: int, result: ImportResult, rejected: list[Rejected]
) -> None:
    await conn.execute(
        update(job_table)
        .where(job_table.c.id == job_id)
        .values(
            rows_done=result.rows,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            rejected=result.rejected,
            header=result.header,
            unknown_columns=result.unknown_columns,
            ignored_columns=result.ignored_columns,
        )
    )
    if rejected:
        await conn.execute(
            pg_insert(job_error)
            .values(
                [
                    {
                        "job_id": job_id,
                        "line": e.line,
                        "column": e.column,
                        "code": e.code,
                        "message": e.message,
                        "raw": e.raw,
                    }
                    for e in rejected
                ]
            )
            .on_conflict_do_nothing()
        )


async def _finish(engine: AsyncEngine, job_id: int, status: JobStatus, message: str | None):
    # The file is not kept once the job is done.
    values = {"status": status, "message": message, "finished_at": func.now(), "source": None}
    async with engine.begin() as conn:
        await conn.execute(update(job_table).where(job_table.c.id == job_id).values(**values))


async def resume_jobs(engine: AsyncEngine) -> list[int]:
    """Jobs a stopped process left QUEUED or RUNNING: run them again (after their last
    committed batch). Called at start-up; returns their ids."""
    ids = await jobs.unfinished(engine, job_table)
    for job_id in ids:
        await run_job(engine, job_id)
    return ids


# --- reading jobs (GraphQL) ----------------------------------------------------------------

JOBS_NEWEST_FIRST = Ordering((job_table.c.id,), descending=True)
ERRORS_IN_FILE_ORDER = Ordering((job_error.c.line,))


def visible_jobs(ctx: Context) -> Select:
    """An admin sees every job; anyone else their own (there are none yet: admins import)."""
    return jobs.visible(ctx, job_table, [c for c in job_table.c if c.name != "source"])


async def job_by_id(ctx: Context, job_id: int) -> Any:
    rows = await ctx.rows(visible_jobs(ctx).where(job_table.c.id == job_id))
    return rows[0] if rows else None


async def job_page(ctx: Context, args: PageArgs) -> tuple[Page, Select]:
    stmt = visible_jobs(ctx)
    paged, to_page = paginate(stmt, JOBS_NEWEST_FIRST, args)
    return to_page(await ctx.rows(paged)), stmt


async def error_page(ctx: Context, job_id: int, args: PageArgs) -> tuple[Page, Select]:
    stmt = select(job_error).where(job_error.c.job_id == job_id)
    paged, to_page = paginate(stmt, ERRORS_IN_FILE_ORDER, args)
    return to_page(await ctx.rows(paged)), stmt


async def error_rows(engine: AsyncEngine, job_id: int) -> AsyncIterator[Any]:
    """Every rejected row of a job, in file order (streamed: any number of them)."""
    async with engine.connect() as conn:
        result = await conn.stream(
            select(job_error)
            .where(job_error.c.job_id == job_id)
            .order_by(job_error.c.line)
            .execution_options(yield_per=1000)
        )
        async for row in result:
            yield row


async def custom_keys(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(definition.c.key).where(~definition.c.archived))
        return [r[0] for r in rows]


async def error_csv(engine: AsyncEngine, job_id: int, header: list[str]) -> AsyncIterator[str]:
    """The error report as CSV text (resolvers.imports.error_report_row), streamed."""
    import csv

    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(error_report_header(header))
    async for e in error_rows(engine, job_id):
        out.writerow(error_report_row(len(header), e))
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
