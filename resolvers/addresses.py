"""Customer addresses: defaults first, then by kind and age."""

from collections.abc import Sequence

from models import Address
from resolvers.children import visible
from resolvers.context import Context
from resolvers.loading import many_per_key

address = Address.__table__


# Defaults first, then by kind: the one ordering of Customer.addresses (both read paths).
ORDER = (address.c.is_default.desc(), address.c.kind, address.c.id)


async def addresses_by_customer(ctx: Context, keys: Sequence[int]) -> list:
    stmt = visible(ctx, address).order_by(*ORDER)
    return await many_per_key(ctx, stmt, address.c.customer_id, keys)
