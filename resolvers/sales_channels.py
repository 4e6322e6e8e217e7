"""Sales channels: a small, global list every signed-in user may read."""

from sqlalchemy import select

from models import CustomerSalesChannel, SalesChannel
from resolvers.context import Context
from resolvers.relations import ById, ChildList, ForeignObject

channel = SalesChannel.__table__
link = CustomerSalesChannel.__table__


async def all_sales_channels(ctx: Context) -> list:
    return list(await ctx.rows(select(channel).order_by(channel.c.name, channel.c.id)))


# Every signed-in user may read every channel: no scope.
CHANNELS = ById(channel, lambda ctx: select(channel), None)
sales_channels_by_id = CHANNELS.batch
# Order.salesChannel, declared once (resolvers/relations.py).
ORDER_CHANNEL = ForeignObject(CHANNELS, "sales_channel_id")


# By name: the one ordering of Customer.salesChannels (both read paths).
CHANNEL_ORDER = (channel.c.name, channel.c.id)


# Customer.salesChannels, declared once: one join instead of link-then-channel (a level
# costs one statement). The customer is in scope already; its links need no other rule.
CUSTOMER_CHANNELS = ChildList(
    channel,
    link.c.customer_id,
    CHANNEL_ORDER,
    lambda ctx: select(channel),
    scope=None,
    joins=((link, link.c.sales_channel_id == channel.c.id),),
)
