"""Bulk updates: one change (sales rep, status, custom fields) applied to many customers,
as a job that outlives the process running it.

`start` (the mutation, one transaction) checks the input with customerUpdate's own code
(`customer_mutations.clean`/`check_rep`, `custom_field_mutations.check_values`) and stores
the job; `run_job` then applies it in batches of BATCH_SIZE customers in id order. Each
batch is one transaction: its customers locked (`writes.lock_each`, the scope and merge
rules of every customer write), changed, one CUSTOMER_UPDATED event per changed customer,
and the job's counters, rejections and cursor (`last_customer_id`), so a batch commits
whole or not at all and a job a stopped process left RUNNING resumes after its last
committed batch (`resume_jobs`, at start-up). Bulk jobs take one advisory lock: two never
run at once, so two jobs never race on the same customers.

Scope: the job runs as its owner (row-level security included). A filter matches only
customers the owner sees; ids of customers they do not see are rejected NOT_FOUND, exactly
as customerUpdate answers them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import AppUser, BulkJob, BulkJobError
from models.enums import CustomerStatus, JobStatus, Role
from resolvers import jobs
from resolvers import tags as tag_q
from resolvers.context import Context
from resolvers.custom_field_mutations import check_values, write_values
from resolvers.custom_fields import value
from resolvers.customer_mutations import CustomerChanges, change_text, changes_of, check_rep, clean
from resolvers.customers import customer
from resolvers.errors import CodedError, UserErrorCode
from resolvers.exports import criteria_json, criteria_of
from resolvers.mutations import Problem, Refused, transaction
from resolvers.pagination import Ordering, Page, PageArgs, paginate
from resolvers.search import Criteria, filtered_customers
from resolvers.telemetry import Progress, job_rows
from resolvers.timeline import record_many
from resolvers.viewer import Viewer
from resolvers.writes import lock_each

log = logging.getLogger(__name__)

job_table = BulkJob.__table__
job_error = BulkJobError.__table__
user = AppUser.__table__

BULK_LOCK = 0xB0B1C  # advisory lock: bulk jobs run one at a time (never two on a customer)
BATCH_SIZE = 500  # customers per transaction
ERRORS_PER_INSERT = 1000  # 4 parameters a row; PostgreSQL takes at most 32,767 per statement
LOCK_POLL_SECONDS = 0.2  # how often a queued job tries for the lock
MAX_IDS = 10_000  # by ids; more customers than that are chosen by a filter
# customerArchive/customerRestore's transitions; MERGED is customerMerge's alone.
SETTABLE_STATUSES = (CustomerStatus.ACTIVE, CustomerStatus.ARCHIVED)
SET_PATH = ["input", "set"]
CUSTOM_PATH = [*SET_PATH, "customFields"]


@dataclass
class BulkChanges:
    """What a bulk update sets: customer columns (sales_rep_id, status; absent = unchanged,
    None = clear) and custom field values by key (None clears)."""

    values: dict[str, Any] = field(default_factory=dict)
    custom_fields: list[tuple[str, str | None]] = field(default_factory=list)
    tags_add: list[str] = field(default_factory=list)  # checked by resolvers.tags.clean
    tags_remove: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.values or self.custom_fields or self.tags_add or self.tags_remove)


def _changes_json(changes: BulkChanges) -> dict[str, Any]:
    values = {k: change_text(v) if k == "status" else v for k, v in changes.values.items()}
    return {
        "values": values,
        "customFields": [list(p) for p in changes.custom_fields],
        "tagsAdd": changes.tags_add,
        "tagsRemove": changes.tags_remove,
    }


def _changes_of(data: dict[str, Any]) -> BulkChanges:
    values = dict(data["values"])
    if values.get("status") is not None:
        values["status"] = CustomerStatus(values["status"])
    return BulkChanges(
        values,
        [(k, v) for k, v in data["customFields"]],
        data.get("tagsAdd", []),
        data.get("tagsRemove", []),
    )


# --- starting a job (the mutation) ---------------------------------------------------------


async def start(
    ctx: Context,
    *,
    ids: list[int] | None,
    criteria: Criteria | None,
    changes: BulkChanges,
    error_policy: str = "skip",
) -> int:
    """Check the input and store the job (QUEUED), in one transaction: bad input refuses
    and writes nothing. Returns the job's id; `run_job` does the work."""
    if ctx.viewer.role not in (Role.ADMIN, Role.SALES_REP):
        raise Refused(
            Problem(None, UserErrorCode.FORBIDDEN, "Only staff update customers in bulk.")
        )
    if changes.is_empty():
        raise Refused(
            Problem(SET_PATH, UserErrorCode.REQUIRED, "Set something: salesRepId, status, …")
        )
    if "status" in changes.values and changes.values["status"] not in SETTABLE_STATUSES:
        raise Refused(
            Problem(
                [*SET_PATH, "status"],
                UserErrorCode.INVALID,
                "Set ACTIVE or ARCHIVED (customers are merged by customerMerge).",
            )
        )
    if ids is not None:
        ids = sorted(set(ids))
        if not ids:
            raise Refused(
                Problem(["input", "customers", "ids"], UserErrorCode.REQUIRED, "Give some ids.")
            )
        if len(ids) > MAX_IDS:
            raise Refused(
                Problem(
                    ["input", "customers", "ids"],
                    UserErrorCode.INVALID,
                    f"At most {MAX_IDS:,} ids: choose more customers with a filter.",
                )
            )
    values = clean(CustomerChanges(dict(changes.values)))
    tags_add = tag_q.clean(changes.tags_add, [*SET_PATH, "tagsAdd"])
    tags_remove = tag_q.clean(changes.tags_remove, [*SET_PATH, "tagsRemove"])
    async with transaction(ctx) as conn:
        await _check_rep(conn, ctx, values)
        checked = await check_values(conn, changes.custom_fields, CUSTOM_PATH)
        for i, (d, raw, _) in enumerate(checked):
            if raw is None and d.required:  # customerClearCustomField's rule
                raise Refused(
                    Problem(
                        [*CUSTOM_PATH, str(i), "value"],
                        UserErrorCode.REQUIRED,
                        f"{d.label} is required.",
                    )
                )
        if criteria is not None:
            base = await _matching(ctx, criteria, ["input", "customers", "filter"])
            total = (
                await conn.execute(
                    select(func.count()).select_from(
                        base.with_only_columns(customer.c.id).order_by(None).subquery()
                    )
                )
            ).scalar_one()
            selection: dict[str, Any] = {"criteria": criteria_json(criteria)}
        else:
            assert ids is not None
            total = len(ids)
            selection = {"ids": ids}
        return (
            await conn.execute(
                insert(job_table)
                .values(
                    owner_id=ctx.viewer.user_id,
                    status=JobStatus.QUEUED,
                    selection=selection,
                    changes=_changes_json(
                        BulkChanges(values, changes.custom_fields, tags_add, tags_remove)
                    ),
                    error_policy=error_policy,
                    total=total,
                )
                .returning(job_table.c.id)
            )
        ).scalar_one()


async def _check_rep(conn: AsyncConnection, ctx: Context, values: dict[str, Any]) -> None:
    """customerUpdate's rule, pointed at this input's field."""
    try:
        await check_rep(conn, ctx, values)
    except Refused as refused:
        p = refused.problems[0]
        raise Refused(Problem([*SET_PATH, "salesRepId"], p.code, p.message)) from None


async def _matching(ctx: Context, criteria: Criteria, path: list[str]) -> Select:
    try:
        return await filtered_customers(ctx, criteria)
    except CodedError as exc:
        raise Refused(Problem(path, UserErrorCode.INVALID, exc.message)) from None


# --- running a job -------------------------------------------------------------------------


@dataclass(frozen=True)
class _JobSettings:
    """What a Context needs of settings; a job reads none of them."""

    search_cap: int = 0
    max_upload_bytes: int = 0
    debug: bool = False


@dataclass
class _Counts:
    done: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: int = 0
    last_customer_id: int = 0


class _AbortAll(Exception):
    """Rolls an ABORT job's one transaction back: some customer was rejected."""


async def run_job(engine: AsyncEngine, job_id: int) -> None:
    """Run (or resume) a job to its end: SUCCEEDED with its counts, or FAILED with why."""
    while True:
        async with engine.connect() as lock_conn:
            # Held for the whole run, by a transaction left open on its own connection: one
            # bulk job at a time. Transaction-scoped, so a pooler in transaction mode
            # (PgBouncer) keeps it on one server connection and its end releases it. A job
            # waiting for it holds no pooled connection (several queued jobs would).
            lock = select(func.pg_try_advisory_xact_lock(BULK_LOCK))
            if (await lock_conn.execute(lock)).scalar():
                try:
                    await _run_job(engine, job_id)
                finally:
                    await lock_conn.rollback()  # releases the lock
                return
            await lock_conn.rollback()
        await asyncio.sleep(LOCK_POLL_SECONDS)


async def _run_job(engine: AsyncEngine, job_id: int) -> None:
    async with engine.begin() as conn:
        job = await jobs.claim(conn, job_table, job_id)
        owner = None
        if job is not None and job.owner_id is not None:
            owner = (
                await conn.execute(
                    select(user.c.role).where(user.c.id == job.owner_id, user.c.is_active)
                )
            ).first()
    if job is None:
        return  # finished meanwhile
    if owner is None or owner.role not in (Role.ADMIN, Role.SALES_REP):
        message = "Its owner no longer exists or may no longer update customers."
        await _finish(engine, job_id, JobStatus.FAILED, message)
        return
    # The owner's current role: a rep's job stays within their customers of today.
    ctx = Context(engine=engine, settings=_JobSettings(), viewer=Viewer(job.owner_id, owner.role))
    try:
        if job.error_policy == "abort":
            message = await _run_whole(ctx, job)
        else:
            message = await _run_batches(ctx, job)
    except Refused as refused:  # the filter no longer reads (a channel deleted meanwhile)
        await _finish(engine, job_id, JobStatus.FAILED, refused.problems[0].message)
        return
    except Exception:
        log.exception("bulk job %s failed", job_id)
        await _finish(engine, job_id, JobStatus.FAILED, "Internal error; see the service log.")
        return
    status = JobStatus.FAILED if message else JobStatus.SUCCEEDED
    await _finish(engine, job_id, status, message)


async def _run_batches(ctx: Context, job: Any) -> str | None:
    """errorPolicy SKIP: a transaction per batch, committed with the job's counters."""
    counts = _Counts(
        job.done, job.changed, job.unchanged, job.rejected, last_customer_id=job.last_customer_id
    )
    changes = _changes_of(job.changes)
    base = await _base(ctx, job)
    progress = Progress("bulk", **_outcomes(counts))
    while True:
        async with transaction(ctx) as conn:
            done = await _batch(conn, ctx, job, base, changes, counts)
            if done is None:
                return None  # no customer left
            rejected, events = done
            await _save(conn, job.id, counts, rejected)
            await record_many(conn, events)  # last: the timeline's lock is held until commit
        progress.report(**_outcomes(counts))


def _outcomes(counts: _Counts) -> dict[str, int]:
    return {"changed": counts.changed, "unchanged": counts.unchanged, "rejected": counts.rejected}


async def _run_whole(ctx: Context, job: Any) -> str | None:
    """errorPolicy ABORT: every batch in one transaction, rolled back if any customer is
    rejected (each rejection is reported)."""
    counts = _Counts()
    changes = _changes_of(job.changes)
    base = await _base(ctx, job)
    errors: list[tuple[int, Problem]] = []
    events: list[dict[str, Any]] = []
    try:
        async with transaction(ctx) as conn:
            while (done := await _batch(conn, ctx, job, base, changes, counts)) is not None:
                errors += done[0]
                events += done[1]
            if errors:
                raise _AbortAll
            await _save(conn, job.id, counts, [])
            # Once, at the end: the timeline's commit-order lock, taken by the first event
            # written, would otherwise hold every other writer's events for the whole job.
            await record_many(conn, events)
    except _AbortAll:
        async with ctx.engine.begin() as conn:
            await _save(conn, job.id, _Counts(done=counts.done, rejected=counts.rejected), errors)
        job_rows("bulk", "rejected", counts.rejected)
        return (
            f"{counts.rejected} customer(s) rejected and errorPolicy is ABORT: nothing was written."
        )
    Progress("bulk").report(**_outcomes(counts))
    return None


async def _base(ctx: Context, job: Any) -> Select | None:
    """The job's filter as a select (None: chosen by ids), checked again now."""
    if "criteria" not in job.selection:
        return None
    return await _matching(ctx, criteria_of(job.selection["criteria"]), ["filter"])


async def _batch(
    conn: AsyncConnection,
    ctx: Context,
    job: Any,
    base: Select | None,
    changes: BulkChanges,
    counts: _Counts,
) -> tuple[list[tuple[int, Problem]], list[dict[str, Any]]] | None:
    """The next batch of customers after counts.last_customer_id, changed in `conn`;
    returns its rejections and the events to record, or None when no customer is left."""
    after = counts.last_customer_id
    if base is None:
        ids = [i for i in job.selection["ids"] if i > after][:BATCH_SIZE]
    else:
        # Locked while matched: a customer changed meanwhile is matched against its new row.
        stmt = (
            base.with_only_columns(customer.c.id)
            .where(customer.c.id > after)
            .order_by(customer.c.id)
            .limit(BATCH_SIZE)
            .with_for_update(of=customer)
        )
        ids = [r[0] for r in await conn.execute(stmt)]
    if not ids:
        return None
    rows = await lock_each(conn, ctx, ids)
    rejected: list[tuple[int, Problem]] = []
    values = changes.values
    try:  # checked again for each batch: a sales rep or a custom field may be gone meanwhile
        await _check_rep(conn, ctx, values)
        checked = await check_values(conn, changes.custom_fields, CUSTOM_PATH)
    except Refused as refused:
        rejected = [(cid, refused.problems[0]) for cid in ids]
        counts.done += len(ids)
        counts.rejected += len(ids)
        counts.last_customer_id = ids[-1]
        return rejected, []
    current = await _custom_values(conn, [i for i in ids if not isinstance(rows[i], Problem)])
    tags_add = dict(await tag_q.keyed(conn, changes.tags_add))
    tags_remove = {k for k, _ in await tag_q.keyed(conn, changes.tags_remove)}
    new_tags: list[dict[str, Any]] = []
    changed: list[int] = []
    events: list[dict[str, Any]] = []
    for cid in ids:
        row = rows[cid]
        if isinstance(row, Problem):
            rejected.append((cid, row))
            continue
        diff: dict[str, Any] = changes_of(row, values)
        tags, added, removed = tag_q.merged(
            dict(zip(row.tag_keys, row.tags, strict=True)), tags_add, tags_remove
        )
        if added or removed:
            if len(tags) > tag_q.MAX_PER_CUSTOMER:
                rejected.append(
                    (
                        cid,
                        Problem(
                            [*SET_PATH, "tagsAdd"],
                            UserErrorCode.INVALID,
                            tag_q.too_many(row.number, tags),
                        ),
                    )
                )
                continue
            diff["tags"] = {"old": list(row.tags), "new": tags}
        custom = [c for c in checked if _differs(current.get((cid, c[0].id)), c[2])]
        if custom:
            try:  # a savepoint: a customer refused here leaves nothing behind
                async with conn.begin_nested():
                    await write_values(conn, cid, [], CUSTOM_PATH, checked=custom)
            except Refused as refused:
                rejected.append((cid, refused.problems[0]))
                continue
            for d, raw, _ in custom:
                old = current.get((cid, d.id))
                diff[f"customFields.{d.key}"] = {"old": _stored_text(old), "new": raw}
        if not diff:
            counts.unchanged += 1
            continue
        changed.append(cid)
        if "tags" in diff:
            new_tags.append({"cid": cid, "new_tags": diff["tags"]["new"]})
        events.append(
            {
                "customer_id": cid,
                "kind": "CUSTOMER_UPDATED",
                "summary": f"Updated in bulk: {', '.join(sorted(diff))}"[:200],
                "actor_id": ctx.viewer.user_id,
                "data": {"source": f"bulk:{job.id}", "changes": diff},
            }
        )
    if changed:
        await conn.execute(
            update(customer)
            .where(customer.c.id.in_(changed))
            .values(**values, version=customer.c.version + 1, updated_at=func.now())
        )
    if new_tags:  # each customer's own tags: one executemany
        await conn.execute(
            update(customer)
            .where(customer.c.id == bindparam("cid"))
            .values(tags=bindparam("new_tags")),
            new_tags,
        )
    counts.done += len(ids)
    counts.changed += len(changed)
    counts.rejected += len(rejected)
    counts.last_customer_id = ids[-1]
    return rejected, events


async def _custom_values(conn: AsyncConnection, ids: Sequence[int]) -> dict[tuple[int, int], Any]:
    if not ids:
        return {}
    rows = await conn.execute(select(value).where(value.c.customer_id.in_(list(ids))))
    return {(r.customer_id, r.definition_id): r for r in rows}


_TYPED = ("text_value", "number_value", "boolean_value", "date_value")


def _differs(stored: Any, columns: dict[str, Any] | None) -> bool:
    if columns is None:
        return stored is not None  # clearing: only a value that exists changes
    return stored is None or any(getattr(stored, c) != columns[c] for c in _TYPED)


def _stored_text(stored: Any) -> str | None:
    if stored is None:
        return None
    for c in _TYPED:
        v = getattr(stored, c)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, date):
            return v.isoformat()
        if v is not None:
            return str(v)
    return None


async def _save(
    conn: AsyncConnection, job_id: int, counts: _Counts, rejected: list[tuple[int, Problem]]
) -> None:
    await conn.execute(
        update(job_table)
        .where(job_table.c.id == job_id)
        .values(
            done=counts.done,
            changed=counts.changed,
            unchanged=counts.unchanged,
            rejected=counts.rejected,
            last_customer_id=counts.last_customer_id,
        )
    )
    for start_at in range(0, len(rejected), ERRORS_PER_INSERT):
        await conn.execute(
            pg_insert(job_error)
            .values(
                [
                    {"job_id": job_id, "customer_id": cid, "code": p.code, "message": p.message}
                    for cid, p in rejected[start_at : start_at + ERRORS_PER_INSERT]
                ]
            )
            .on_conflict_do_nothing()
        )


async def _finish(engine: AsyncEngine, job_id: int, status: JobStatus, message: str | None):
    async with engine.begin() as conn:
        await conn.execute(
            update(job_table)
            .where(job_table.c.id == job_id)
            .values(status=status, message=message, finished_at=func.now())
        )


async def resume_jobs(engine: AsyncEngine) -> list[int]:
    """Jobs a stopped process left QUEUED or RUNNING: run them again (after their last
    committed batch). Called at start-up; returns their ids."""
    ids = await jobs.unfinished(engine, job_table)
    for job_id in ids:
        await run_job(engine, job_id)
    return ids


# --- reading jobs (GraphQL) ----------------------------------------------------------------

JOBS_NEWEST_FIRST = Ordering((job_table.c.id,), descending=True)
ERRORS_BY_CUSTOMER = Ordering((job_error.c.customer_id,))


def visible_jobs(ctx: Context) -> Select:
    """An admin sees every job; anyone else their own."""
    return jobs.visible(ctx, job_table)


async def job_by_id(ctx: Context, job_id: int) -> Any:
    rows = await ctx.rows(visible_jobs(ctx).where(job_table.c.id == job_id))
    return rows[0] if rows else None


async def job_page(ctx: Context, args: PageArgs) -> tuple[Page, Select]:
    stmt = visible_jobs(ctx)
    paged, to_page = paginate(stmt, JOBS_NEWEST_FIRST, args)
    return to_page(await ctx.rows(paged)), stmt


async def error_page(ctx: Context, job_id: int, args: PageArgs) -> tuple[Page, Select]:
    stmt = select(job_error).where(job_error.c.job_id == job_id)
    paged, to_page = paginate(stmt, ERRORS_BY_CUSTOMER, args)
    return to_page(await ctx.rows(paged)), stmt
