"""privacy requests: an ERASED customer status and customer.erased_at

An erased customer keeps its number, orders, ledger and tax records but no name, email or
phone, so the "identifiable" check also accepts a row that has `erased_at` (a customer
merged into an erased one is pseudonymised too and keeps its MERGED status, hence a
column and not only the status).

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IDENTIFIABLE = (
    "first_name IS NOT NULL OR last_name IS NOT NULL OR company_name IS NOT NULL"
    " OR email IS NOT NULL"
)

# An erasure scrubs an export job's stored filter when it names the erased person
# (0011 granted the application SELECT and INSERT only).
GRANT = """
DO $$ BEGIN
  IF to_regrole('customer_graph_app') IS NOT NULL THEN
    GRANT UPDATE ON export_job TO customer_graph_app;
  END IF;
  IF to_regrole('customer_graph_admin') IS NOT NULL THEN
    GRANT UPDATE ON export_job TO customer_graph_admin;
  END IF;
END $$"""


def upgrade() -> None:
    # Nothing in this migration uses the new label (PostgreSQL allows that only after
    # commit), so it may share the migration's transaction.
    op.execute("ALTER TYPE customer_status ADD VALUE IF NOT EXISTS 'ERASED'")
    op.add_column("customer", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint(op.f("ck_customer_identifiable"), "customer", type_="check")
    op.create_check_constraint(
        "identifiable", "customer", f"{IDENTIFIABLE} OR erased_at IS NOT NULL"
    )
    op.execute(GRANT)


def downgrade() -> None:
    # PostgreSQL cannot drop an enum label; ERASED stays in the type (unused once erased
    # rows are gone, and the type itself goes with 0001's downgrade).
    op.drop_constraint(op.f("ck_customer_identifiable"), "customer", type_="check")
    op.create_check_constraint("identifiable", "customer", IDENTIFIABLE)
    op.drop_column("customer", "erased_at")
