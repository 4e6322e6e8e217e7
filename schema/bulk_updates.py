"""Bulk updates over GraphQL: `customerBulkUpdate` returns a `BulkJob` whose progress and
per-customer errors are queries (`bulkJob`, `bulkJobs`) and a subscription
(`bulkJobProgress`)."""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
from collections.abc import AsyncGenerator, Iterator
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from resolvers import bulk_updates as q
from resolvers import customers as customer_q
from resolvers.context import viewer_of
from resolvers.errors import CodedError
from resolvers.global_ids import decode_id
from resolvers.loading import count
from resolvers.mutations import Problem, Refused
from resolvers.pagination import page_args
from schema.base import build, encode_id
from schema.custom_field_mutations import CustomFieldEntry
from schema.customers import Customer
from schema.enums import CustomerStatus
from schema.errors import UserError, UserErrorCode, refused_payload
from schema.import_jobs import JobStatus
from schema.jobs import follow, run_in_background
from schema.pagination import Connection
from schema.search import CustomerFilter

log = logging.getLogger(__name__)
UNSET: Any = strawberry.UNSET


@strawberry.enum(description="What a rejected customer does to the rest of a bulk update.")
class BulkErrorPolicy(enum.Enum):
    SKIP = strawberry.enum_value(
        "skip", description="Rejected customers are reported; the others are updated."
    )
    ABORT = strawberry.enum_value(
        "abort",
        description="All or nothing: one transaction; any rejected customer and nothing "
        "is written (each rejection is still reported).",
    )


@strawberry.input(
    one_of=True,
    description="Exactly one way to choose the customers: a filter (the search screen's, "
    "through your scope) or up to 10,000 ids.",
)
class BulkCustomerSelection:
    filter: CustomerFilter | None = strawberry.UNSET
    ids: list[strawberry.ID] | None = strawberry.UNSET


@strawberry.input(
    description="What to set on every chosen customer; only the fields you send change "
    "(salesRepId: null unassigns). Validated as customerUpdate validates them: a sales rep "
    "assigns to themselves only. Tags are added and removed as customerTagsAdd/Remove do "
    "(a customer that would pass 50 tags is rejected)."
)
class CustomerBulkSet:
    sales_rep_id: strawberry.ID | None = UNSET
    status: CustomerStatus | None = strawberry.field(
        default=UNSET,
        description="ACTIVE or ARCHIVED (customerRestore/customerArchive in bulk).",
    )
    tags_add: list[str] | None = strawberry.field(
        default=None, description="Tags to add (an existing spelling is kept)."
    )
    tags_remove: list[str] | None = strawberry.field(
        default=None, description="Tags to remove (any case); absent ones are ignored."
    )
    custom_fields: list[CustomFieldEntry] | None = strawberry.field(
        default=None,
        description="Values by key (null clears), typed and checked like "
        "customerSetCustomFields: a customer missing a required field is rejected.",
    )


@strawberry.input
class CustomerBulkUpdateInput:
    customers: BulkCustomerSelection
    set: CustomerBulkSet
    error_policy: BulkErrorPolicy = BulkErrorPolicy.SKIP


@strawberry.type(description="A customer a bulk update did not change, and why.")
class BulkCustomerError:
    customer_id: strawberry.ID = strawberry.field(
        description="As given (or matched): it may be a customer you cannot see."
    )
    code: UserErrorCode = strawberry.field(
        description="NOT_FOUND (missing or not yours), CONFLICT (merged), REQUIRED (a "
        "required custom field has no value), INVALID, FORBIDDEN."
    )
    message: str
    pk: strawberry.Private[int]

    @strawberry.field(description="The customer, if you can see it.")
    async def customer(self, info: Info) -> Customer | None:
        return build(
            "Customer", await info.context.loader(customer_q.customers_by_id).load(self.pk)
        )


def _error_of(row: Any) -> BulkCustomerError:
    return BulkCustomerError(
        customer_id=encode_id("Customer", row.customer_id),
        pk=row.customer_id,
        code=UserErrorCode(row.code),
        message=row.message,
    )


@strawberry.type(description="A bulk update of customers: its progress, counts and errors.")
class BulkJob:
    id: strawberry.ID
    status: JobStatus
    error_policy: BulkErrorPolicy
    total: int = strawberry.field(description="Customers chosen when it started.")
    done: int = strawberry.field(description="Customers handled and committed so far.")
    changed: int
    unchanged: int = strawberry.field(description="Already as set: no write, no event.")
    rejected: int
    message: str | None = strawberry.field(description="Why it failed.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    pk: strawberry.Private[int]

    @strawberry.field(description="Rejected customers, by customer id.")
    async def errors(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[BulkCustomerError]:
        ctx = info.context
        page, stmt = await q.error_page(ctx, self.pk, page_args(first, after))
        return Connection.of(page, _error_of, lambda: count(ctx, stmt))


def job_of(row: Any) -> BulkJob:
    return BulkJob(
        id=encode_id("BulkJob", row.id),
        pk=row.id,
        status=row.status,
        error_policy=BulkErrorPolicy(row.error_policy),
        total=row.total,
        done=row.done,
        changed=row.changed,
        unchanged=row.unchanged,
        rejected=row.rejected,
        message=row.message,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _changes(s: CustomerBulkSet) -> q.BulkChanges:
    values: dict[str, Any] = {}
    if s.sales_rep_id is not UNSET:
        rep = s.sales_rep_id
        values["sales_rep_id"] = None if rep is None else decode_id(rep, "User", "salesRepId")
    if s.status not in (UNSET, None):  # null: unchanged (a status cannot be cleared)
        values["status"] = s.status
    pairs = [(f.key, f.value) for f in s.custom_fields or []]
    return q.BulkChanges(values, pairs, s.tags_add or [], s.tags_remove or [])


@strawberry.type
class CustomerBulkUpdatePayload:
    job: BulkJob | None
    user_errors: list[UserError]


@contextlib.contextmanager
def _invalid(name: str) -> Iterator[None]:
    try:
        yield
    except CodedError as exc:
        raise Refused(
            Problem(["input", "customers", name], UserErrorCode.INVALID, exc.message)
        ) from None


@strawberry.type
class BulkUpdateMutations:
    @strawberry.mutation(
        description="Set the sales rep, status or custom fields of many customers (staff; a "
        "sales rep changes their own customers). The input is checked at once; customers are "
        "updated in the background, 500 per transaction, one CUSTOMER_UPDATED event per "
        "changed customer: follow `bulkJob` or `bulkJobProgress`."
    )
    async def customer_bulk_update(
        self, info: Info, input: CustomerBulkUpdateInput
    ) -> CustomerBulkUpdatePayload:
        viewer_of(info)
        ctx = info.context
        chosen = input.customers
        try:
            ids = criteria = None
            # A malformed ID here is bad input like any other: userErrors, no job.
            if chosen.ids not in (UNSET, None):
                with _invalid("ids"):
                    ids = [decode_id(i, "Customer", "customers.ids") for i in chosen.ids]
            if chosen.filter not in (UNSET, None):
                with _invalid("filter"):
                    criteria = chosen.filter.criteria()
            job_id = await q.start(
                ctx,
                ids=ids,
                criteria=criteria,
                changes=_changes(input.set),
                error_policy=input.error_policy.value,
            )
        except Refused as refused:
            return refused_payload(CustomerBulkUpdatePayload, refused)
        run_in_background(q.run_job(ctx.engine, job_id))
        return CustomerBulkUpdatePayload(job=job_of(await q.job_by_id(ctx, job_id)), user_errors=[])


@strawberry.type
class BulkUpdateSubscriptions:
    @strawberry.subscription(
        description="A bulk job's progress: the job now, then each time a batch commits, "
        "until it has SUCCEEDED or FAILED."
    )
    async def bulk_job_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[BulkJob, None]:
        viewer_of(info)
        job_id = decode_id(id, "BulkJob", "id")
        read = functools.partial(q.job_by_id, job_id=job_id)
        async for row in follow(info, read, lambda r: (r.status, r.done), "No such bulk job."):
            yield job_of(row)


@strawberry.type
class BulkUpdateQueries:
    @strawberry.field(description="A bulk job: your own, or any for an admin.")
    async def bulk_job(self, info: Info, id: strawberry.ID) -> BulkJob | None:
        viewer_of(info)
        row = await q.job_by_id(info.context, decode_id(id, "BulkJob", "id"))
        return None if row is None else job_of(row)

    @strawberry.field(description="Bulk jobs, newest first: your own (an admin sees every one).")
    async def bulk_jobs(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[BulkJob]:
        viewer_of(info)
        ctx = info.context
        page, stmt = await q.job_page(ctx, page_args(first, after))
        return Connection.of(page, job_of, lambda: count(ctx, stmt))
