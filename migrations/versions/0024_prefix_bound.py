"""cg_prefix_end(prefix): the least text above every text that starts with `prefix`

A name-prefix search (`LIKE cg_fold($1) || '%'`) can only use its text_pattern_ops index
when the pattern is a constant, so PostgreSQL planned it afresh on every execution
(0.45 of the 0.6 ms it spent on a search). Bounded as a range,
`cg_fold(name) ~>=~ cg_fold($1) AND cg_fold(name) ~<~ cg_prefix_end(cg_fold($1))`, the
prepared statement has a generic plan that walks the index. The bound bumps the
last character to the next code point (skipping the surrogates, which text cannot hold);
text_pattern_ops compares bytes, and UTF-8's byte order is code point order.

PostgreSQL still prefers per-value plans for it (a generic plan estimates a range on a
parameter at 0.5% of the table), so a session that keeps its viewer runs such a statement
with `plan_cache_mode = force_generic_plan` (server/compiled.py); `cg_forget_viewer` now
resets that too, so no other use of the connection inherits it.

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
CREATE FUNCTION cg_prefix_end(prefix text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  head text := prefix;
  last integer;
BEGIN
  WHILE head <> '' LOOP
    last := ascii(right(head, 1));
    IF last < 1114111 THEN  -- U+10FFFF has no successor: bump the character before it
      RETURN left(head, -1) || chr(CASE WHEN last = 55295 THEN 57344 ELSE last + 1 END);
    END IF;
    head := left(head, -1);
  END LOOP;
  RETURN NULL;  -- '' or only U+10FFFF: no text bounds it, callers keep LIKE alone
END $$
"""
    )
    op.execute(_forget_viewer("RESET plan_cache_mode;"))


def downgrade() -> None:
    op.execute(_forget_viewer(""))
    op.execute("DROP FUNCTION cg_prefix_end(text)")


def _forget_viewer(also: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION cg_forget_viewer() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RESET ROLE;
  RESET default_transaction_read_only;
  {also}
  PERFORM set_config('cg.viewer_id', '', false);
  PERFORM set_config('cg.viewer_role', '', false);
END $$"""
