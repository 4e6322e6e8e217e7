"""Admin-defined custom fields; typed value columns so values index and range-filter."""

from datetime import date, datetime
from decimal import Decimal

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
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, updated_at
from models.enums import CustomFieldType


class CustomFieldDefinition(Base):
    __tablename__ = "custom_field_definition"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    label: Mapped[str] = mapped_column(Text)
    help_text: Mapped[str | None] = mapped_column(Text)
    type: Mapped[CustomFieldType] = mapped_column(Enum(CustomFieldType, name="custom_field_type"))
    options: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    required: Mapped[bool] = mapped_column(server_default="false")
    archived: Mapped[bool] = mapped_column(server_default="false")
    position: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        CheckConstraint("key ~ '^[a-z][a-z0-9_]{0,62}$'", name="key_format"),
        CheckConstraint("(type = 'SELECT') = (options IS NOT NULL)", name="select_has_options"),
    )


class CustomFieldValue(Base):
    __tablename__ = "custom_field_value"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    definition_id: Mapped[int] = mapped_column(
        ForeignKey("custom_field_definition.id", ondelete="CASCADE"), primary_key=True
    )
    text_value: Mapped[str | None] = mapped_column(Text)
    number_value: Mapped[Decimal | None] = mapped_column(Numeric)
    boolean_value: Mapped[bool | None]
    date_value: Mapped[date | None]
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        CheckConstraint(
            "num_nonnulls(text_value, number_value, boolean_value, date_value) = 1",
            name="one_value",
        ),
        # customer_id last: a custom-field filter reads its customer ids from the index
        # alone (migration 0018).
        Index("ix_cfv_text", "definition_id", "text_value", "customer_id"),
        Index("ix_cfv_number", "definition_id", "number_value", "customer_id"),
        Index("ix_cfv_date", "definition_id", "date_value", "customer_id"),
        Index("ix_cfv_boolean", "definition_id", "boolean_value", "customer_id"),
    )
