"""The Customer type, its nested relations, and the customer root fields."""

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers import accounts as account_q
from resolvers import addresses as address_q
from resolvers import custom_fields as custom_field_q
from resolvers import customers as q
from resolvers import ledger as ledger_q
from resolvers import orders as order_q
from resolvers import sales_channels as channel_q
from resolvers import saved_searches as saved_search_q
from resolvers import search as search_q
from resolvers import timeline as timeline_q
from resolvers import users as user_q
from resolvers.context import viewer_of
from resolvers.errors import BadUserInput
from resolvers.global_ids import decode_id
from resolvers.loading import count
from resolvers.pagination import NESTED_PAGING, PageArgs
from resolvers.relations import ChildConnection
from schema.accounts import Account
from schema.addresses import Address
from schema.base import Money, build, build_all, from_row, node_resolver, registered
from schema.consent import MarketingConsent, consent_of
from schema.custom_fields import CustomFieldValue
from schema.enums import CustomerKind, CustomerOrderField, CustomerStatus, OrderDirection
from schema.ledger import LedgerTransaction
from schema.orders import Order
from schema.pagination import Connection, connection
from schema.sales_channels import SalesChannel
from schema.saved_searches import SavedSearch, saved_search_of
from schema.search import CustomerFilter, criteria_of, saved_search_where
from schema.tax import TaxStatus
from schema.timeline import TimelineEvent
from schema.users import User

Private = strawberry.Private


async def _children(info: Info, relation: ChildConnection, type_name: str, key: int, args):
    """A nested connection: this customer's page comes from one batched LATERAL statement."""
    ctx = info.context
    page = await ctx.loader(relation.pages, args).load(key)
    return Connection.of(
        page,
        lambda row: build(type_name, row),
        lambda: ctx.loader(relation.counts).load(key),
    )


@registered
@strawberry.type(description="An individual or a business that buys from the business.")
class Customer(relay.Node):
    id: relay.NodeID[int]
    number: str = strawberry.field(description="Human-facing number, e.g. C-000042.")
    kind: CustomerKind
    first_name: str | None
    last_name: str | None
    company_name: str | None
    email: str | None
    phone: str | None = strawberry.field(description="E.164, e.g. +14155550100.")
    reference_id: str | None = strawberry.field(description='"Other ID" from an import.')
    status: CustomerStatus
    note: str | None
    tags: list[str] = strawberry.field(
        description="Labels, sorted without regard to case (customerTagsAdd/Remove)."
    )
    version: int = strawberry.field(description="Send it back as expectedVersion on update.")
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None = strawberry.field(
        description="When a privacy request erased its personal data (status ERASED, or "
        "MERGED into an erased customer); null otherwise."
    )
    account_id: Private[int | None]
    sales_rep_id: Private[int | None]
    merged_into_id: Private[int | None]
    tax_kind: Private[str]
    tax_code: Private[str | None]
    email_marketing_state: Private[str]
    email_marketing_opt_in_level: Private[str | None]
    email_marketing_updated_at: Private[datetime | None]
    email_marketing_source: Private[str | None]
    sms_marketing_state: Private[str]
    sms_marketing_opt_in_level: Private[str | None]
    sms_marketing_updated_at: Private[datetime | None]
    sms_marketing_source: Private[str | None]

    __columns__ = {"tax_kind": "tax_status"}

    resolve_nodes = node_resolver(q.customers_by_id)

    # A computed column (resolvers.customers.DISPLAY_NAME): one SQL expression for both paths.
    display_name: str = strawberry.field(
        description="Company for a business, else first and last name (else the company, "
        "the email or the number)."
    )

    @strawberry.field(description="Consent to marketing email.")
    def email_marketing(self) -> MarketingConsent:
        return consent_of(self, "email")

    @strawberry.field(description="Consent to marketing SMS (needs a phone number).")
    def sms_marketing(self) -> MarketingConsent:
        return consent_of(self, "sms")

    @strawberry.field(
        description="Which of your saved searches (and the shared ones) this customer is in."
    )
    async def saved_searches(self, info: Info) -> list[SavedSearch]:
        loader = info.context.loader(saved_search_q.searches_of_customers, criteria_of)
        return [saved_search_of(r) for r in await loader.load(self.id)]

    @strawberry.field(description="The billing account, if the customer has one.")
    async def account(self, info: Info) -> Account | None:
        row = await account_q.CUSTOMER_ACCOUNT.load(info.context, self.account_id)
        return build("Account", row)

    @strawberry.field
    async def sales_rep(self, info: Info) -> User | None:
        return build("User", await user_q.SALES_REP.load(info.context, self.sales_rep_id))

    @strawberry.field(description="The surviving customer, when this one was merged into it.")
    async def merged_into(self, info: Info) -> "Customer | None":
        return build("Customer", await q.MERGED_INTO.load(info.context, self.merged_into_id))

    @strawberry.field
    async def sales_channels(self, info: Info) -> list[SalesChannel]:
        rows = await info.context.loader(channel_q.CUSTOMER_CHANNELS.batch).load(self.id)
        return build_all("SalesChannel", rows)

    @strawberry.field(
        description=f"Addresses, defaults first: the first {address_q.ADDRESSES_CAP}, at most."
    )
    async def addresses(self, info: Info) -> list[Address]:
        rows = await info.context.loader(address_q.ADDRESSES.batch).load(self.id)
        return build_all("Address", rows)

    @connection("Orders, newest first.", NESTED_PAGING)
    async def orders(
        self,
        info: Info,
        page: PageArgs,
    ) -> Connection[Order]:
        return await _children(info, order_q.ORDERS, "Order", self.id, page)

    @connection("Ledger entries, newest first.", NESTED_PAGING)
    async def ledger_transactions(
        self,
        info: Info,
        page: PageArgs,
    ) -> Connection[LedgerTransaction]:
        return await _children(info, ledger_q.ENTRIES, "LedgerTransaction", self.id, page)

    @strawberry.field(description="Balance per currency (positive: the customer owes).")
    async def balances(self, info: Info) -> list[Money]:
        rows = await info.context.loader(ledger_q.BALANCES.batch).load(self.id)
        return [from_row(Money, r) for r in rows]

    @strawberry.field(description="Values of the custom fields an administrator defined.")
    async def custom_fields(self, info: Info) -> list[CustomFieldValue]:
        rows = await info.context.loader(custom_field_q.VALUES.batch).load(self.id)
        return build_all("CustomFieldValue", rows)

    @strawberry.field
    def tax_status(self) -> TaxStatus:
        return TaxStatus(**q.TAX_STATUS.values(self))

    @connection("What happened to this customer, newest first.", NESTED_PAGING)
    async def timeline(
        self,
        info: Info,
        page: PageArgs,
    ) -> Connection[TimelineEvent]:
        return await _children(info, timeline_q.EVENTS, "TimelineEvent", self.id, page)


@strawberry.input
class CustomerOrder:
    field: CustomerOrderField = CustomerOrderField.NAME
    direction: OrderDirection = OrderDirection.ASC


def _given(value: Any) -> Any:
    return None if value is strawberry.UNSET else value


@strawberry.input(
    one_of=True,
    description="Exactly one way to name a customer: its global ID, number or email.",
)
class CustomerLookup:
    id: strawberry.ID | None = strawberry.UNSET
    number: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET


USE_BY = "Use `by: {id | number | email}` (a @oneOf input: one of them, checked by the schema)."


@strawberry.type
class CustomerQueries:
    @strawberry.field(
        description='One customer by global ID, number or email: `by: {number: "C-000042"}`'
        " (or the older arguments, exactly one)."
    )
    async def customer(
        self,
        info: Info,
        by: CustomerLookup | None = None,
        id: Annotated[strawberry.ID | None, strawberry.argument(deprecation_reason=USE_BY)] = None,
        number: Annotated[str | None, strawberry.argument(deprecation_reason=USE_BY)] = None,
        email: Annotated[str | None, strawberry.argument(deprecation_reason=USE_BY)] = None,
    ) -> Customer | None:
        viewer_of(info)
        if by is not None:
            if any(v is not None for v in (id, number, email)):
                raise BadUserInput("Pass 'by' alone, not with 'id', 'number' or 'email'.")
            id, number, email = (_given(by.id), _given(by.number), _given(by.email))
        if sum(v is not None for v in (id, number, email)) != 1:
            raise BadUserInput("Pass exactly one of 'id', 'number' or 'email'.")
        pk = decode_id(id, "Customer", "id") if id is not None else None
        row = await q.customer_by(info.context, pk=pk, number=number, email=email)
        return build("Customer", row)

    @connection("Customers, keyset-paginated: live ones, or those matching `filter`.")
    async def customers(
        self,
        info: Info,
        page: PageArgs,
        order_by: CustomerOrder | None = None,
        filter: CustomerFilter | None = None,
        saved_search: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="A saved search's filter (AND `filter`, if given)."),
        ] = None,
    ) -> Connection[Customer]:
        viewer_of(info)
        ctx = info.context
        order_by = order_by or CustomerOrder()
        base = await search_q.filtered_customers(ctx, filter.criteria()) if filter else None
        if saved_search is not None:
            where = await saved_search_where(info, saved_search)
            base = (q.visible_customers(ctx) if base is None else base).where(*where)
        found, base = await q.customer_page(
            ctx, page, order_by.field, order_by.direction == OrderDirection.DESC, base
        )
        return Connection.of(found, lambda r: build("Customer", r), lambda: count(ctx, base))
