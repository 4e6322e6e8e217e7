"""Billing accounts: billing contact, billing address, and payment methods (tokens only)."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers import accounts as q
from resolvers import search as search_q
from resolvers.context import viewer_of
from resolvers.loading import count
from resolvers.pagination import PageArgs
from schema.base import build, build_all, node_resolver, registered
from schema.pagination import Connection, connection
from schema.search import CustomerFilter

if TYPE_CHECKING:
    from schema.customers import Customer

Private = strawberry.Private


@registered
@strawberry.type(
    description="A stored payment method: the processor's token stays server-side; only "
    "brand, last 4 digits and expiry are readable. Never a card number."
)
class PaymentMethod(relay.Node):
    id: relay.NodeID[int]
    processor: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    is_default: bool
    created_at: datetime

    resolve_nodes = node_resolver(q.payment_methods_by_id)


@strawberry.type
class BillingContact:
    name: str | None
    email: str | None
    phone: str | None


@strawberry.type
class BillingAddress:
    line1: str | None
    line2: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None


@registered
@strawberry.type(description="A billing profile shared by one or more customers.")
class Account(relay.Node):
    id: relay.NodeID[int]
    number: str
    name: str
    created_at: datetime
    updated_at: datetime
    billing_contact_name: Private[str | None]
    billing_email: Private[str | None]
    billing_phone: Private[str | None]
    billing_line1: Private[str | None]
    billing_line2: Private[str | None]
    billing_city: Private[str | None]
    billing_region: Private[str | None]
    billing_postal_code: Private[str | None]
    billing_country: Private[str | None]

    resolve_nodes = node_resolver(q.accounts_by_id)

    @strawberry.field
    def billing_contact(self) -> BillingContact:
        return BillingContact(**q.BILLING_CONTACT.values(self))

    @strawberry.field
    def billing_address(self) -> BillingAddress | None:
        values = q.BILLING_ADDRESS.values(self)
        return None if values is None else BillingAddress(**values)

    @strawberry.field(
        description="Payment methods, the default first: the first "
        f"{q.PAYMENT_METHODS_CAP}, at most."
    )
    async def payment_methods(self, info: Info) -> list[PaymentMethod]:
        rows = await info.context.loader(q.PAYMENT_METHODS.batch).load(self.id)
        return build_all("PaymentMethod", rows)

    @strawberry.field(
        description="Customers billed to this account (that you may see): the first "
        f"{q.ACCOUNT_CUSTOMERS_CAP} by id, at most."
    )
    async def customers(
        self, info: Info
    ) -> list[Annotated["Customer", strawberry.lazy("schema.customers")]]:
        rows = await info.context.loader(q.ACCOUNT_CUSTOMERS.batch).load(self.id)
        return build_all("Customer", rows)


@strawberry.type
class AccountQueries:
    @connection(
        "Billing accounts, by number; with `filter`, those with a matching customer "
        "(kind ACCOUNT matches company/number on the account itself)."
    )
    async def accounts(
        self,
        info: Info,
        page: PageArgs,
        filter: CustomerFilter | None = None,
    ) -> Connection[Account]:
        viewer_of(info)
        ctx = info.context
        base = await search_q.filtered_accounts(ctx, filter.criteria()) if filter else None
        found, base = await q.account_page(ctx, page, base)
        return Connection.of(found, lambda r: build("Account", r), lambda: count(ctx, base))
