"""Tax status and exemption certificate mutations."""

from datetime import date
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import tax as tax_q
from resolvers import tax_mutations as q
from resolvers.context import viewer_of
from resolvers.global_ids import decode_id
from resolvers.mutations import Refused
from schema.base import build
from schema.customers import Customer
from schema.enums import TaxStatusKind
from schema.errors import UserError, refused_payload
from schema.tax import TaxExemptionCertificate


@strawberry.input
class TaxStatusInput:
    customer_id: strawberry.ID
    status: TaxStatusKind
    tax_code: str | None = None


@strawberry.input
class TaxCertificateInput:
    customer_id: strawberry.ID
    number: str
    country: str
    region: str | None = None
    reason: str | None = None
    valid_from: date
    valid_to: date | None = None


@strawberry.input
class TaxCertificateIdInput:
    id: strawberry.ID


@strawberry.type
class TaxPayload:
    customer: Customer | None
    certificate: TaxExemptionCertificate | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


async def _payload(info: Info, cert_id: int | None, customer_id: int | None) -> TaxPayload:
    ctx = info.context.fresh()
    cert = await ctx.loader(tax_q.certificates_by_id).load(cert_id) if cert_id else None
    cid = customer_id or (cert.customer_id if cert else None)
    row = await ctx.loader(customer_q.customers_by_id).load(cid) if cid else None
    return TaxPayload(
        customer=build("Customer", row), certificate=build("TaxExemptionCertificate", cert)
    )


@strawberry.type
class TaxMutations:
    @strawberry.mutation(description="Set a customer's tax status and code.")
    async def customer_set_tax_status(self, info: Info, input: TaxStatusInput) -> TaxPayload:
        viewer_of(info)
        try:
            cid = decode_id(input.customer_id, "Customer", "customerId")
            await q.set_status(info.context, cid, input.status, input.tax_code)
        except Refused as refused:
            return refused_payload(TaxPayload, refused)
        return await _payload(info, None, cid)

    @strawberry.mutation(description="Record an exemption certificate.")
    async def tax_exemption_certificate_add(
        self, info: Info, input: TaxCertificateInput
    ) -> TaxPayload:
        viewer_of(info)
        try:
            cid = decode_id(input.customer_id, "Customer", "customerId")
            cert = await q.add_certificate(
                info.context,
                cid,
                input.number,
                input.country,
                input.region,
                input.reason,
                input.valid_from,
                input.valid_to,
            )
        except Refused as refused:
            return refused_payload(TaxPayload, refused)
        return await _payload(info, cert, cid)

    @strawberry.mutation(description="Revoke an exemption certificate.")
    async def tax_exemption_certificate_revoke(
        self, info: Info, input: TaxCertificateIdInput
    ) -> TaxPayload:
        viewer_of(info)
        try:
            cert = await q.revoke_certificate(
                info.context, decode_id(input.id, "TaxExemptionCertificate", "id")
            )
        except Refused as refused:
            return refused_payload(TaxPayload, refused)
        return await _payload(info, cert, None)


@strawberry.type(description="Whether a customer is exempt from tax in a region on a date.")
class TaxDetermination:
    exempt: bool
    reason: str = strawberry.field(
        description="TAX_STATUS (the customer is exempt), CERTIFICATE (a valid exemption "
        "certificate covers the region and date) or NONE."
    )
    tax_code: str | None
    certificate: TaxExemptionCertificate | None


@strawberry.type
class TaxQueries:
    @strawberry.field(description="The rule orders use to decide whether to charge tax.")
    async def tax_determination(
        self,
        info: Info,
        customer_id: strawberry.ID,
        region: Annotated[
            str, strawberry.argument(description="A country (FR) or subdivision (US-CA).")
        ],
        on: date | None = None,
    ) -> TaxDetermination | None:
        viewer_of(info)
        ctx = info.context
        pk = decode_id(customer_id, "Customer", "customerId")
        row = await ctx.loader(customer_q.customers_by_id).load(pk)
        if row is None:
            return None
        country, subdivision = tax_q.region_of(region)
        result = await tax_q.determine(ctx, row, country, subdivision, on or date.today())
        return TaxDetermination(
            exempt=result.exempt,
            reason=result.reason,
            tax_code=result.tax_code,
            certificate=build("TaxExemptionCertificate", result.certificate),
        )
