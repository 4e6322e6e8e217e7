"""Orders: created by staff, or at checkout (customer, address, order, ledger, all or nothing);
cancelled while unpaid; refunded up to what was paid.

Totals are computed here with Decimal: line = unit price x quantity; tax = subtotal x the
rate of the shipping country (TAX_RATES; 0 for a tax-exempt customer), rounded half-up to
the cent; total = subtotal + tax + shipping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from models import Address, Order, OrderLine, SalesChannel
from models.enums import OrderStatus, Role
from resolvers import validate
from resolvers.context import Context
from resolvers.customer_mutations import clean_address
from resolvers.customers import customer
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused, transaction
from resolvers.orders import MAX_LINES
from resolvers.scope import scope_children
from resolvers.tax import determine
from resolvers.timeline import record
from resolvers.writes import append, claim_key, lock_customers, store_result

order = Order.__table__
line_table = OrderLine.__table__
address = Address.__table__
channel = SalesChannel.__table__
CENT = Decimal("0.01")
# Standard VAT / sales-tax rates by shipping country (a demo table; real tax needs an engine).
TAX_RATES = {
    "US": Decimal("0.0725"),
    "CA": Decimal("0.13"),
    "GB": Decimal("0.20"),
    "DE": Decimal("0.19"),
    "FR": Decimal("0.20"),
    "AU": Decimal("0.10"),
    "NL": Decimal("0.21"),
    "ES": Decimal("0.21"),
    "IT": Decimal("0.22"),
}


@dataclass
class LineIn:
    sku: str | None
    description: str
    quantity: int
    unit_price: Any


@dataclass
class Totals:
    lines: list[dict]
    subtotal: Decimal
    tax: Decimal
    shipping: Decimal
    total: Decimal
    rate: Decimal


def totals(lines: list[LineIn], shipping: Any, rate: Decimal) -> Totals:
    if not lines:
        raise Refused(Problem(["input", "lines"], UserErrorCode.REQUIRED, "An order needs a line."))
    if len(lines) > MAX_LINES:
        raise Refused(
            Problem(["input", "lines"], UserErrorCode.INVALID, f"At most {MAX_LINES} lines.")
        )
    out = []
    for i, line in enumerate(lines):
        path = ["input", "lines", str(i)]
        if not 1 <= line.quantity <= 100_000:
            raise Refused(
                Problem([*path, "quantity"], UserErrorCode.INVALID, "Quantity 1 to 100,000.")
            )
        if not (line.description or "").strip():
            raise Refused(
                Problem([*path, "description"], UserErrorCode.REQUIRED, "Describe the item.")
            )
        price = validate.money(line.unit_price, [*path, "unitPrice"])
        out.append(
            {
                "position": i + 1,
                "sku": line.sku,
                "description": line.description.strip(),
                "quantity": line.quantity,
                "unit_price": price,
                "tax_rate": rate,
                "line_total": price * line.quantity,
            }
        )
    subtotal = sum((x["line_total"] for x in out), Decimal("0.00"))
    ship = Decimal("0.00")
    if shipping is not None and Decimal(str(shipping)) != 0:
        ship = validate.money(shipping, ["input", "shippingTotal"])
    tax = (subtotal * rate).quantize(CENT, rounding=ROUND_HALF_UP)
    return Totals(out, subtotal, tax, ship, subtotal + tax + ship, rate)


async def tax_rate(conn, customer_row: Any, country: str | None, region: str | None) -> Decimal:
    """The shipping country's rate, or 0 where taxDetermination says the customer is exempt."""
    if country is None:
        return Decimal(0)
    exempt = await determine(conn, customer_row, country, region, date.today())
    return Decimal(0) if exempt.exempt else TAX_RATES.get(country, Decimal(0))


async def _channel(conn, channel_id: int | None) -> None:
    if (
        channel_id is not None
        and (await conn.execute(select(channel.c.id).where(channel.c.id == channel_id))).first()
        is None
    ):
        raise Refused(
            Problem(["input", "salesChannelId"], UserErrorCode.NOT_FOUND, "No such sales channel.")
        )


async def _insert_order(
    conn,
    ctx: Context,
    customer_id: int,
    source: str,
    currency: str,
    t: Totals,
    *,
    channel_id: int | None,
    ship_to: dict | None,
    paid: bool,
    events: list[Event],
) -> Any:
    row = (
        await conn.execute(
            insert(order)
            .values(
                customer_id=customer_id,
                source=source,
                currency=currency,
                subtotal=t.subtotal,
                tax_total=t.tax,
                shipping_total=t.shipping,
                total=t.total,
                amount_paid=t.total if paid else Decimal(0),
                status=OrderStatus.PAID if paid else OrderStatus.PLACED,
                sales_channel_id=channel_id,
                shipping_address=ship_to,
                placed_at=func.now(),
            )
            .returning(order)
        )
    ).one()
    await conn.execute(
        insert(line_table), [{**x, "order_id": row.id, "customer_id": customer_id} for x in t.lines]
    )
    await append(
        conn,
        ctx,
        customer_id,
        "CHARGE",
        t.total,
        currency,
        order_id=row.id,
        memo=f"Order {row.number}",
    )
    events.append(
        Event(
            customer_id,
            "ORDER_PLACED",
            f"Order {row.number} placed ({source.lower()})",
            {"order": row.number, "total": str(t.total), "currency": currency},
        )
    )
    return row


class Event(NamedTuple):
    customer_id: int
    kind: str
    summary: str
    data: dict


async def _record_all(conn, ctx: Context, events: list[Event]) -> None:
    """Timeline events go last: `record` holds the timeline's commit-order lock until
    commit (see resolvers/timeline.py), so the rest of the use case runs without it."""
    for e in events:
        await record(
            conn, e.customer_id, e.kind, e.summary, actor_id=ctx.viewer.user_id, data=e.data
        )


def _ship_to(row: Any) -> dict | None:
    if row is None:
        return None
    return {
        k: getattr(row, k)
        for k in ("name", "company", "line1", "line2", "city", "region", "postal_code", "country")
    }


async def create_order(
    ctx: Context,
    customer_id: int,
    currency: str,
    lines: list[LineIn],
    shipping: Any,
    channel_id: int | None,
    address_id: int | None,
    key: str | None = None,
) -> int:
    """An order entered by staff (phone order, ad hoc invoice): PLACED, charged, unpaid.
    It writes a CHARGE, so it takes an idempotency key like every money movement."""
    currency = validate.currency(currency, ["input", "currency"])
    validate.refuse_card_numbers([vars(x) for x in lines])
    payload = {
        "customer": customer_id,
        "currency": currency,
        "lines": [vars(x) for x in lines],
        "shipping": shipping,
        "channel": channel_id,
        "address": address_id,
    }
    async with transaction(ctx) as conn:
        stored = await claim_key(conn, ctx, key, "orderCreate", payload)
        if stored is not None:
            return stored["order"]
        rows = await lock_customers(conn, ctx, [customer_id], path=["input", "customerId"])
        await _channel(conn, channel_id)
        ship = None
        if address_id is not None:
            ship = (
                await conn.execute(
                    select(address).where(
                        address.c.id == address_id, address.c.customer_id == customer_id
                    )
                )
            ).first()
            if ship is None:
                raise Refused(
                    Problem(
                        ["input", "shippingAddressId"],
                        UserErrorCode.NOT_FOUND,
                        "No such address of this customer.",
                    )
                )
        rate = await tax_rate(
            conn, rows[customer_id], ship.country if ship else None, ship.region if ship else None
        )
        t = totals(lines, shipping, rate)
        events: list[Event] = []
        row = await _insert_order(
            conn,
            ctx,
            customer_id,
            "ADMIN",
            currency,
            t,
            channel_id=channel_id,
            ship_to=_ship_to(ship),
            paid=False,
            events=events,
        )
        await _record_all(conn, ctx, events)
        await store_result(conn, ctx, key, {"order": row.id})
    return row.id


@dataclass
class CheckoutIn:
    email: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    address: dict[str, Any]
    currency: str
    lines: list[LineIn]
    shipping: Any
    channel_id: int | None
    payment_token: str
    idempotency_key: str | None


async def checkout(ctx: Context, c: CheckoutIn) -> int:
    """Find or create the customer by email, save the address, create the paid order, write
    CHARGE and PAYMENT, record the events: one transaction, so a failure leaves nothing."""
    validate.refuse_card_numbers(vars(c))
    currency = validate.currency(c.currency, ["input", "currency"])
    email = validate.email(c.email, ["input", "email"])
    if email is None:
        raise Refused(
            Problem(["input", "email"], UserErrorCode.REQUIRED, "Check out with an email.")
        )
    if ctx.viewer.role is Role.CUSTOMER and email.lower() != (ctx.viewer.email or "").lower():
        raise Refused(
            Problem(["input", "email"], UserErrorCode.FORBIDDEN, "Check out as yourself.")
        )
    validate.token(c.payment_token, ["input", "paymentToken"])
    addr = clean_address({"kind": "SHIPPING", **c.address})
    phone = validate.phone(c.phone, addr["country"], ["input", "phone"])
    payload = {**vars(c), "lines": [vars(x) for x in c.lines], "idempotency_key": None}
    try:
        async with transaction(ctx) as conn:
            stored = await claim_key(conn, ctx, c.idempotency_key, "checkout", payload)
            if stored is not None:
                return stored["order"]
            events: list[Event] = []
            found = (
                await conn.execute(
                    select(customer.c.id).where(
                        customer.c.email == email, customer.c.status != "MERGED"
                    )
                )
            ).scalar()
            if found is None:
                found = (
                    await conn.execute(
                        insert(customer)
                        .values(
                            email=email,
                            first_name=c.first_name,
                            last_name=c.last_name,
                            phone=phone,
                            sales_rep_id=ctx.viewer.user_id
                            if ctx.viewer.role is Role.SALES_REP
                            else None,
                            user_id=ctx.viewer.user_id
                            if ctx.viewer.role is Role.CUSTOMER
                            else None,
                        )
                        .returning(customer.c.id)
                    )
                ).scalar_one()
                events.append(
                    Event(
                        found,
                        "CUSTOMER_CREATED",
                        "Customer created at checkout",
                        {"source": "checkout"},
                    )
                )
            rows = await lock_customers(
                conn, ctx, [found], path=["input", "email"], self_service=True
            )
            await _channel(conn, c.channel_id)
            same = [
                address.c[k].is_not_distinct_from(addr.get(k))
                for k in ("line1", "line2", "city", "region", "postal_code", "country")
            ]
            saved = (
                await conn.execute(select(address).where(address.c.customer_id == found, *same))
            ).first()
            if saved is None:
                has_default = (
                    await conn.execute(
                        select(address.c.id).where(
                            address.c.customer_id == found,
                            address.c.kind == "SHIPPING",
                            address.c.is_default,
                        )
                    )
                ).first()
                saved = (
                    await conn.execute(
                        insert(address)
                        .values(
                            customer_id=found,
                            is_default=has_default is None,
                            **addr,
                        )
                        .returning(address)
                    )
                ).one()
                events.append(
                    Event(
                        found,
                        "ADDRESS_ADDED",
                        f"Address added: {saved.line1}",
                        {"address": saved.id},
                    )
                )
            rate = await tax_rate(conn, rows[found], saved.country, saved.region)
            t = totals(c.lines, c.shipping, rate)
            row = await _insert_order(
                conn,
                ctx,
                found,
                "CHECKOUT",
                currency,
                t,
                channel_id=c.channel_id,
                ship_to=_ship_to(saved),
                paid=True,
                events=events,
            )
            await append(
                conn,
                ctx,
                found,
                "PAYMENT",
                -t.total,
                currency,
                order_id=row.id,
                # The processor's token stays out of readable memos (like payment methods').
                memo=f"Payment for {row.number}",
                idempotency_key=c.idempotency_key,
            )
            events.append(
                Event(
                    found,
                    "PAYMENT_RECEIVED",
                    f"Payment of {t.total} {currency}",
                    {"order": row.number, "amount": str(t.total), "currency": currency},
                )
            )
            await _record_all(conn, ctx, events)
            await store_result(conn, ctx, c.idempotency_key, {"order": row.id})
    except IntegrityError as exc:  # two checkouts creating the same new customer at once
        raise Refused(
            Problem(
                ["input", "email"],
                UserErrorCode.CONFLICT,
                "Another checkout for this email is in progress; retry.",
            )
        ) from exc
    return row.id


async def _lock_order(conn, ctx: Context, order_id: int) -> Any:
    row = (
        await conn.execute(
            scope_children(select(order), ctx.viewer, order.c.customer_id).where(
                order.c.id == order_id
            )
        )
    ).first()
    if row is None:
        raise Refused(Problem(["input", "orderId"], UserErrorCode.NOT_FOUND, "No such order."))
    await lock_customers(conn, ctx, [row.customer_id], path=["input", "orderId"])
    row = (await conn.execute(select(order).where(order.c.id == order_id))).one()
    return row


async def cancel(ctx: Context, order_id: int, reason: str | None) -> int:
    validate.refuse_card_numbers(reason)
    async with transaction(ctx) as conn:
        row = await _lock_order(conn, ctx, order_id)
        if row.status == OrderStatus.CANCELLED:
            return order_id
        if row.amount_paid > 0:
            raise Refused(
                Problem(
                    ["input", "orderId"],
                    UserErrorCode.CONFLICT,
                    "The order is paid: refund it instead.",
                )
            )
        await conn.execute(
            update(order).where(order.c.id == order_id).values(status=OrderStatus.CANCELLED)
        )
        # The charge is reversed by a new entry: the ledger is never rewritten.
        await append(
            conn,
            ctx,
            row.customer_id,
            "ADJUSTMENT",
            -row.total,
            row.currency,
            order_id=order_id,
            memo=f"Order {row.number} cancelled",
        )
        await record(
            conn,
            row.customer_id,
            "ORDER_CANCELLED",
            f"Order {row.number} cancelled",
            actor_id=ctx.viewer.user_id,
            data={"order": row.number, "reason": reason},
        )
    return order_id


async def refund(ctx: Context, order_id: int, raw_amount: Any, key: str | None) -> int:
    """Refund part or all of what was paid. Two REFUND entries: the charge reversed
    (-amount) and the money paid back (+amount), so the balance is unchanged."""
    # The key is bound to the request as sent: "refund the rest" (no amount) stays the same
    # request on a retry, although the rest is 0 by then.
    requested = None if raw_amount is None else str(raw_amount)
    async with transaction(ctx) as conn:
        row = await _lock_order(conn, ctx, order_id)
        stored = await claim_key(
            conn, ctx, key, "orderRefund", {"order": order_id, "amount": requested}
        )
        if stored is not None:
            return order_id
        refundable = row.amount_paid - row.amount_refunded
        amount = (
            refundable if raw_amount is None else validate.money(raw_amount, ["input", "amount"])
        )
        if amount <= 0 or amount > refundable:
            raise Refused(
                Problem(
                    ["input", "amount"],
                    UserErrorCode.INVALID,
                    f"At most {refundable} {row.currency} can be refunded.",
                )
            )
        for signed, memo in ((-amount, "charge reversed"), (amount, "paid back")):
            await append(
                conn,
                ctx,
                row.customer_id,
                "REFUND",
                signed,
                row.currency,
                order_id=order_id,
                memo=f"Refund on {row.number}: {memo}",
                idempotency_key=key,
            )
        full = row.amount_refunded + amount == row.amount_paid
        await conn.execute(
            update(order)
            .where(order.c.id == order_id)
            .values(
                amount_refunded=order.c.amount_refunded + amount,
                status=OrderStatus.REFUNDED if full else row.status,
            )
        )
        await record(
            conn,
            row.customer_id,
            "ORDER_REFUNDED",
            f"Refunded {amount} {row.currency} on {row.number}",
            actor_id=ctx.viewer.user_id,
            data={"order": row.number, "amount": str(amount)},
        )
        await store_result(conn, ctx, key, {"order": order_id})
    return order_id
