"""a viewer's transaction runs as the session user unless the viewer is ADMIN

`cg_set_viewer` (0010) switched to `customer_graph_admin` for an ADMIN viewer and left the
role alone otherwise. A session role can only come from `cg_keep_viewer` (0022), and the
application forgets it before any other use of that connection; but behind a transaction
pooler nobody declared (CUSTOMER_GRAPH_TRANSACTION_POOLER), a kept ADMIN role would stay
on a server connection that then serves other clients' transactions. Now every other
viewer's transaction drops that role for itself (SET LOCAL ROLE NONE), so a leaked role
never lifts row-level security for anyone else.

Revision ID: 0023
Revises: 0022
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADMIN = "customer_graph_admin"


def _set_viewer(otherwise: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION cg_set_viewer(viewer_id bigint, viewer_role text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('cg.viewer_id', coalesce(viewer_id::text, ''), true);
  PERFORM set_config('cg.viewer_role', coalesce(viewer_role, ''), true);
  IF viewer_role = 'ADMIN' AND to_regrole('{ADMIN}') IS NOT NULL
     AND pg_has_role('{ADMIN}', 'MEMBER') THEN
    PERFORM set_config('role', '{ADMIN}', true);
  {otherwise}
  END IF;
END $$"""


def upgrade() -> None:
    op.execute(
        _set_viewer(
            f"ELSIF current_user = '{ADMIN}' THEN\n    PERFORM set_config('role', 'none', true);"
        )
    )


def downgrade() -> None:
    op.execute(_set_viewer(""))
