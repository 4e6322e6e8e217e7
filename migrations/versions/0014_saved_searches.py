"""saved searches: a named customer filter, its owner's or shared with all staff

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# No row-level security here: resolvers/saved_searches.py shows a viewer their own and the
# shared ones, and a search runs through the viewer's own customer scope.
GRANT = """
DO $$ BEGIN
  IF to_regrole('customer_graph_app') IS NOT NULL THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON saved_search TO customer_graph_app;
  END IF;
  IF to_regrole('customer_graph_admin') IS NOT NULL THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON saved_search TO customer_graph_admin;
  END IF;
END $$"""


def upgrade() -> None:
    op.create_table(
        "saved_search",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("filter", postgresql.JSONB(), nullable=False),
        sa.Column("shared", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["app_user.id"],
            name="fk_saved_search_owner_id_app_user",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_saved_search"),
    )
    op.create_index(
        "uq_saved_search_owner_name",
        "saved_search",
        ["owner_id", sa.text("lower(name)")],
        unique=True,
    )
    op.execute(GRANT)


def downgrade() -> None:
    op.drop_index("uq_saved_search_owner_name", table_name="saved_search")
    op.drop_table("saved_search")
