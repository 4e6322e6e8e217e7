"""import jobs: progress and rejected rows of customer imports

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS = postgresql.ENUM("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", name="job_status")


def upgrade() -> None:
    STATUS.create(op.get_bind())
    op.create_table(
        "import_job",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("status", postgresql.ENUM(name="job_status", create_type=False), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("source", sa.LargeBinary(), nullable=True),
        sa.Column("options", postgresql.JSONB(), nullable=False),
        sa.Column("rows_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unknown_columns", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("ignored_columns", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("header", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["app_user.id"], name="fk_import_job_owner_id_app_user", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_import_job"),
    )
    op.create_index("ix_import_job_owner_id", "import_job", ["owner_id"])
    op.create_table(
        "import_job_error",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("column", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raw", postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["import_job.id"], name="fk_import_job_error_job_id_import_job", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "line", name="pk_import_job_error"),
    )


def downgrade() -> None:
    op.drop_table("import_job_error")
    op.drop_index("ix_import_job_owner_id", table_name="import_job")
    op.drop_table("import_job")
    STATUS.drop(op.get_bind())
