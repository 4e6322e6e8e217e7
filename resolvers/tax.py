"""Tax exemption certificates."""

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select

from models import TaxExemptionCertificate
from models.enums import TaxStatus
from resolvers.children import visible
from resolvers.relations import ChildList

certificate = TaxExemptionCertificate.__table__


# Newest first: the one ordering of TaxStatus.exemptionCertificates (both read paths).
CERTIFICATE_ORDER = (certificate.c.valid_from.desc(), certificate.c.id)


# TaxStatus.exemptionCertificates, declared once (resolvers/relations.py).
CERTIFICATES = ChildList(
    certificate, "customer_id", CERTIFICATE_ORDER, lambda ctx: visible(ctx, certificate)
)


@dataclass(frozen=True)
class Determination:
    exempt: bool
    reason: str  # TAX_STATUS | CERTIFICATE | NONE
    tax_code: str | None
    certificate: Any | None


async def determine(
    conn_or_ctx: Any, customer_row: Any, country: str, region: str | None, on: date
) -> Determination:
    """Is this customer exempt in (country, region) on `on`, and why? Orders use it."""
    if customer_row.tax_status == TaxStatus.EXEMPT:
        return Determination(True, "TAX_STATUS", customer_row.tax_code, None)
    stmt = (
        select(certificate)
        .where(
            certificate.c.customer_id == customer_row.id,
            certificate.c.country == country,
            or_(certificate.c.region.is_(None), certificate.c.region == region),
            certificate.c.valid_from <= on,
            or_(certificate.c.valid_to.is_(None), certificate.c.valid_to >= on),
            or_(certificate.c.revoked_at.is_(None), func.date(certificate.c.revoked_at) > on),
        )
        .order_by(certificate.c.valid_from.desc(), certificate.c.id)
        .limit(1)
    )
    if hasattr(conn_or_ctx, "rows"):
        rows = await conn_or_ctx.rows(stmt)
    else:
        rows = (await conn_or_ctx.execute(stmt)).all()
    if rows:
        return Determination(True, "CERTIFICATE", customer_row.tax_code, rows[0])
    return Determination(False, "NONE", customer_row.tax_code, None)
