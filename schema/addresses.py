"""Addresses of a customer."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers.addresses import address
from resolvers.children import child_by_id
from schema.base import build, node_resolver, registered
from schema.enums import AddressKind

if TYPE_CHECKING:
    from schema.customers import Customer


@registered
@strawberry.type(description="A postal address; country and region are ISO 3166 codes.")
class Address(relay.Node):
    id: relay.NodeID[int]
    kind: AddressKind
    is_default: bool
    name: str | None
    company: str | None
    line1: str
    line2: str | None
    city: str | None
    region: str | None = strawberry.field(description="ISO 3166-2 subdivision code, e.g. CA.")
    postal_code: str | None
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 country code.")
    phone: str | None
    created_at: datetime
    updated_at: datetime
    customer_id: strawberry.Private[int]

    resolve_nodes = node_resolver(child_by_id, address)

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated["Customer", strawberry.lazy("schema.customers")] | None:
        return build("Customer", await customer_q.OWNER.load(info.context, self.customer_id))
