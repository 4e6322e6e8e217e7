"""Sales channels: a small, global list every signed-in user may read."""

from collections.abc import Sequence

from sqlalchemy import select

from models import CustomerSalesChannel, SalesChannel
from resolvers.context import Context
from resolvers.loading import many_per_key, one_per_key

channel = SalesChannel.__table__
link = CustomerSalesChannel.__table__


async def all_sales_channels(ctx: Context) -> list:
    return list(await ctx.rows(select(channel).order_by(channel.c.name, channel.c.id)))


async def sales_channels_by_id(ctx: Context, keys: Sequence[int]) -> list:
    return await one_per_key(ctx, select(channel), channel.c.id, keys)


# By name: the one ordering of Customer.salesChannels (both read paths).
CHANNEL_ORDER = (channel.c.name, channel.c.id)


async def sales_channels_by_customer(ctx: Context, keys: Sequence[int]) -> list:
    # One join instead of link-then-channel: a level costs one statement.
    stmt = (
        select(channel, link.c.customer_id)
        .join(link, link.c.sales_channel_id == channel.c.id)
        .order_by(*CHANNEL_ORDER)
    )
    return await many_per_key(ctx, stmt, link.c.customer_id, keys)
