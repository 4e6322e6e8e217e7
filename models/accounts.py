"""Billing accounts and their payment methods (processor tokens only, never card numbers)."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import CITEXT
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, number_column, updated_at


class Account(Base):
    __tablename__ = "account"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    number: Mapped[str] = number_column("A", "account_number_seq")
    name: Mapped[str] = mapped_column(Text)
    billing_contact_name: Mapped[str | None] = mapped_column(Text)
    billing_email: Mapped[str | None] = mapped_column(CITEXT)
    billing_phone: Mapped[str | None] = mapped_column(Text)
    billing_line1: Mapped[str | None] = mapped_column(Text)
    billing_line2: Mapped[str | None] = mapped_column(Text)
    billing_city: Mapped[str | None] = mapped_column(Text)
    billing_region: Mapped[str | None] = mapped_column(Text)
    billing_postal_code: Mapped[str | None] = mapped_column(Text)
    billing_country: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        CheckConstraint("billing_country ~ '^[A-Z]{2}$'", name="billing_country_iso"),
        # Account-mode search matches the account name case/accent-insensitively.
        Index("ix_account_name_fold", text("cg_fold(name)")),
        Index("ix_account_name_trgm", text("cg_fold(name) gin_trgm_ops"), postgresql_using="gin"),
    )


class PaymentMethod(Base):
    __tablename__ = "payment_method"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    processor: Mapped[str] = mapped_column(Text)
    token: Mapped[str] = mapped_column(Text)
    brand: Mapped[str | None] = mapped_column(Text)
    last4: Mapped[str | None] = mapped_column(Text)
    exp_month: Mapped[int | None] = mapped_column(SmallInteger)
    exp_year: Mapped[int | None] = mapped_column(SmallInteger)
    is_default: Mapped[bool] = mapped_column(server_default="false")
    created_at: Mapped[datetime] = created_at()

    __table_args__ = (
        CheckConstraint("last4 ~ '^[0-9]{4}$'", name="last4_digits"),
        CheckConstraint("exp_month BETWEEN 1 AND 12", name="exp_month_range"),
        CheckConstraint("exp_year BETWEEN 2000 AND 2200", name="exp_year_range"),
        # A processor token is 'tok_…'-like; 13+ bare digits would be a card number.
        CheckConstraint("token !~ '^[0-9 -]{13,}$'", name="token_not_pan"),
    )
