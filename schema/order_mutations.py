"""Order mutations: orderCreate (staff), checkout, orderCancel, orderRefund."""

from decimal import Decimal

import strawberry
from strawberry.types import Info

from resolvers import order_mutations as q
from resolvers import orders as order_q
from resolvers.children import child_by_id
from resolvers.context import viewer_of
from resolvers.global_ids import decode_id
from resolvers.mutations import Refused
from schema.base import build
from schema.errors import UserError, refused_payload
from schema.orders import Order


@strawberry.input
class OrderLineInput:
    sku: str | None = None
    description: str
    quantity: int = 1
    unit_price: Decimal = strawberry.field(description="Before tax, in the order's currency.")


@strawberry.input
class OrderCreateInput:
    customer_id: strawberry.ID
    currency: str
    lines: list[OrderLineInput]
    shipping_total: Decimal | None = None
    sales_channel_id: strawberry.ID | None = None
    shipping_address_id: strawberry.ID | None = strawberry.field(
        default=None, description="One of the customer's addresses; its country sets the tax."
    )
    idempotency_key: str | None = strawberry.field(
        default=None, description="Retry safely: the same key and input create one order."
    )


@strawberry.input
class CheckoutAddressInput:
    name: str | None = None
    company: str | None = None
    line1: str
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str


@strawberry.input(
    description="A storefront checkout: the customer is found (or created) by "
    "email. The card is charged by the processor; send its token only."
)
class CheckoutInput:
    email: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    shipping_address: CheckoutAddressInput
    currency: str
    lines: list[OrderLineInput]
    shipping_total: Decimal | None = None
    sales_channel_id: strawberry.ID | None = None
    payment_token: str
    idempotency_key: str | None = None


@strawberry.input
class OrderCancelInput:
    order_id: strawberry.ID
    reason: str | None = None


@strawberry.input
class OrderRefundInput:
    order_id: strawberry.ID
    amount: Decimal | None = strawberry.field(
        default=None, description="Omit to refund everything still refundable."
    )
    idempotency_key: str | None = None


@strawberry.type
class OrderPayload:
    order: Order | None
    user_errors: list[UserError]


def _lines(lines: list[OrderLineInput]) -> list[q.LineIn]:
    return [q.LineIn(x.sku, x.description, x.quantity, x.unit_price) for x in lines]


def _channel(raw: strawberry.ID | None) -> int | None:
    return decode_id(raw, "SalesChannel", "salesChannelId") if raw is not None else None


async def _payload(info: Info, order_id: int) -> OrderPayload:
    row = await info.context.fresh().loader(child_by_id, order_q.order).load(order_id)
    return OrderPayload(order=build("Order", row), user_errors=[])


@strawberry.type
class OrderMutations:
    @strawberry.mutation(description="An order entered by staff: charged, not yet paid.")
    async def order_create(self, info: Info, input: OrderCreateInput) -> OrderPayload:
        viewer_of(info)
        try:
            oid = await q.create_order(
                info.context,
                decode_id(input.customer_id, "Customer", "customerId"),
                input.currency,
                _lines(input.lines),
                input.shipping_total,
                _channel(input.sales_channel_id),
                decode_id(input.shipping_address_id, "Address", "shippingAddressId")
                if input.shipping_address_id
                else None,
                input.idempotency_key,
            )
        except Refused as refused:
            return refused_payload(OrderPayload, refused)
        return await _payload(info, oid)

    @strawberry.mutation(description="Customer, address, paid order and ledger in one step.")
    async def checkout(self, info: Info, input: CheckoutInput) -> OrderPayload:
        viewer_of(info)
        try:
            address = {
                k: getattr(input.shipping_address, k)
                for k in (
                    "name",
                    "company",
                    "line1",
                    "line2",
                    "city",
                    "region",
                    "postal_code",
                    "country",
                )
            }
            oid = await q.checkout(
                info.context,
                q.CheckoutIn(
                    input.email,
                    input.first_name,
                    input.last_name,
                    input.phone,
                    address,
                    input.currency,
                    _lines(input.lines),
                    input.shipping_total,
                    _channel(input.sales_channel_id),
                    input.payment_token,
                    input.idempotency_key,
                ),
            )
        except Refused as refused:
            return refused_payload(OrderPayload, refused)
        return await _payload(info, oid)

    @strawberry.mutation(description="Cancel an unpaid order; its charge is reversed.")
    async def order_cancel(self, info: Info, input: OrderCancelInput) -> OrderPayload:
        viewer_of(info)
        try:
            oid = await q.cancel(
                info.context, decode_id(input.order_id, "Order", "orderId"), input.reason
            )
        except Refused as refused:
            return refused_payload(OrderPayload, refused)
        return await _payload(info, oid)

    @strawberry.mutation(description="Refund part or all of what was paid, never more.")
    async def order_refund(self, info: Info, input: OrderRefundInput) -> OrderPayload:
        viewer_of(info)
        try:
            oid = await q.refund(
                info.context,
                decode_id(input.order_id, "Order", "orderId"),
                input.amount,
                input.idempotency_key,
            )
        except Refused as refused:
            return refused_payload(OrderPayload, refused)
        return await _payload(info, oid)
