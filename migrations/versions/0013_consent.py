"""marketing consent: email and SMS consent on the customer (state, opt-in level, when, source)

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATE = postgresql.ENUM(
    "SUBSCRIBED", "UNSUBSCRIBED", "PENDING", "NOT_SUBSCRIBED", name="marketing_state"
)
LEVEL = postgresql.ENUM("SINGLE", "CONFIRMED", name="opt_in_level")


def upgrade() -> None:
    STATE.create(op.get_bind())
    LEVEL.create(op.get_bind())
    for channel in ("email", "sms"):
        state = postgresql.ENUM(name="marketing_state", create_type=False)
        level = postgresql.ENUM(name="opt_in_level", create_type=False)
        op.add_column(
            "customer",
            sa.Column(
                f"{channel}_marketing_state", state, server_default="NOT_SUBSCRIBED", nullable=False
            ),
        )
        op.add_column("customer", sa.Column(f"{channel}_marketing_opt_in_level", level))
        op.add_column(
            "customer", sa.Column(f"{channel}_marketing_updated_at", sa.DateTime(timezone=True))
        )
        op.add_column("customer", sa.Column(f"{channel}_marketing_source", sa.Text()))


def downgrade() -> None:
    for channel in ("email", "sms"):
        for column in ("state", "opt_in_level", "updated_at", "source"):
            op.drop_column("customer", f"{channel}_marketing_{column}")
    LEVEL.drop(op.get_bind())
    STATE.drop(op.get_bind())
