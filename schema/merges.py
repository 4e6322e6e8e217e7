"""Merging duplicates: `customerMergePreview` (query) and `customerMerge` (mutation)."""

import strawberry
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import merges as q
from resolvers.context import viewer_of
from resolvers.errors import CodedError
from resolvers.global_ids import decode_id
from resolvers.mutations import Refused
from schema.base import Money, build
from schema.customers import Customer
from schema.errors import UserError, refused_payload


class MergeRefused(CodedError):
    def __init__(self, refused: Refused) -> None:
        problem = refused.problems[0]
        self.code = problem.code
        super().__init__(problem.message, field=problem.field)


@strawberry.type
class MergeConflictValue:
    customer_number: str
    value: str | None


@strawberry.type(description="A field whose value differs between survivor and duplicates.")
class MergeConflict:
    field: str = strawberry.field(description="Pass it in fieldChoices to take another value.")
    survivor_value: str | None
    values: list[MergeConflictValue]


@strawberry.type
class MergeMove:
    what: str = strawberry.field(description="orders, order_line, address, …")
    count: int


@strawberry.type
class CustomerVersion:
    customer_id: strawberry.ID
    version: int


@strawberry.type(description="What customerMerge would do; nothing is written.")
class CustomerMergePreview:
    survivor: Customer
    duplicates: list[Customer]
    conflicts: list[MergeConflict]
    moves: list[MergeMove] = strawberry.field(
        description="Rows that change hands (identical addresses collapse instead)."
    )
    balances: list[Money] = strawberry.field(
        description="Balances moved to the survivor by transfer entries, per currency."
    )
    versions: list[CustomerVersion] = strawberry.field(
        description="Send back as expectedVersions: a change in between makes the merge CONFLICT."
    )


def _text(value) -> str | None:
    return None if value is None else str(value)


def _gid(pk: int) -> strawberry.ID:
    return strawberry.ID(strawberry.relay.to_base64("Customer", pk))


@strawberry.type
class MergeQueries:
    @strawberry.field(description="Preview merging duplicates into a survivor.")
    async def customer_merge_preview(
        self, info: Info, survivor_id: strawberry.ID, duplicate_ids: list[strawberry.ID]
    ) -> CustomerMergePreview | None:
        viewer_of(info)
        survivor = decode_id(survivor_id, "Customer", "survivorId")
        dups = [decode_id(d, "Customer", "duplicateIds") for d in duplicate_ids]
        try:
            plan = await q.preview(info.context, survivor, dups)
        except Refused as refused:
            raise MergeRefused(refused) from None
        if plan is None:
            return None  # already merged: nothing left to preview
        numbers = {d.id: d.number for d in plan.duplicates}
        people = [plan.survivor, *plan.duplicates]
        return CustomerMergePreview(
            survivor=build("Customer", plan.survivor),
            duplicates=[build("Customer", d) for d in plan.duplicates],
            conflicts=[
                MergeConflict(
                    field=c.field,
                    survivor_value=_text(c.survivor_value),
                    values=[
                        MergeConflictValue(customer_number=numbers[k], value=_text(v))
                        for k, v in c.values.items()
                    ],
                )
                for c in plan.conflicts
            ],
            moves=[MergeMove(what=k, count=v) for k, v in plan.moves.items() if v],
            balances=[Money(amount=v, currency=k) for k, v in sorted(plan.balances.items())],
            versions=[CustomerVersion(customer_id=_gid(p.id), version=p.version) for p in people],
        )


@strawberry.input
class MergeFieldChoice:
    field: str = strawberry.field(description="A conflict's field, or customFields.<key>.")
    customer_id: strawberry.ID


@strawberry.input
class ExpectedVersion:
    customer_id: strawberry.ID
    version: int


@strawberry.input
class CustomerMergeInput:
    survivor_id: strawberry.ID
    duplicate_ids: list[strawberry.ID]
    field_choices: list[MergeFieldChoice] | None = None
    expected_versions: list[ExpectedVersion] | None = None


@strawberry.type
class CustomerMergePayload:
    customer: Customer | None
    user_errors: list[UserError]


@strawberry.type
class MergeMutations:
    @strawberry.mutation(
        description="Merge duplicates into the survivor in one transaction; retrying a "
        "finished merge changes nothing."
    )
    async def customer_merge(self, info: Info, input: CustomerMergeInput) -> CustomerMergePayload:
        viewer_of(info)
        ctx = info.context
        try:
            survivor = decode_id(input.survivor_id, "Customer", "survivorId")
            dups = [decode_id(d, "Customer", "duplicateIds") for d in input.duplicate_ids]
            choices = {
                c.field: decode_id(c.customer_id, "Customer", "fieldChoices")
                for c in input.field_choices or []
            }
            versions = {
                decode_id(v.customer_id, "Customer", "expectedVersions"): v.version
                for v in input.expected_versions or []
            }
            survivor = await q.merge(ctx, survivor, dups, choices, versions)
        except Refused as refused:
            return refused_payload(CustomerMergePayload, refused)
        row = await ctx.fresh().loader(customer_q.customers_by_id).load(survivor)
        return CustomerMergePayload(customer=build("Customer", row), user_errors=[])
