"""duplicate report: dismissed pairs and normalised match-key indexes

Revision ID: 0004
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMAIL_KEY = "lower(btrim(email::text))"
NAME_KEY = (
    "cg_fold(regexp_replace(btrim(CASE WHEN kind = 'BUSINESS' AND company_name IS NOT NULL"
    " THEN company_name ELSE coalesce(first_name, '') || ' ' || coalesce(last_name, '') END),"
    " '\\s+', ' ', 'g'))"
)


def upgrade() -> None:
    op.create_table(
        "duplicate_dismissal",
        sa.Column("customer_a_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_b_id", sa.BigInteger(), nullable=False),
        sa.Column("dismissed_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "dismissed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "customer_a_id < customer_b_id", name=op.f("ck_duplicate_dismissal_ordered_pair")
        ),
        sa.ForeignKeyConstraint(
            ["customer_a_id"], ["customer.id"], ondelete="CASCADE",
            name=op.f("fk_duplicate_dismissal_customer_a_id_customer"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_b_id"], ["customer.id"], ondelete="CASCADE",
            name=op.f("fk_duplicate_dismissal_customer_b_id_customer"),
        ),
        sa.ForeignKeyConstraint(
            ["dismissed_by"], ["app_user.id"], ondelete="SET NULL",
            name=op.f("fk_duplicate_dismissal_dismissed_by_app_user"),
        ),
        sa.PrimaryKeyConstraint(
            "customer_a_id", "customer_b_id", name=op.f("pk_duplicate_dismissal")
        ),
    )
    op.create_index("ix_duplicate_dismissal_b", "duplicate_dismissal", ["customer_b_id"])
    # The report groups by these keys; the indexes let a page stream in key order.
    op.create_index(
        "ix_customer_dup_email", "customer", [sa.text(EMAIL_KEY), sa.text("id")],
        postgresql_where=sa.text("status <> 'MERGED' AND email IS NOT NULL"),
    )
    op.create_index(
        "ix_customer_dup_name", "customer", [sa.text(NAME_KEY), sa.text("id")],
        postgresql_where=sa.text("status <> 'MERGED'"),
    )
    op.create_index(
        "ix_customer_dup_name_trgm", "customer", [sa.text(f"({NAME_KEY}) gin_trgm_ops")],
        postgresql_using="gin", postgresql_where=sa.text("status <> 'MERGED'"),
    )
    op.create_index(
        "ix_customer_dup_phone", "customer", ["phone_digits", "id"],
        postgresql_where=sa.text("status <> 'MERGED' AND phone_digits IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_customer_dup_phone", table_name="customer")
    op.drop_index("ix_customer_dup_name_trgm", table_name="customer")
    op.drop_index("ix_customer_dup_name", table_name="customer")
    op.drop_index("ix_customer_dup_email", table_name="customer")
    op.drop_index("ix_duplicate_dismissal_b", table_name="duplicate_dismissal")
    op.drop_table("duplicate_dismissal")
