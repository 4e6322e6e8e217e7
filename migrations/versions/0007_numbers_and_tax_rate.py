"""human numbers past 999,999; order line tax rates with four decimals

lpad(n, 6) cut numbers above 999,999 (C-1000000 became C-100000). cg_number() draws the
sequence once and pads to at least six digits. A tax rate such as 7.25% is 0.0725: it
needs four decimals, not money's two.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NUMBERED = [("customer", "C", "customer_number_seq"), ("account", "A", "account_number_seq"),
            ("orders", "O", "order_number_seq")]


def upgrade() -> None:
    op.execute(
        "CREATE FUNCTION cg_number(prefix text, n bigint) RETURNS text"
        " LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT"
        " AS $$ SELECT prefix || '-' || CASE WHEN n < 1000000 THEN lpad(n::text, 6, '0')"
        " ELSE n::text END $$"
    )
    for table, prefix, seq in NUMBERED:
        op.alter_column(table, "number",
                        server_default=sa.text(f"cg_number('{prefix}', nextval('{seq}'))"))
    op.alter_column("order_line", "tax_rate", type_=sa.Numeric(6, 4),
                    existing_type=sa.Numeric(14, 2))


def downgrade() -> None:
    op.alter_column("order_line", "tax_rate", type_=sa.Numeric(14, 2),
                    existing_type=sa.Numeric(6, 4))
    for table, prefix, seq in NUMBERED:
        op.alter_column(table, "number",
                        server_default=sa.text(f"'{prefix}-' || lpad(nextval('{seq}')::text, 6, '0')"))
    op.execute("DROP FUNCTION cg_number(text, bigint)")
