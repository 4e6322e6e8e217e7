"""Orders (checkout or admin) with lines and totals."""

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import orders as q
from resolvers import sales_channels as channel_q
from resolvers.children import child_by_id
from resolvers.context import viewer_of
from resolvers.errors import BadUserInput
from resolvers.global_ids import decode_id
from schema.base import build, build_all, money_field, node_resolver, registered
from schema.enums import OrderSource, OrderStatus
from schema.sales_channels import SalesChannel

if TYPE_CHECKING:
    from schema.customers import Customer

Private = strawberry.Private


def _rate(value: Decimal) -> Decimal:
    """0.100000 -> 0.1 (the compiled path prints trim_scale(tax_rate))."""
    return value.normalize() if value else Decimal(0)


@registered
@strawberry.type(description="One line of an order; money in the order's currency.")
class OrderLine(relay.Node):
    id: relay.NodeID[int]
    position: int
    sku: str | None
    description: str
    quantity: int
    rate: Private[Decimal]
    unit_price: Private[Decimal]
    line_total: Private[Decimal]
    currency: Private[str]

    resolve_nodes = node_resolver(q.lines_by_id)
    __columns__ = {"rate": "tax_rate"}

    @strawberry.field(
        description="The tax rate as a fraction, written as a person writes it: 0.0725 for "
        "7.25 %, 0.1 for 10 %, 0 when untaxed (no trailing zeros)."
    )
    def tax_rate(self) -> Decimal:
        return _rate(self.rate)

    unit_price_money = money_field("unit_price", "Price of one unit, before tax.")
    line_total_money = money_field("line_total", "Unit price times quantity, before tax.")


@registered
@strawberry.type(description="An order placed at checkout or created by an administrator.")
class Order(relay.Node):
    id: relay.NodeID[int]
    number: str
    status: OrderStatus
    source: OrderSource
    currency: str
    shipping_address: JSON | None = strawberry.field(
        description="Snapshot of the address the order shipped to."
    )
    placed_at: datetime
    created_at: datetime
    updated_at: datetime
    customer_id: Private[int]
    sales_channel_id: Private[int | None]
    subtotal: Private[Decimal]
    tax_total: Private[Decimal]
    shipping_total: Private[Decimal]
    total: Private[Decimal]
    amount_paid: Private[Decimal]
    amount_refunded: Private[Decimal]

    resolve_nodes = node_resolver(child_by_id, q.order)
    subtotal_money = money_field("subtotal", "Sum of the lines, before tax and shipping.")
    tax_total_money = money_field("tax_total", "Tax on the order.")
    shipping_total_money = money_field("shipping_total", "Shipping charged.")
    total_money = money_field("total", "Subtotal plus tax plus shipping.")
    amount_paid_money = money_field("amount_paid", "Paid so far.")
    amount_refunded_money = money_field("amount_refunded", "Refunded so far.")

    @strawberry.field(description=f"The lines, as placed: at most {q.MAX_LINES}.")
    async def lines(self, info: Info) -> list[OrderLine]:
        return build_all("OrderLine", await info.context.loader(q.LINES.batch).load(self.id))

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated["Customer", strawberry.lazy("schema.customers")] | None:
        return build("Customer", await customer_q.OWNER.load(info.context, self.customer_id))

    @strawberry.field
    async def sales_channel(self, info: Info) -> SalesChannel | None:
        row = await channel_q.ORDER_CHANNEL.load(info.context, self.sales_channel_id)
        return build("SalesChannel", row)


@strawberry.input(one_of=True, description="Exactly one way to name an order: ID or number.")
class OrderLookup:
    id: strawberry.ID | None = strawberry.UNSET
    number: str | None = strawberry.UNSET


USE_BY = "Use `by: {id | number}` (a @oneOf input: one of them, checked by the schema)."


@strawberry.type
class OrderQueries:
    @strawberry.field(
        description='One order by global ID or number: `by: {number: "O-000007"}` (or the'
        " older arguments, exactly one)."
    )
    async def order(
        self,
        info: Info,
        by: OrderLookup | None = None,
        id: Annotated[strawberry.ID | None, strawberry.argument(deprecation_reason=USE_BY)] = None,
        number: Annotated[str | None, strawberry.argument(deprecation_reason=USE_BY)] = None,
    ) -> Order | None:
        viewer_of(info)
        if by is not None:
            if id is not None or number is not None:
                raise BadUserInput("Pass 'by' alone, not with 'id' or 'number'.")
            id = None if by.id is strawberry.UNSET else by.id
            number = None if by.number is strawberry.UNSET else by.number
        if (id is None) == (number is None):
            raise BadUserInput("Pass exactly one of 'id' or 'number'.")
        if id is not None:
            row = await info.context.loader(child_by_id, q.order).load(decode_id(id, "Order", "id"))
        else:
            row = await q.order_by_number(info.context, number)
        return build("Order", row)
