"""Ledger entries (append-only) and balances."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import orders as order_q
from resolvers.children import child_by_id
from resolvers.ledger import ledger
from schema.base import build, money_field, node_resolver, registered
from schema.enums import LedgerKind

if TYPE_CHECKING:
    from schema.customers import Customer
    from schema.orders import Order

Private = strawberry.Private


@registered
@strawberry.type(description="One money movement on a customer's account. Never changed.")
class LedgerTransaction(relay.Node):
    id: relay.NodeID[int]
    kind: LedgerKind
    transfer_group: uuid.UUID | None
    memo: str | None
    created_at: datetime
    amount: Private[Decimal]
    balance_after: Private[Decimal]
    currency: Private[str]
    customer_id: Private[int]
    order_id: Private[int | None]

    resolve_nodes = node_resolver(child_by_id, ledger)
    amount_money = money_field("amount", "Signed: positive raises what the customer owes.")
    balance_after_money = money_field(
        "balance_after", "The customer's balance in this currency after this entry."
    )

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated["Customer", strawberry.lazy("schema.customers")] | None:
        return build("Customer", await customer_q.OWNER.load(info.context, self.customer_id))

    @strawberry.field
    async def order(
        self, info: Info
    ) -> Annotated["Order", strawberry.lazy("schema.orders")] | None:
        return build("Order", await order_q.LEDGER_ORDER.load(info.context, self.order_id))
