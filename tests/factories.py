"""Direct inserts for arranging test data (Core SQL; the API under test does the reading)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from models import (
    Account,
    Address,
    AppUser,
    Customer,
    CustomerSalesChannel,
    CustomFieldDefinition,
    CustomFieldValue,
    LedgerTransaction,
    Order,
    OrderLine,
    PaymentMethod,
    SalesChannel,
    TaxExemptionCertificate,
    TimelineEvent,
)
from resolvers.tokens import issue_token

T0 = datetime(2025, 1, 1, tzinfo=UTC)


async def insert_row(engine: AsyncEngine, model: type, **values: Any) -> Any:
    table = model.__table__
    async with engine.begin() as conn:
        return (await conn.execute(insert(table).values(**values).returning(table))).one()


async def make_user(
    engine: AsyncEngine, *, role: str = "ADMIN", email: str, **kw: Any
) -> tuple[int, str]:
    row = await insert_row(engine, AppUser, email=email, role=role, **kw)
    return row.id, await issue_token(engine, row.id)


async def make_customer(engine: AsyncEngine, **kw: Any) -> Any:
    kw.setdefault("first_name", "Ada")
    kw.setdefault("last_name", "Lovelace")
    return await insert_row(engine, Customer, **kw)


async def make_address(engine: AsyncEngine, customer_id: int, **kw: Any) -> Any:
    values = dict(kind="SHIPPING", line1="1 Main St", city="Springfield", country="US")
    return await insert_row(engine, Address, customer_id=customer_id, **(values | kw))


async def make_order(
    engine: AsyncEngine, customer_id: int, *, lines: int = 2, placed_at: datetime | None = None
) -> Any:
    unit = Decimal("10.00")
    subtotal = unit * sum(range(1, lines + 1))
    tax = (subtotal * Decimal("0.10")).quantize(Decimal("0.01"))
    order = await insert_row(
        engine,
        Order,
        customer_id=customer_id,
        source="ADMIN",
        currency="USD",
        subtotal=subtotal,
        tax_total=tax,
        shipping_total=Decimal("0"),
        total=subtotal + tax,
        placed_at=placed_at or T0,
    )
    for i in range(1, lines + 1):
        await insert_row(
            engine,
            OrderLine,
            order_id=order.id,
            customer_id=customer_id,
            position=i,
            sku=f"SKU-{i}",
            description=f"Item {i}",
            quantity=i,
            unit_price=unit,
            line_total=unit * i,
        )
    return order


async def make_ledger(
    engine: AsyncEngine, customer_id: int, amounts: list[str], currency: str = "USD"
) -> list[Any]:
    """Append entries with exact running balances (as the write side will)."""
    table = LedgerTransaction.__table__
    async with engine.connect() as conn:
        last = (
            await conn.execute(
                select(table.c.balance_after)
                .where(table.c.customer_id == customer_id, table.c.currency == currency)
                .order_by(table.c.id.desc())
                .limit(1)
            )
        ).scalar()
    balance = last or Decimal("0")
    rows = []
    for raw in amounts:
        amount = Decimal(raw)
        balance += amount
        kind = "CHARGE" if amount > 0 else "PAYMENT"
        rows.append(
            await insert_row(
                engine,
                LedgerTransaction,
                customer_id=customer_id,
                kind=kind,
                amount=amount,
                currency=currency,
                balance_after=balance,
            )
        )
    return rows


async def make_sales_channel(engine: AsyncEngine, code: str, name: str | None = None) -> Any:
    return await insert_row(engine, SalesChannel, code=code, name=name or code.title())


async def link_channel(engine: AsyncEngine, customer_id: int, channel_id: int) -> None:
    await insert_row(
        engine, CustomerSalesChannel, customer_id=customer_id, sales_channel_id=channel_id
    )


async def make_account(engine: AsyncEngine, **kw: Any) -> Any:
    values = dict(
        name="Acme Corp",
        billing_contact_name="Wile E.",
        billing_email="billing@acme.test",
        billing_line1="1 Desert Rd",
        billing_city="Phoenix",
        billing_region="AZ",
        billing_postal_code="85001",
        billing_country="US",
    )
    return await insert_row(engine, Account, **(values | kw))


async def make_payment_method(engine: AsyncEngine, account_id: int, **kw: Any) -> Any:
    values = dict(
        processor="stripe",
        token="tok_visa_123",
        brand="visa",
        last4="4242",
        exp_month=12,
        exp_year=2030,
        is_default=True,
    )
    return await insert_row(engine, PaymentMethod, account_id=account_id, **(values | kw))


async def make_custom_field(engine: AsyncEngine, key: str, type_: str = "TEXT", **kw: Any) -> Any:
    return await insert_row(
        engine,
        CustomFieldDefinition,
        key=key,
        label=key.replace("_", " ").title(),
        type=type_,
        **kw,
    )


async def set_custom_value(engine: AsyncEngine, customer_id: int, definition_id: int, **kw):
    return await insert_row(
        engine, CustomFieldValue, customer_id=customer_id, definition_id=definition_id, **kw
    )


async def make_certificate(engine: AsyncEngine, customer_id: int, **kw: Any) -> Any:
    values = dict(
        number="EX-1",
        country="US",
        region="CA",
        reason="Resale",
        valid_from=date(2024, 1, 1),
        valid_to=date.today() + timedelta(days=365),
    )
    return await insert_row(
        engine, TaxExemptionCertificate, customer_id=customer_id, **(values | kw)
    )


async def make_event(engine: AsyncEngine, customer_id: int, kind: str = "NOTE_ADDED", **kw):
    values = dict(summary=f"{kind} happened", data={"n": 1})
    return await insert_row(
        engine, TimelineEvent, customer_id=customer_id, kind=kind, **(values | kw)
    )
