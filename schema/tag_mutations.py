"""customerTagsAdd / customerTagsRemove: label many customers at once."""

import strawberry
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import tag_mutations as q
from resolvers.context import viewer_of
from resolvers.global_ids import decode_id
from resolvers.mutations import Refused
from schema.base import build_all
from schema.customers import Customer
from schema.errors import UserError, refused_payload


@strawberry.input
class CustomerTagsInput:
    customer_ids: list[strawberry.ID] = strawberry.field(
        description=f"At most {q.MAX_CUSTOMERS}; all change or none."
    )
    tags: list[str] = strawberry.field(
        description="Trimmed, 1-40 characters each; case-insensitive (an existing "
        "spelling is kept). A customer has at most 50."
    )


@strawberry.type
class CustomerTagsPayload:
    customers: list[Customer] = strawberry.field(description="The customers, as they are now.")
    user_errors: list[UserError]


async def _change(info: Info, input: CustomerTagsInput, add: bool) -> CustomerTagsPayload:
    viewer_of(info)
    try:
        ids = [decode_id(i, "Customer", "customerIds") for i in input.customer_ids]
        ids = await q.change_tags(info.context, ids, input.tags, add=add)
    except Refused as refused:
        return refused_payload(CustomerTagsPayload, refused)
    rows = await info.context.fresh().loader(customer_q.customers_by_id).load_many(ids)
    return CustomerTagsPayload(customers=build_all("Customer", rows), user_errors=[])


@strawberry.type
class TagMutations:
    @strawberry.mutation(
        description="Add tags to customers (a timeline event on each customer that changed)."
    )
    async def customer_tags_add(self, info: Info, input: CustomerTagsInput) -> CustomerTagsPayload:
        return await _change(info, input, add=True)

    @strawberry.mutation(description="Remove tags from customers; absent tags are ignored.")
    async def customer_tags_remove(
        self, info: Info, input: CustomerTagsInput
    ) -> CustomerTagsPayload:
        return await _change(info, input, add=False)
