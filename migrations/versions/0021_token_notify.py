"""tell every worker when a token or its user changes: NOTIFY cg_token

Workers keep who a token stands for in memory (resolvers/tokens.ViewerCache); a revoked
or expired-early token, a deactivated user or a changed role must stop counting at once,
whoever made the change (GraphQL, the CLI, plain SQL): triggers, not application code.
Payload: `token:<sha256 hex>` or `user:<id>`.

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One statement per execute: asyncpg prepares each.
    op.execute(
        """
CREATE FUNCTION cg_token_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'api_token' THEN
    PERFORM pg_notify('cg_token', 'token:' || encode(OLD.token_hash, 'hex'));
  ELSE
    PERFORM pg_notify('cg_token', 'user:' || OLD.id);
  END IF;
  RETURN NULL;
END $$"""
    )
    op.execute(
        """CREATE TRIGGER cg_token_changed
  AFTER UPDATE OF revoked_at, expires_at, user_id, token_hash ON api_token
  FOR EACH ROW EXECUTE FUNCTION cg_token_changed()"""
    )
    op.execute(
        """CREATE TRIGGER cg_token_deleted AFTER DELETE ON api_token
  FOR EACH ROW EXECUTE FUNCTION cg_token_changed()"""
    )
    op.execute(
        """CREATE TRIGGER cg_user_changed AFTER UPDATE OF role, is_active, email ON app_user
  FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role
    OR OLD.is_active IS DISTINCT FROM NEW.is_active OR OLD.email IS DISTINCT FROM NEW.email)
  EXECUTE FUNCTION cg_token_changed()"""
    )
    op.execute(
        """CREATE TRIGGER cg_user_deleted AFTER DELETE ON app_user
  FOR EACH ROW EXECUTE FUNCTION cg_token_changed()"""
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER cg_user_deleted ON app_user")
    op.execute("DROP TRIGGER cg_user_changed ON app_user")
    op.execute("DROP TRIGGER cg_token_deleted ON api_token")
    op.execute("DROP TRIGGER cg_token_changed ON api_token")
    op.execute("DROP FUNCTION cg_token_changed()")
