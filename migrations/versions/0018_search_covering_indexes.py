"""search: covering indexes for the search screen's filters and RefineSearch's sample

Each filter on a child table (address place, sales channel, custom field value) reads its
customer ids from the index alone, in customer id order, and live customers are walked by
id from an index that carries status, kind and rep: RefineSearch's sample of the newest
matches then merges index entries instead of reading rows, and its states facet reads
addresses' places from their customer_id index (docs/architecture.md, Search).

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CFV = ("text", "number", "date", "boolean")


def upgrade() -> None:
    op.drop_index("ix_address_country_region", table_name="address")
    op.create_index("ix_address_place", "address", ["country", "region", "customer_id"])
    op.drop_index("ix_customer_sales_channel_sales_channel_id", table_name="customer_sales_channel")
    op.create_index(
        "ix_customer_sales_channel_channel",
        "customer_sales_channel",
        ["sales_channel_id", "customer_id"],
    )
    for kind in CFV:
        op.drop_index(f"ix_cfv_{kind}", table_name="custom_field_value")
        op.create_index(
            f"ix_cfv_{kind}",
            "custom_field_value",
            ["definition_id", f"{kind}_value", "customer_id"],
        )
    op.execute(
        "CREATE INDEX ix_customer_live_id ON customer (id) INCLUDE (status, kind, sales_rep_id)"
    )
    op.drop_index("ix_address_customer_id", table_name="address")
    op.create_index(
        "ix_address_customer_id",
        "address",
        ["customer_id", "id"],
        postgresql_include=["country", "region"],
    )


def downgrade() -> None:
    op.drop_index("ix_address_customer_id", table_name="address")
    op.create_index("ix_address_customer_id", "address", ["customer_id", "id"])
    op.drop_index("ix_customer_live_id", table_name="customer")
    for kind in CFV:
        op.drop_index(f"ix_cfv_{kind}", table_name="custom_field_value")
        op.create_index(f"ix_cfv_{kind}", "custom_field_value", ["definition_id", f"{kind}_value"])
    op.drop_index("ix_customer_sales_channel_channel", table_name="customer_sales_channel")
    op.create_index(
        "ix_customer_sales_channel_sales_channel_id",
        "customer_sales_channel",
        ["sales_channel_id"],
    )
    op.drop_index("ix_address_place", table_name="address")
    op.create_index("ix_address_country_region", "address", ["country", "region"])
