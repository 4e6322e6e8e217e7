"""Tax exemption certificates."""

from collections.abc import Sequence

from models import TaxExemptionCertificate
from resolvers.children import visible
from resolvers.context import Context
from resolvers.loading import many_per_key

certificate = TaxExemptionCertificate.__table__


async def certificates_by_customer(ctx: Context, keys: Sequence[int]) -> list:
    stmt = visible(ctx, certificate).order_by(certificate.c.valid_from.desc(), certificate.c.id)
    return await many_per_key(ctx, stmt, certificate.c.customer_id, keys)
