"""The customer aggregate root. Every child table carries customer_id (see docs/architecture.md)."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, CITEXT
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, number_column, updated_at
from models.enums import CustomerKind, CustomerStatus, MarketingState, OptInLevel, TaxStatus

# Sort key for orderBy: NAME ("last first", else the company, else the number), folded so
# case and accents do not matter whatever the database collation. PostgreSQL forbids
# user-defined types (the kind enum, citext) in generated columns, hence text only.
SORT_NAME = (
    "cg_fold(coalesce(nullif(btrim(coalesce(last_name, '') || ' ' || coalesce(first_name, '')),"
    " ''), company_name, number))"
)

# Normalised duplicate-report keys: the expression indexes and resolvers/duplicates.py share them.
EMAIL_KEY = "lower(btrim(email::text))"
NAME_KEY = (
    "cg_fold(regexp_replace(btrim(CASE WHEN kind = 'BUSINESS' AND company_name IS NOT NULL"
    " THEN company_name ELSE coalesce(first_name, '') || ' ' || coalesce(last_name, '') END),"
    " '\\s+', ' ', 'g'))"
)


class Customer(Base):
    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    number: Mapped[str] = number_column("C", "customer_number_seq")
    kind: Mapped[CustomerKind] = mapped_column(
        Enum(CustomerKind, name="customer_kind"), server_default="INDIVIDUAL"
    )
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    company_name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(CITEXT)
    phone: Mapped[str | None] = mapped_column(Text)  # E.164
    phone_digits: Mapped[str | None] = mapped_column(
        Text, Computed("regexp_replace(phone, '[^0-9]', '', 'g')", persisted=True)
    )
    reference_id: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    sales_rep_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), unique=True
    )
    status: Mapped[CustomerStatus] = mapped_column(
        Enum(CustomerStatus, name="customer_status"), server_default="ACTIVE"
    )
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    tax_status: Mapped[TaxStatus] = mapped_column(
        Enum(TaxStatus, name="tax_status"), server_default="TAXABLE"
    )
    tax_code: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    # Labels, sorted case-insensitively (resolvers/tags.py); `tag_keys` are their lower-case
    # forms, what filters and counts compare (GIN-indexed).
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    tag_keys: Mapped[list[str]] = mapped_column(
        ARRAY(Text), Computed("cg_tag_keys(tags)", persisted=True)
    )
    sort_name: Mapped[str] = mapped_column(Text, Computed(SORT_NAME, persisted=True))
    # Marketing consent per channel (resolvers/consent.py): state, how it was given, when,
    # and where from. Every change is also on the timeline.
    email_marketing_state: Mapped[MarketingState] = mapped_column(
        Enum(MarketingState, name="marketing_state"), server_default="NOT_SUBSCRIBED"
    )
    email_marketing_opt_in_level: Mapped[OptInLevel | None] = mapped_column(
        Enum(OptInLevel, name="opt_in_level")
    )
    email_marketing_updated_at: Mapped[datetime | None]
    email_marketing_source: Mapped[str | None] = mapped_column(Text)
    sms_marketing_state: Mapped[MarketingState] = mapped_column(
        Enum(MarketingState, name="marketing_state"), server_default="NOT_SUBSCRIBED"
    )
    sms_marketing_opt_in_level: Mapped[OptInLevel | None] = mapped_column(
        Enum(OptInLevel, name="opt_in_level")
    )
    sms_marketing_updated_at: Mapped[datetime | None]
    sms_marketing_source: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    # Set by customerErase (resolvers/privacy.py): personal data pseudonymised, for good.
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        CheckConstraint(
            "first_name IS NOT NULL OR last_name IS NOT NULL OR company_name IS NOT NULL"
            " OR email IS NOT NULL OR erased_at IS NOT NULL",
            name="identifiable",
        ),
        CheckConstraint("phone ~ '^\\+[1-9][0-9]{6,14}$'", name="phone_e164"),
        CheckConstraint(
            "(status = 'MERGED') = (merged_into_id IS NOT NULL)", name="merged_has_target"
        ),
        CheckConstraint("merged_into_id <> id", name="not_merged_into_self"),
        CheckConstraint("cardinality(tags) <= 50", name="at_most_50_tags"),
        # Email is unique among live (not merged) customers.
        Index(
            "uq_customer_email_live",
            "email",
            unique=True,
            postgresql_where=text("status <> 'MERGED'"),
        ),
        Index("ix_customer_phone_digits", "phone_digits"),
        Index("ix_customer_reference_id", "reference_id"),
        Index("ix_customer_account_id", "account_id"),
        Index("ix_customer_sales_rep_id", "sales_rep_id", "id"),
        # Customers by id with what RefineSearch's sample needs: the sample of the newest
        # matches walks it without reading the table (migration 0018). Not partial: as
        # `WHERE status <> 'MERGED'` the importer's batch reads chose it and imports ran a
        # third slower (bench.import).
        Index("ix_customer_live_id", "id", postgresql_include=["status", "kind", "sales_rep_id"]),
        Index("ix_customer_merged_into_id", "merged_into_id"),
        # Duplicate report keys (models/duplicates.py), live customers only.
        Index(
            "ix_customer_dup_email",
            text(EMAIL_KEY),
            text("id"),
            postgresql_where=text("status <> 'MERGED' AND email IS NOT NULL"),
        ),
        Index(
            "ix_customer_dup_name",
            text(NAME_KEY),
            text("id"),
            postgresql_where=text("status <> 'MERGED'"),
        ),
        Index(
            "ix_customer_dup_name_trgm",
            text(f"({NAME_KEY}) gin_trgm_ops"),
            postgresql_using="gin",
            postgresql_where=text("status <> 'MERGED'"),
        ),
        Index(
            "ix_customer_dup_phone",
            "phone_digits",
            "id",
            postgresql_where=text("status <> 'MERGED' AND phone_digits IS NOT NULL"),
        ),
        Index("ix_customer_tag_keys", "tag_keys", postgresql_using="gin"),
        # Keyset pagination: one index per orderBy, id as tiebreaker.
        Index("ix_customer_sort_name", "sort_name", "id"),
        Index("ix_customer_created_at", "created_at", "id"),
        Index("ix_customer_updated_at", "updated_at", "id"),
        # Search: case- and accent-insensitive names (exact/prefix and trigram fuzzy).
        Index("ix_customer_first_name_fold", text("cg_fold(first_name) text_pattern_ops")),
        Index("ix_customer_last_name_fold", text("cg_fold(last_name) text_pattern_ops")),
        Index("ix_customer_company_fold", text("cg_fold(company_name) text_pattern_ops")),
        Index(
            "ix_customer_first_name_trgm",
            text("cg_fold(first_name) gin_trgm_ops"),
            postgresql_using="gin",
        ),
        Index(
            "ix_customer_last_name_trgm",
            text("cg_fold(last_name) gin_trgm_ops"),
            postgresql_using="gin",
        ),
        Index(
            "ix_customer_company_trgm",
            text("cg_fold(company_name) gin_trgm_ops"),
            postgresql_using="gin",
        ),
    )
