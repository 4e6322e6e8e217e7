"""Duplicate review: pairs a person has looked at and declared distinct."""

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at


class DuplicateDismissal(Base):
    __tablename__ = "duplicate_dismissal"

    # Stored once per unordered pair: a < b.
    customer_a_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    customer_b_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    dismissed_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="SET NULL")
    )
    dismissed_at: Mapped[datetime] = created_at()

    __table_args__ = (
        CheckConstraint("customer_a_id < customer_b_id", name="ordered_pair"),
        Index("ix_duplicate_dismissal_b", "customer_b_id"),
    )
