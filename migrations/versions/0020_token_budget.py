"""a cost budget per API token: its own maximum and restore rate (server/budget.py)

NULL keeps the role's budget (CUSTOMER_GRAPH_COST_BUDGETS) or the default.

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_token", sa.Column("cost_budget", sa.Float(), nullable=True))
    op.add_column("api_token", sa.Column("cost_restore_rate", sa.Float(), nullable=True))
    op.create_check_constraint(
        op.f("ck_api_token_cost_budget"),
        "api_token",
        "(cost_budget IS NULL) = (cost_restore_rate IS NULL)"
        " AND (cost_budget IS NULL OR (cost_budget > 0 AND cost_restore_rate > 0))",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_api_token_cost_budget"), "api_token", type_="check")
    op.drop_column("api_token", "cost_restore_rate")
    op.drop_column("api_token", "cost_budget")
