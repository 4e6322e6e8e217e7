"""Duplicate report (`duplicateCustomers`) and `duplicateDismiss`."""

import strawberry
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import duplicates as q
from resolvers.context import viewer_of
from resolvers.errors import BadUserInput
from resolvers.global_ids import decode_id
from resolvers.loading import count
from resolvers.mutations import Refused
from resolvers.pagination import FORWARD_PAGING, PageArgs
from schema.base import build_all
from schema.customers import Customer
from schema.errors import UserError, refused_payload
from schema.pagination import Connection, connection

DuplicateCriterion = strawberry.enum(
    q.Criterion, name="DuplicateCriterion", description="What duplicates share."
)


@strawberry.type(description="Customers that look like one person or business.")
class DuplicateGroup:
    reasons: list[DuplicateCriterion] = strawberry.field(
        description="The criteria every customer in the group matches."
    )
    score: float = strawberry.field(
        description="Strength of the match, 0..1: shared email 0.9, phone 0.8, name 0.6, "
        "combined as independent evidence; a fuzzy name counts times its similarity."
    )
    similarity: float | None = strawberry.field(description="Name similarity (fuzzy mode).")
    keys: list[str] = strawberry.field(description="The normalised values they share.")
    customer_ids: strawberry.Private[list[int]]

    @strawberry.field
    def size(self) -> int:
        return len(self.customer_ids)

    @strawberry.field(description="The customers in the group, oldest first.")
    async def customers(self, info: Info) -> list[Customer]:
        rows = await info.context.loader(customer_q.customers_by_id).load_many(self.customer_ids)
        return build_all("Customer", [r for r in rows if r is not None])


def _group(report: q.Report, row) -> DuplicateGroup:
    m = row._mapping
    if report.fuzzy:
        ids, keys, similarity = [m["a_id"], m["b_id"]], [m["k0"], m["k1"]], float(m["similarity"])
    else:
        ids = list(m["ids"])
        keys = [m[f"k{i}"] for i in range(len(report.criteria))]
        similarity = None
    return DuplicateGroup(
        reasons=list(report.criteria),
        score=q.group_score(report, row),
        similarity=similarity,
        keys=keys,
        customer_ids=ids,
    )


@strawberry.type
class DuplicateQueries:
    @connection(
        "Groups of customers sharing ALL of the given criteria (normalised: email "
        "case and spaces, phone as E.164, name case/accents/spaces; company for businesses). "
        "`fuzzy: true` matches names by trigram similarity >= threshold and returns pairs, "
        "strongest first. Dismissed pairs never show again.",
        FORWARD_PAGING,
    )
    async def duplicate_customers(
        self,
        info: Info,
        by: list[DuplicateCriterion] | None = None,
        fuzzy: bool = False,
        threshold: float = 0.6,
        *,
        page: PageArgs,
    ) -> Connection[DuplicateGroup]:
        viewer_of(info)
        criteria = tuple(dict.fromkeys(by or [q.Criterion.EMAIL]))
        if fuzzy and q.Criterion.NAME not in criteria:
            raise BadUserInput("fuzzy matching applies to NAME: include NAME in 'by'.")
        if not q.MIN_FUZZY_THRESHOLD <= threshold <= 1:
            raise BadUserInput(f"'threshold' must be between {q.MIN_FUZZY_THRESHOLD} and 1.")
        report = q.Report(criteria, fuzzy, threshold)
        ctx = info.context
        found, stmt = await q.report_page(ctx, report, page)
        return Connection.of(found, lambda row: _group(report, row), lambda: count(ctx, stmt))


@strawberry.input
class DuplicateDismissInput:
    customer_ids: list[strawberry.ID] = strawberry.field(
        description="Two or more customers that are distinct people: every pair is dismissed."
    )


@strawberry.type
class DuplicateDismissPayload:
    dismissed_pairs: int
    user_errors: list[UserError]


@strawberry.type
class DuplicateMutations:
    @strawberry.mutation(description="Mark customers as not duplicates of each other.")
    async def duplicate_dismiss(
        self, info: Info, input: DuplicateDismissInput
    ) -> DuplicateDismissPayload:
        viewer_of(info)
        try:
            stored = await q.dismiss_use_case(
                info.context, [decode_id(i, "Customer", "customerIds") for i in input.customer_ids]
            )
        except Refused as refused:
            return refused_payload(DuplicateDismissPayload, refused)
        return DuplicateDismissPayload(dismissed_pairs=stored, user_errors=[])
