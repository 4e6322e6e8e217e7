"""Append-only ledger. A trigger refuses UPDATE, DELETE and TRUNCATE (see the migration)."""

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at
from models.enums import LedgerKind


class LedgerTransaction(Base):
    __tablename__ = "ledger_transaction"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    kind: Mapped[LedgerKind] = mapped_column(Enum(LedgerKind, name="ledger_kind"))
    amount: Mapped[Decimal]  # signed: charges raise what the customer owes
    currency: Mapped[str] = mapped_column(Text)
    balance_after: Mapped[Decimal]
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    transfer_group: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    memo: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()

    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint(
            "(kind IN ('TRANSFER_IN', 'TRANSFER_OUT')) = (transfer_group IS NOT NULL)",
            name="transfer_has_group",
        ),
        # Newest-first per customer; also gives the latest balance_after per currency.
        Index("ix_ledger_customer_id", "customer_id", text("id DESC")),
        Index("ix_ledger_customer_currency", "customer_id", "currency", text("id DESC")),
        Index("ix_ledger_order_id", "order_id"),
        Index("ix_ledger_transfer_group", "transfer_group"),
    )
