"""several instances: persisted queries (APQ) and subscription leases in PostgreSQL

`persisted_query` holds Apollo persisted queries for every instance (hash → verified
text), bounded in bytes through `persisted_query_total` (server/persisted.py).
`subscription_lease` holds each open live-timeline subscription with its worker and an
expiry the worker renews, so the per-user limit counts every instance (server/notify.py);
UNLOGGED like cost_bucket: after a crash empties it, workers write their rows again.

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = "persisted_query, persisted_query_total, subscription_lease"
GRANT = f"""
DO $$ BEGIN
  IF to_regrole('customer_graph_app') IS NOT NULL THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLES} TO customer_graph_app;
  END IF;
  IF to_regrole('customer_graph_admin') IS NOT NULL THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLES} TO customer_graph_admin;
  END IF;
END $$"""


def upgrade() -> None:
    op.create_table(
        "persisted_query",
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column(
            "last_used", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("hash ~ '^[0-9a-f]{64}$'", name=op.f("ck_persisted_query_sha256")),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_persisted_query")),
    )
    op.create_index(
        "ix_persisted_query_last_used",
        "persisted_query",
        ["last_used", "hash"],
        postgresql_include=["bytes"],
    )
    op.create_table(
        "persisted_query_total",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_persisted_query_total_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persisted_query_total")),
    )
    op.create_table(
        "subscription_lease",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("instance", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_lease")),
        prefixes=["UNLOGGED"],
    )
    op.create_index(
        "ix_subscription_lease_user_id", "subscription_lease", ["user_id", "expires_at"]
    )
    op.create_index("ix_subscription_lease_instance", "subscription_lease", ["instance"])
    op.execute(GRANT)


def downgrade() -> None:
    op.drop_table("subscription_lease")
    op.drop_table("persisted_query_total")
    op.drop_table("persisted_query")
