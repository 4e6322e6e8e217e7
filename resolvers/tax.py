"""Tax exemption certificates."""

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from models import TaxExemptionCertificate
from models.enums import TaxStatus
from resolvers.context import Context
from resolvers.datetimes import TODAY
from resolvers.relations import ById, ChildList
from resolvers.scope import ScopeKind, scope_children

certificate = TaxExemptionCertificate.__table__

# TaxExemptionCertificate.isValid, the one declaration: valid today (started, not expired,
# not revoked). Every certificate read selects it; the compiled path prints it inline with
# its per-request date (resolvers.datetimes.TODAY).
IS_VALID = and_(
    certificate.c.revoked_at.is_(None),
    certificate.c.valid_from <= TODAY,
    or_(certificate.c.valid_to.is_(None), TODAY <= certificate.c.valid_to),
)
COMPUTED = {"is_valid": IS_VALID}


def certificate_row() -> Select:
    """SELECT of a whole certificate row: its columns and its computed fields."""
    return select(certificate, *(e.label(name) for name, e in COMPUTED.items()))


def visible_certificates(ctx: Context) -> Select:
    return scope_children(certificate_row(), ctx.viewer, certificate.c.customer_id)


CERTIFICATE_ROWS = ById(certificate, visible_certificates, ScopeKind.CHILD)
certificates_by_id = CERTIFICATE_ROWS.batch

# Newest first: the one ordering of TaxStatus.exemptionCertificates (both read paths).
CERTIFICATE_ORDER = (certificate.c.valid_from.desc(), certificate.c.id)

# TaxStatus.exemptionCertificates, declared once (resolvers/relations.py): at most
# CERTIFICATES_CAP (a LIMIT on both paths, which the cost limit counts).
CERTIFICATES_CAP = 100
CERTIFICATES = ChildList(
    certificate,
    certificate.c.customer_id,
    CERTIFICATE_ORDER,
    visible_certificates,
    limit=CERTIFICATES_CAP,
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
        certificate_row()
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
