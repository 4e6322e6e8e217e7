"""Tax exemption certificates."""

from dataclasses import dataclass
from datetime import date
from typing import Any

import pycountry
from sqlalchemy import Select, and_, func, or_, select

from models import TaxExemptionCertificate
from models.enums import TaxStatus
from resolvers.context import Context
from resolvers.datetimes import TODAY
from resolvers.errors import BadUserInput
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


def region_of(region: str) -> tuple[str, str | None]:
    """(country, subdivision or None) of an ISO 3166 region (`FR`, `us-ca`); BadUserInput
    for anything else (both read paths check with this)."""
    country, _, subdivision = region.strip().upper().partition("-")
    if pycountry.countries.get(alpha_2=country) is None or (
        subdivision and pycountry.subdivisions.get(code=f"{country}-{subdivision}") is None
    ):
        raise BadUserInput(
            f"Unknown region {region!r}: use ISO 3166 (FR, US-CA).", argument="region"
        )
    return country, subdivision or None


def covering(customer_id: Any, country: Any, region: Any, on: Any) -> list:
    """The conditions of a certificate that exempts `customer_id` in (country, region) on
    `on`: the one rule, for orders, `taxDetermination` and its compiled form."""
    return [
        certificate.c.customer_id == customer_id,
        certificate.c.country == country,
        or_(certificate.c.region.is_(None), certificate.c.region == region),
        certificate.c.valid_from <= on,
        or_(certificate.c.valid_to.is_(None), certificate.c.valid_to >= on),
        or_(certificate.c.revoked_at.is_(None), func.date(certificate.c.revoked_at) > on),
    ]


# The newest covering certificate wins (ties: the oldest id).
COVERING_ORDER = CERTIFICATE_ORDER


async def determine(
    conn_or_ctx: Any, customer_row: Any, country: str, region: str | None, on: date
) -> Determination:
    """Is this customer exempt in (country, region) on `on`, and why? Orders use it."""
    if customer_row.tax_status == TaxStatus.EXEMPT:
        return Determination(True, "TAX_STATUS", customer_row.tax_code, None)
    stmt = (
        certificate_row()
        .where(*covering(customer_row.id, country, region, on))
        .order_by(*COVERING_ORDER)
        .limit(1)
    )
    if hasattr(conn_or_ctx, "rows"):
        rows = await conn_or_ctx.rows(stmt)
    else:
        rows = (await conn_or_ctx.execute(stmt)).all()
    if rows:
        return Determination(True, "CERTIFICATE", customer_row.tax_code, rows[0])
    return Determination(False, "NONE", customer_row.tax_code, None)
