"""Customer exports over GraphQL: `customerExportStart` returns an `ExportJob` whose
`downloadUrl` streams the matching customers (CSV or NDJSON, the import's columns) to its
owner, through the owner's scope, until it expires."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry
from strawberry.types import Info

from resolvers import exports as q
from resolvers.context import viewer_of
from resolvers.errors import CodedError, UserErrorCode
from resolvers.mutations import Problem, Refused
from resolvers.search import Criteria, conditions
from schema.base import encode_id
from schema.errors import UserError, refused_payload
from schema.search import CustomerFilter


@strawberry.enum(description="An export's file format.")
class ExportFormat(enum.Enum):
    CSV = "csv"
    NDJSON = "ndjson"


@strawberry.type(
    description="A customer export: download it (GET, same Authorization) before it expires."
)
class ExportJob:
    id: strawberry.ID
    format: ExportFormat
    created_at: datetime
    expires_at: datetime
    download_url: str = strawberry.field(
        description="GET it with the same Authorization header: the customers matching the "
        "filter when it is fetched, streamed (no cap), only for this job's owner."
    )


def job_of(row) -> ExportJob:
    return ExportJob(
        id=encode_id("ExportJob", row.id),
        format=ExportFormat(row.format),
        created_at=row.created_at,
        expires_at=row.expires_at,
        download_url=f"/exports/{row.id}",
    )


@strawberry.input
class CustomerExportStartInput:
    filter: CustomerFilter | None = strawberry.field(
        default=None, description="The customers to export (all live ones without)."
    )
    format: ExportFormat = ExportFormat.CSV


@strawberry.type
class CustomerExportStartPayload:
    job: ExportJob | None
    user_errors: list[UserError]


@strawberry.type
class ExportMutations:
    @strawberry.mutation(
        description="Export customers (any number: no search cap), each as the import reads "
        "it back. A sales rep exports their own customers."
    )
    async def customer_export_start(
        self, info: Info, input: CustomerExportStartInput
    ) -> CustomerExportStartPayload:
        viewer_of(info)
        try:
            try:
                criteria = input.filter.criteria() if input.filter is not None else Criteria()
                await conditions(info.context, criteria)  # every value checked now
            except CodedError as exc:
                raise Refused(
                    Problem(["input", "filter"], UserErrorCode.INVALID, exc.message)
                ) from None
            row = await q.create_export(info.context, criteria, input.format.value)
        except Refused as refused:
            return refused_payload(CustomerExportStartPayload, refused)
        return CustomerExportStartPayload(job=job_of(row), user_errors=[])
