"""Declarative base shared by every table; naming convention keeps Alembic diffs stable."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, MetaData, Numeric, Text, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Money is exact: numeric(14,2) next to a char(3) ISO-4217 currency, never float.
MONEY = Numeric(14, 2)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True), Decimal: MONEY}


def created_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


def updated_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now(), onupdate=func.now())


def number_column(prefix: str, sequence: str) -> Mapped[str]:
    """Human-facing numbers (C-000042) drawn from a sequence: race-free, never reused."""
    return mapped_column(
        Text,
        unique=True,
        # cg_number pads to six digits and keeps longer numbers whole (migration 0007).
        server_default=text(f"cg_number('{prefix}', nextval('{sequence}'))"),
    )
