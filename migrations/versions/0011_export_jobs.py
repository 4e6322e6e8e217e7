"""export jobs: a customer export, downloadable by its owner until it expires

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The application's roles (migration 0010), when they exist: no RLS here, the download
# checks its owner and reads the customers through the owner's scope.
GRANT = """
DO $$ BEGIN
  IF to_regrole('customer_graph_app') IS NOT NULL THEN
    GRANT SELECT, INSERT ON export_job TO customer_graph_app;
  END IF;
  IF to_regrole('customer_graph_admin') IS NOT NULL THEN
    GRANT SELECT, INSERT ON export_job TO customer_graph_admin;
  END IF;
END $$"""


def upgrade() -> None:
    op.create_table(
        "export_job",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("criteria", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["app_user.id"],
            name="fk_export_job_owner_id_app_user",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_export_job"),
    )
    op.create_index("ix_export_job_owner_id", "export_job", ["owner_id"])
    op.execute(GRANT)


def downgrade() -> None:
    op.drop_index("ix_export_job_owner_id", table_name="export_job")
    op.drop_table("export_job")
