"""Customer addresses: ISO-3166 codes, normalised postal code, one default per kind."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, updated_at
from models.enums import AddressKind


class Address(Base):
    __tablename__ = "address"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    kind: Mapped[AddressKind] = mapped_column(Enum(AddressKind, name="address_kind"))
    is_default: Mapped[bool] = mapped_column(server_default="false")
    name: Mapped[str | None] = mapped_column(Text)
    company: Mapped[str | None] = mapped_column(Text)
    line1: Mapped[str] = mapped_column(Text)
    line2: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(Text)  # ISO 3166-2 subdivision suffix, e.g. "CA"
    postal_code: Mapped[str | None] = mapped_column(Text)
    # Search compares postal codes without case or spaces ("sw1a 1aa" = "SW1A1AA").
    postal_code_norm: Mapped[str | None] = mapped_column(
        Text, Computed("upper(regexp_replace(postal_code, '\\s', '', 'g'))", persisted=True)
    )
    country: Mapped[str] = mapped_column(Text)  # ISO 3166-1 alpha-2
    phone: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        CheckConstraint("country ~ '^[A-Z]{2}$'", name="country_iso"),
        CheckConstraint("region ~ '^[A-Z0-9]{1,3}$'", name="region_iso"),
        # The place included: RefineSearch's states facet reads it from the index alone.
        Index(
            "ix_address_customer_id", "customer_id", "id", postgresql_include=["country", "region"]
        ),
        # One default per kind per customer, enforced by the database.
        Index(
            "uq_address_default_per_kind",
            "customer_id",
            "kind",
            unique=True,
            postgresql_where=text("is_default"),
        ),
        # Country/state filters and the states facet: customer ids read from the index
        # alone, in customer id order (migration 0018).
        Index("ix_address_place", "country", "region", "customer_id"),
        Index("ix_address_city_fold", text("cg_fold(city)")),
        Index("ix_address_postal_code_norm", "postal_code_norm"),
    )
