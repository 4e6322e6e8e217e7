"""bulk jobs: one change applied to many customers, with progress and per-customer errors

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The application's roles (migration 0010), when they exist. No RLS on these tables:
# resolvers/bulk_updates.py shows a job (and its errors) to its owner or an admin, and the
# job reads and writes customers through its owner's scope. bulk_job_error.customer_id is
# the id the job was given, which may be a customer its owner cannot see (rejected
# NOT_FOUND): a customer policy would hide the owner's own rejections.
GRANT = """
DO $$ BEGIN
  IF to_regrole('customer_graph_app') IS NOT NULL THEN
    GRANT SELECT, INSERT, UPDATE ON bulk_job, bulk_job_error TO customer_graph_app;
  END IF;
  IF to_regrole('customer_graph_admin') IS NOT NULL THEN
    GRANT SELECT, INSERT, UPDATE ON bulk_job, bulk_job_error TO customer_graph_admin;
  END IF;
END $$"""


def upgrade() -> None:
    op.create_table(
        "bulk_job",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("status", postgresql.ENUM(name="job_status", create_type=False), nullable=False),
        sa.Column("selection", postgresql.JSONB(), nullable=False),
        sa.Column("changes", postgresql.JSONB(), nullable=False),
        sa.Column("error_policy", sa.Text(), nullable=False),
        sa.Column("total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("changed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_customer_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["app_user.id"], name="fk_bulk_job_owner_id_app_user", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_bulk_job"),
    )
    op.create_index("ix_bulk_job_owner_id", "bulk_job", ["owner_id"])
    op.create_table(
        "bulk_job_error",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["bulk_job.id"], name="fk_bulk_job_error_job_id_bulk_job", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "customer_id", name="pk_bulk_job_error"),
    )
    op.execute(GRANT)


def downgrade() -> None:
    op.drop_table("bulk_job_error")
    op.drop_index("ix_bulk_job_owner_id", table_name="bulk_job")
    op.drop_table("bulk_job")
