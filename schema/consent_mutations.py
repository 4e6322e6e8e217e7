"""customerMarketingConsentUpdate: staff, or a site user for themselves."""

import strawberry
from strawberry.types import Info

from resolvers import consent as q
from resolvers import customers as customer_q
from resolvers.context import viewer_of
from resolvers.global_ids import decode_id
from resolvers.mutations import Refused
from schema.base import build
from schema.customer_mutations import CustomerPayload
from schema.enums import MarketingState, OptInLevel
from schema.errors import refused_payload


@strawberry.input
class MarketingConsentInput:
    state: MarketingState
    opt_in_level: OptInLevel | None = strawberry.field(
        default=None, description="For SUBSCRIBED only; default SINGLE."
    )
    source: str | None = strawberry.field(
        default=None,
        description="Where the consent was given (e.g. checkout, newsletter form); default "
        "staff, or customer for a site user.",
    )


@strawberry.input
class CustomerMarketingConsentUpdateInput:
    customer_id: strawberry.ID
    email: MarketingConsentInput | None = None
    sms: MarketingConsentInput | None = strawberry.field(
        default=None, description="SUBSCRIBED or PENDING needs a phone number."
    )


@strawberry.type
class ConsentMutations:
    @strawberry.mutation(
        description="Record what a customer agreed to receive; each change is on the "
        "timeline with the old and new state."
    )
    async def customer_marketing_consent_update(
        self, info: Info, input: CustomerMarketingConsentUpdateInput
    ) -> CustomerPayload:
        viewer_of(info)
        changes = {
            channel: q.ConsentChange(given.state, given.opt_in_level, given.source)
            for channel in q.CHANNELS
            if (given := getattr(input, channel)) is not None
        }
        try:
            cid = decode_id(input.customer_id, "Customer", "customerId")
            await q.update_consent(info.context, cid, changes)
        except Refused as refused:
            return refused_payload(CustomerPayload, refused)
        row = await info.context.fresh().loader(customer_q.customers_by_id).load(cid)
        return CustomerPayload(customer=build("Customer", row), user_errors=[])
