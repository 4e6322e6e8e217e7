"""Tax status and exemption certificates."""

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import tax as q
from schema.base import build, build_all, node_resolver, registered
from schema.enums import TaxStatusKind

if TYPE_CHECKING:
    from schema.customers import Customer


@registered
@strawberry.type(description="A certificate exempting a customer from tax in a region.")
class TaxExemptionCertificate(relay.Node):
    id: relay.NodeID[int]
    number: str
    country: str
    region: str | None
    reason: str | None
    valid_from: date
    valid_to: date | None
    revoked_at: datetime | None
    created_at: datetime
    customer_id: strawberry.Private[int]

    resolve_nodes = node_resolver(q.certificates_by_id)

    # A computed column (resolvers.tax.IS_VALID): one SQL expression for both paths.
    is_valid: bool = strawberry.field(description="Valid today: started, not expired, not revoked.")

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated["Customer", strawberry.lazy("schema.customers")] | None:
        return build("Customer", await customer_q.OWNER.load(info.context, self.customer_id))


@strawberry.type(description="How a customer is taxed.")
class TaxStatus:
    status: TaxStatusKind
    tax_code: str | None
    customer_id: strawberry.Private[int]

    @strawberry.field(
        description="Exemption certificates, newest first: the first "
        f"{q.CERTIFICATES_CAP}, at most."
    )
    async def exemption_certificates(self, info: Info) -> list[TaxExemptionCertificate]:
        rows = await info.context.loader(q.CERTIFICATES.batch).load(self.customer_id)
        return build_all("TaxExemptionCertificate", rows)
