"""Orders and order lines. Money is numeric(14,2) with the order's currency."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, number_column, updated_at
from models.enums import OrderSource, OrderStatus
from models.types import JsonbDocument


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    number: Mapped[str] = number_column("O", "order_number_seq")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    status: Mapped[OrderStatus] = mapped_column(
        Enum(OrderStatus, name="order_status"), server_default="PLACED"
    )
    source: Mapped[OrderSource] = mapped_column(Enum(OrderSource, name="order_source"))
    sales_channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("sales_channel.id", ondelete="RESTRICT")
    )
    currency: Mapped[str] = mapped_column(Text)
    subtotal: Mapped[Decimal]
    tax_total: Mapped[Decimal]
    shipping_total: Mapped[Decimal] = mapped_column(server_default="0")
    total: Mapped[Decimal]
    amount_paid: Mapped[Decimal] = mapped_column(server_default="0")
    amount_refunded: Mapped[Decimal] = mapped_column(server_default="0")
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JsonbDocument)
    placed_at: Mapped[datetime]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("total = subtotal + tax_total + shipping_total", name="total_adds_up"),
        CheckConstraint("amount_refunded <= amount_paid", name="refund_within_paid"),
        CheckConstraint("subtotal >= 0 AND tax_total >= 0 AND shipping_total >= 0", name="nonneg"),
        # Newest-first per customer: the nested orders connection walks this index.
        Index("ix_orders_customer_placed", "customer_id", text("placed_at DESC"), text("id DESC")),
        Index("ix_orders_sales_channel_id", "sales_channel_id"),
        Index("ix_orders_placed_at", "placed_at", "id"),
    )


class OrderLine(Base):
    __tablename__ = "order_line"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    position: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal]
    # A fraction (0.0725 = 7.25 %), not money: six decimals.
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(7, 6), server_default="0")
    line_total: Mapped[Decimal]

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("line_total = unit_price * quantity", name="line_total_adds_up"),
        CheckConstraint("tax_rate >= 0 AND tax_rate < 1", name="tax_rate_range"),
        Index("ix_order_line_order_id", "order_id", "position"),
        Index("ix_order_line_customer_id", "customer_id"),
    )
