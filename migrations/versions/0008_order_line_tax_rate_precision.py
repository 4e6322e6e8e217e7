"""order line tax rate keeps its precision (0.0725, not 0.07)

The rate was a money column, numeric(14,2), which rounded 7.25 % to 7 %. A rate is a
fraction with up to 6 decimals: numeric(7,6).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column(
        "order_line",
        "tax_rate",
        type_=sa.Numeric(7, 6),
        existing_type=sa.Numeric(14, 2),
        existing_nullable=False,
        existing_server_default=sa.text("0"),
    )
    op.create_check_constraint(
        op.f("ck_order_line_tax_rate_range"), "order_line", "tax_rate >= 0 AND tax_rate < 1"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_order_line_tax_rate_range"), "order_line", type_="check")
    op.alter_column(
        "order_line",
        "tax_rate",
        type_=sa.Numeric(14, 2),
        existing_type=sa.Numeric(7, 6),
        existing_nullable=False,
        existing_server_default=sa.text("0"),
    )
