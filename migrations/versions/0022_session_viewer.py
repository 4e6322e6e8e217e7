"""a viewer kept on a session, for the compiled read path's own connections

`cg_set_viewer` (0010) sets the viewer for one transaction. A compiled read is one
statement, so it can run outside a transaction if its connection's *session* already
carries the viewer: `cg_keep_viewer` sets the same settings (and ADMIN's role) for the
session, read-only by default; `cg_forget_viewer` undoes it. The application calls them
(server/database.py) so that a connection carrying a session viewer never serves anything
but a compiled read of that viewer.

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADMIN = "customer_graph_admin"


def upgrade() -> None:
    # One statement per execute: asyncpg prepares each.
    op.execute(
        f"""
CREATE FUNCTION cg_keep_viewer(viewer_id bigint, viewer_role text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RESET ROLE;
  PERFORM set_config('cg.viewer_id', coalesce(viewer_id::text, ''), false);
  PERFORM set_config('cg.viewer_role', coalesce(viewer_role, ''), false);
  PERFORM set_config('default_transaction_read_only', 'on', false);
  IF viewer_role = 'ADMIN' AND to_regrole('{ADMIN}') IS NOT NULL
     AND pg_has_role('{ADMIN}', 'MEMBER') THEN
    PERFORM set_config('role', '{ADMIN}', false);
  END IF;
END $$"""
    )
    op.execute(
        """
CREATE FUNCTION cg_forget_viewer() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RESET ROLE;
  RESET default_transaction_read_only;
  PERFORM set_config('cg.viewer_id', '', false);
  PERFORM set_config('cg.viewer_role', '', false);
END $$"""
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION cg_forget_viewer()")
    op.execute("DROP FUNCTION cg_keep_viewer(bigint, text)")
