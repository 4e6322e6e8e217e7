"""Customer addresses: defaults first, then by kind and age."""

from models import Address
from resolvers.children import visible
from resolvers.relations import ChildList

address = Address.__table__


# Defaults first, then by kind: the one ordering of Customer.addresses (both read paths).
ORDER = (address.c.is_default.desc(), address.c.kind, address.c.id)


# Customer.addresses, declared once (resolvers/relations.py): loader and compiled SQL; at
# most ADDRESSES_CAP (a LIMIT on both paths, which the cost limit counts).
ADDRESSES_CAP = 100
ADDRESSES = ChildList(
    address,
    address.c.customer_id,
    ORDER,
    lambda ctx: visible(ctx, address),
    limit=ADDRESSES_CAP,
)
