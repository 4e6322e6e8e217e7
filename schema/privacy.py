"""Privacy requests: a customer's data export (a query) and erasure (a mutation)."""

from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import privacy as q
from resolvers import privacy_export
from resolvers.children import child_by_id
from resolvers.context import viewer_of
from resolvers.global_ids import decode_id
from resolvers.mutations import Refused
from resolvers.timeline import timeline_event
from schema.base import build
from schema.customers import Customer
from schema.errors import UserError, refused_payload
from schema.timeline import TimelineEvent


@strawberry.type
class PrivacyQueries:
    @strawberry.field(
        description="Everything held about one customer, as one JSON document (profile, "
        "site user, merged records, addresses, account with payment methods' metadata, "
        "orders with lines, ledger with balances, custom fields, tax, timeline). Staff "
        "within their scope, a site user for themselves; null when not visible, as "
        "`customer` answers. A merged customer's ID exports its survivor."
    )
    async def customer_data_export(self, info: Info, customer_id: strawberry.ID) -> JSON | None:
        viewer_of(info)
        pk = decode_id(customer_id, "Customer", "customerId")
        return await privacy_export.export(info.context, pk)


@strawberry.input
class CustomerEraseInput:
    customer_id: strawberry.ID
    reason: str = strawberry.field(
        description="Why (e.g. the request's reference); kept on the timeline, so it must "
        "not repeat the name, email or phone being erased."
    )


@strawberry.type
class CustomerErasePayload:
    customer: Customer | None
    event: TimelineEvent | None = strawberry.field(description="The CUSTOMER_ERASED event.")
    user_errors: list[UserError]


@strawberry.type
class PrivacyMutations:
    @strawberry.mutation(
        description="Pseudonymise a customer for good (admins): names, email, phone, "
        "addresses, notes, free text in the timeline and text custom fields, and the "
        "records merged into it; payment method tokens removed; ledger, order totals and "
        "tax records kept. The customer becomes ERASED and cannot be un-erased."
    )
    async def customer_erase(self, info: Info, input: CustomerEraseInput) -> CustomerErasePayload:
        viewer_of(info)
        try:
            cid = decode_id(input.customer_id, "Customer", "customerId")
            event_id = await q.erase(info.context, cid, input.reason)
        except Refused as refused:
            return refused_payload(CustomerErasePayload, refused)
        ctx: Any = info.context.fresh()
        row = await ctx.loader(customer_q.customers_by_id).load(cid)
        event = await ctx.loader(child_by_id, timeline_event).load(event_id)
        return CustomerErasePayload(
            customer=build("Customer", row), event=build("TimelineEvent", event), user_errors=[]
        )
