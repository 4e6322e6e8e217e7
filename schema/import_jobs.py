"""Customer imports over GraphQL: `customerImportStart` (a file by the GraphQL multipart
request spec) returns an `ImportJob` whose progress and rejected rows are queries."""

from __future__ import annotations

import enum
import functools
import io
import logging
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from models.enums import JobStatus as JobStatusEnum
from models.enums import Role
from resolvers import import_jobs as q
from resolvers.context import viewer_of
from resolvers.errors import Forbidden, UserErrorCode
from resolvers.global_ids import decode_id
from resolvers.import_rows import ImportOptions
from resolvers.imports import FileRefused, Reader
from resolvers.loading import count
from resolvers.mutations import Problem, Refused
from resolvers.pagination import FORWARD_PAGING, PageArgs
from schema.base import encode_id
from schema.errors import UserError, refused_payload
from schema.jobs import follow, run_in_background
from schema.pagination import Connection, connection

log = logging.getLogger(__name__)
JobStatus = strawberry.enum(JobStatusEnum, name="JobStatus", description="Where a job is.")


@strawberry.enum(description="What identifies an existing customer in the file.")
class ImportKey(enum.Enum):
    REFERENCE_ID = "reference-id"
    EMAIL = "email"


@strawberry.enum(description="What a rejected row does to the rest.")
class ImportErrorPolicy(enum.Enum):
    SKIP = "skip"
    ABORT = "abort"


@strawberry.type(description="A row the import rejected, as it was in the file.")
class ImportRowError:
    line: int = strawberry.field(description="Its first line in the file (the header is 1).")
    column: str | None = strawberry.field(description="The column at fault, if one is.")
    code: str
    message: str
    values: list[str] = strawberry.field(description="The row's cells (card numbers removed).")


@strawberry.type(description="A customer import: its progress, counts and rejected rows.")
class ImportJob:
    id: strawberry.ID
    status: JobStatus
    file_name: str
    rows_done: int = strawberry.field(description="Rows read and committed so far.")
    created: int
    updated: int
    unchanged: int
    rejected: int
    unknown_columns: list[str] = strawberry.field(
        description="Columns no field matched: not imported (map them with `mapping`)."
    )
    ignored_columns: list[str] = strawberry.field(
        description="Columns known but not imported (totals, fields this service lacks)."
    )
    message: str | None = strawberry.field(description="Why it failed, or what it did not do.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    pk: strawberry.Private[int]

    @strawberry.field(
        description="The rejected rows with line, column, code and message as CSV; "
        "GET it with the same Authorization header."
    )
    def error_report_url(self) -> str | None:
        return f"/imports/{self.pk}/errors.csv" if self.rejected else None

    @connection("Rejected rows, in file order.", FORWARD_PAGING)
    async def errors(self, info: Info, page: PageArgs) -> Connection[ImportRowError]:
        ctx = info.context
        found, stmt = await q.error_page(ctx, self.pk, page)
        return Connection.of(found, _row_error, lambda: count(ctx, stmt))


def _row_error(row) -> ImportRowError:
    return ImportRowError(
        line=row.line, column=row.column, code=row.code, message=row.message, values=row.raw
    )


def job_of(row) -> ImportJob:
    return ImportJob(
        id=encode_id("ImportJob", row.id),
        pk=row.id,
        status=row.status,
        file_name=row.file_name,
        rows_done=row.rows_done,
        created=row.created,
        updated=row.updated,
        unchanged=row.unchanged,
        rejected=row.rejected,
        unknown_columns=row.unknown_columns,
        ignored_columns=row.ignored_columns,
        message=row.message,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


@strawberry.input
class ImportColumnMapping:
    column: str = strawberry.field(description="A header of the file.")
    field: str = strawberry.field(
        description="Our field (first_name, email, address.city, …), custom:<key>, or ignore."
    )


@strawberry.input
class CustomerImportStartInput:
    upload: Upload = strawberry.field(description="The CSV or NDJSON file (multipart request).")
    key: ImportKey = ImportKey.REFERENCE_ID
    mapping: list[ImportColumnMapping] | None = strawberry.field(
        default=None, description="Columns mapped by hand, over the guess from the header."
    )
    on_error: ImportErrorPolicy = ImportErrorPolicy.SKIP
    dry_run: bool = False


@strawberry.type
class CustomerImportStartPayload:
    job: ImportJob | None
    user_errors: list[UserError]


@strawberry.type
class ImportJobMutations:
    @strawberry.mutation(
        description="Start importing customers from a CSV or NDJSON file (admins). The file's "
        "header is checked at once; rows are imported in the background: follow `importJob`."
    )
    async def customer_import_start(
        self, info: Info, input: CustomerImportStartInput
    ) -> CustomerImportStartPayload:
        viewer = viewer_of(info)
        ctx = info.context
        try:
            if viewer.role is not Role.ADMIN:
                raise Refused(
                    Problem(None, UserErrorCode.FORBIDDEN, "Only admins import customers.")
                )
            data = await input.upload.read()
            limit = ctx.settings.max_upload_bytes
            if len(data) > limit:
                raise Refused(
                    Problem(
                        ["input", "upload"],
                        UserErrorCode.INVALID,
                        f"The file exceeds {limit:,} bytes.",
                    )
                )
            mapping = {m.column: m.field for m in input.mapping or []}
            options = ImportOptions(
                key=input.key.value,
                on_error=input.on_error.value,
                dry_run=input.dry_run,
                mapping=mapping or None,
            )
            keys = frozenset(await q.custom_keys(ctx.engine))
            try:  # the header, at once: a file nothing can be read from starts no job
                Reader(io.BytesIO(data), mapping=options.mapping, custom_keys=keys)
            except FileRefused as refused:
                raise Refused(
                    Problem(
                        ["input", "upload"],
                        UserErrorCode.INVALID,
                        f"{refused.message} ({refused.code})",
                    )
                ) from None
        except Refused as refused:
            return refused_payload(CustomerImportStartPayload, refused)
        name = getattr(input.upload, "filename", None) or "upload"
        job_id = await q.create_job(
            ctx.engine, owner_id=viewer.user_id, file_name=name, data=data, options=options
        )
        run_in_background(q.run_job(ctx.engine, job_id))
        return CustomerImportStartPayload(
            job=job_of(await q.job_by_id(ctx, job_id)), user_errors=[]
        )


@strawberry.type
class ImportJobSubscriptions:
    @strawberry.subscription(
        description="An import job's progress: the job now, then each time its counts or "
        "status change (a batch committed), until it has SUCCEEDED or FAILED."
    )
    async def import_job_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[ImportJob, None]:
        viewer_of(info)
        job_id = decode_id(id, "ImportJob", "id")
        read = functools.partial(q.job_by_id, job_id=job_id)
        async for row in follow(
            info, read, lambda r: (r.status, r.rows_done, r.rejected), "No such import."
        ):
            yield job_of(row)


@strawberry.type
class ImportJobQueries:
    @strawberry.field(description="An import job: its owner's, or any for an admin.")
    async def import_job(self, info: Info, id: strawberry.ID) -> ImportJob | None:
        viewer_of(info)
        row = await q.job_by_id(info.context, decode_id(id, "ImportJob", "id"))
        return None if row is None else job_of(row)

    @connection("Import jobs, newest first (an admin sees every one).", FORWARD_PAGING)
    async def import_jobs(self, info: Info, page: PageArgs) -> Connection[ImportJob]:
        viewer = viewer_of(info)
        if viewer.role is not Role.ADMIN:
            raise Forbidden("Only admins import customers.")
        ctx = info.context
        found, stmt = await q.job_page(ctx, page)
        return Connection.of(found, job_of, lambda: count(ctx, stmt))
