"""Timeline events: everything important that happened to a customer."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import users as user_q
from resolvers.children import child_by_id
from resolvers.timeline import timeline_event
from schema.base import build, node_resolver, registered
from schema.users import User

if TYPE_CHECKING:
    from schema.customers import Customer


@registered
@strawberry.type(description="Something that happened to a customer, recorded with the change.")
class TimelineEvent(relay.Node):
    id: relay.NodeID[int]
    kind: str = strawberry.field(description="e.g. CUSTOMER_CREATED, ORDER_PLACED, NOTE_ADDED.")
    occurred_at: datetime
    summary: str
    data: JSON
    customer_id: strawberry.Private[int]
    actor_id: strawberry.Private[int | None]

    resolve_nodes = node_resolver(child_by_id, timeline_event)

    @strawberry.field(description="Who did it; null for the system or an unknown actor.")
    async def actor(self, info: Info) -> User | None:
        if self.actor_id is None:
            return None
        return build("User", await info.context.loader(user_q.users_by_id).load(self.actor_id))

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated["Customer", strawberry.lazy("schema.customers")] | None:
        row = await info.context.loader(customer_q.customers_by_id).load(self.customer_id)
        return build("Customer", row)
