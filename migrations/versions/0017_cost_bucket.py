"""cost buckets: each client's leaky bucket of query cost points (server/budget.py)

UNLOGGED: the buckets are refilled by time and worth nothing after a crash (PostgreSQL
empties an unlogged table then), so they skip the WAL.

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRANT = """
DO $$ BEGIN
  IF to_regrole('customer_graph_app') IS NOT NULL THEN
    GRANT SELECT, INSERT, UPDATE ON cost_bucket TO customer_graph_app;
  END IF;
  IF to_regrole('customer_graph_admin') IS NOT NULL THEN
    GRANT SELECT, INSERT, UPDATE ON cost_bucket TO customer_graph_admin;
  END IF;
END $$"""


def upgrade() -> None:
    op.create_table(
        "cost_bucket",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("available", sa.Float(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_cost_bucket"),
        prefixes=["UNLOGGED"],
    )
    op.execute(GRANT)


def downgrade() -> None:
    op.drop_table("cost_bucket")
