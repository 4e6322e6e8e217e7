"""Customer addresses: defaults first, then by kind and age."""

from collections.abc import Sequence

from models import Address
from resolvers.children import visible
from resolvers.context import Context
from resolvers.loading import many_per_key

address = Address.__table__


async def addresses_by_customer(ctx: Context, keys: Sequence[int]) -> list:
    stmt = visible(ctx, address).order_by(address.c.is_default.desc(), address.c.kind, address.c.id)
    return await many_per_key(ctx, stmt, address.c.customer_id, keys)
