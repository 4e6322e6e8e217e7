"""tags: a customer's labels, with lower-case keys for filters and counts (GIN-indexed)

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Immutable, so a generated column may use it: the keys a filter compares, in tag order.
TAG_KEYS = """
CREATE FUNCTION cg_tag_keys(text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT coalesce(array_agg(lower(t) ORDER BY n), '{}')
      FROM unnest($1) WITH ORDINALITY AS u(t, n) $$
"""


def upgrade() -> None:
    op.execute(TAG_KEYS)
    op.add_column(
        "customer",
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
    )
    op.add_column(
        "customer",
        sa.Column(
            "tag_keys",
            postgresql.ARRAY(sa.Text()),
            sa.Computed("cg_tag_keys(tags)", persisted=True),
            nullable=False,
        ),
    )
    op.create_check_constraint("at_most_50_tags", "customer", "cardinality(tags) <= 50")
    op.create_index("ix_customer_tag_keys", "customer", ["tag_keys"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_customer_tag_keys", table_name="customer")
    op.drop_constraint("ck_customer_at_most_50_tags", "customer")
    op.drop_column("customer", "tag_keys")
    op.drop_column("customer", "tags")
    op.execute("DROP FUNCTION cg_tag_keys(text[])")
