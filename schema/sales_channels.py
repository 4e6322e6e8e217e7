"""Sales channels."""

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers import sales_channels as q
from resolvers.context import viewer_of
from schema.base import from_row, node_resolver, registered


@registered
@strawberry.type(description="Where a customer buys: web shop, marketplace, store...")
class SalesChannel(relay.Node):
    id: relay.NodeID[int]
    code: str
    name: str

    resolve_nodes = node_resolver(q.sales_channels_by_id)


@strawberry.type
class SalesChannelQueries:
    @strawberry.field(description="Every sales channel, by name.")
    async def sales_channels(self, info: Info) -> list[SalesChannel]:
        viewer_of(info)
        return [from_row(SalesChannel, r) for r in await q.all_sales_channels(info.context)]
