"""a second wall: an application role and row-level security on every customer table

The application connects as `customer_graph_app` (LOGIN, NOSUPERUSER, NOBYPASSRLS,
NOINHERIT, owns nothing); migrations keep running as the owner, whom RLS does not bind.
Each transaction of the application first calls `cg_set_viewer(id, role)`, which sets
`cg.viewer_id` / `cg.viewer_role` locally; the policies read them back through STABLE SQL
functions (inlined, so `sales_rep_id = cg_viewer_rep()` is an index condition). No
setting, no rows. An ADMIN viewer switches (SET LOCAL ROLE) to `customer_graph_admin`
(NOLOGIN; BYPASSRLS when a superuser migrates, else its policies are `USING (true)`):
bypassing RLS, an admin's plans are the owner's. Under any RLS qual, even `true`, PostgreSQL
evaluates a
non-leakproof user qual (enum `<>`, citext `=`, `cg_fold`) only after it, which turned the
nested page's `ORDER BY sort_name LIMIT 51` index scan into a sort of every customer.

Roles are cluster-wide: they are created here when missing and this user may (superuser
or CREATEROLE), and never dropped by the downgrade (other databases of the server may use
them). Without them the grants and policies are skipped with a notice: the owner, which
the application then connects as, bypasses RLS anyway.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP = "customer_graph_app"
ADMIN = "customer_graph_admin"

# table -> which customers' rows these are (evaluated under the customer table's own RLS).
# EXISTS probes the customer's primary key per row; `customer_id IN (SELECT id FROM
# customer)` hashed every customer of a rep once per child sub-select (the rep's nested
# page: 14 ms with EXISTS, 29 ms with IN, 5 ms without RLS; EXPLAIN ANALYZE, 20,000
# customers, 2,000 of them the rep's).
CHILDREN = {
    "address": "EXISTS (SELECT FROM customer c WHERE c.id = customer_id)",
    "custom_field_value": "EXISTS (SELECT FROM customer c WHERE c.id = customer_id)",
    "customer_sales_channel": "EXISTS (SELECT FROM customer c WHERE c.id = customer_id)",
    "orders": "EXISTS (SELECT FROM customer c WHERE c.id = customer_id)",
    "order_line": "EXISTS (SELECT FROM customer c WHERE c.id = customer_id)",
    "ledger_transaction": "EXISTS (SELECT FROM customer c WHERE c.id = customer_id)",
    "timeline_event": "EXISTS (SELECT FROM customer c WHERE c.id = customer_id)",
    "tax_exemption_certificate": "EXISTS (SELECT FROM customer c WHERE c.id = customer_id)",
    "payment_method": "account_id IN (SELECT account_id FROM customer)",
    # A rep's new account has no customer yet when INSERT … RETURNING reads it back.
    "account": "id IN (SELECT account_id FROM customer)"
    " OR ((SELECT cg_viewer_role()) = 'SALES_REP' AND NOT cg_account_has_customers(id))",
}
# The scope of resolvers/scope.py: two index conditions (a BitmapOr for the planner). The
# viewer is a scalar sub-select, an InitPlan evaluated once per statement: a bare STABLE
# call is evaluated again for every row a policy filters (8 ms of a 10 ms page for a rep).
CUSTOMER = "sales_rep_id = (SELECT cg_viewer_rep()) OR user_id = (SELECT cg_viewer_user())"
SCOPED = {"customer": CUSTOMER, **CHILDREN}
NO_RLS_DML = (  # no customer to scope by; the application checks who may write them
    "app_user",
    "api_token",
    "sales_channel",
    "custom_field_definition",
    "idempotency_key",
    "duplicate_dismissal",
    "import_job",  # admins' imports (resolvers/import_jobs.py checks who reads them)
    "import_job_error",
)

FUNCTIONS = [
    """CREATE FUNCTION cg_viewer_id() RETURNS bigint LANGUAGE sql STABLE AS
       $$ SELECT nullif(current_setting('cg.viewer_id', true), '')::bigint $$""",
    """CREATE FUNCTION cg_viewer_role() RETURNS text LANGUAGE sql STABLE AS
       $$ SELECT nullif(current_setting('cg.viewer_role', true), '') $$""",
    """CREATE FUNCTION cg_viewer_rep() RETURNS bigint LANGUAGE sql STABLE AS
       $$ SELECT CASE WHEN cg_viewer_role() = 'SALES_REP' THEN cg_viewer_id() END $$""",
    """CREATE FUNCTION cg_viewer_user() RETURNS bigint LANGUAGE sql STABLE AS
       $$ SELECT CASE WHEN cg_viewer_role() = 'CUSTOMER' THEN cg_viewer_id() END $$""",
    # Runs as the owner (no RLS): whether any customer, visible or not, uses the account.
    """CREATE FUNCTION cg_account_has_customers(account_id bigint) RETURNS boolean
       LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
       $$ SELECT EXISTS (SELECT 1 FROM customer c WHERE c.account_id = $1) $$""",
    # registerUser: the new login claims the live customer record with its email that no
    # login owns yet, which no viewer's scope can see (runs as the owner, without RLS).
    """CREATE FUNCTION cg_claim_customer(claim_email text, claim_user bigint) RETURNS bigint
       LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS
       $$ UPDATE customer SET user_id = claim_user, version = version + 1
          WHERE email = claim_email::citext AND user_id IS NULL AND status <> 'MERGED'
          RETURNING id $$""",
    # The first act of every application transaction (SET LOCAL: gone at its end).
    f"""CREATE FUNCTION cg_set_viewer(viewer_id bigint, viewer_role text) RETURNS void
       LANGUAGE plpgsql AS $$
       BEGIN
         PERFORM set_config('cg.viewer_id', coalesce(viewer_id::text, ''), true);
         PERFORM set_config('cg.viewer_role', coalesce(viewer_role, ''), true);
         IF viewer_role = 'ADMIN' AND to_regrole('{ADMIN}') IS NOT NULL
            AND pg_has_role('{ADMIN}', 'MEMBER') THEN
           PERFORM set_config('role', '{ADMIN}', true);
         END IF;
       END $$""",
]
DROP_FUNCTIONS = [
    "DROP FUNCTION cg_set_viewer(bigint, text)",
    "DROP FUNCTION cg_claim_customer(text, bigint)",
    "DROP FUNCTION cg_account_has_customers(bigint)",
    "DROP FUNCTION cg_viewer_user()",
    "DROP FUNCTION cg_viewer_rep()",
    "DROP FUNCTION cg_viewer_role()",
    "DROP FUNCTION cg_viewer_id()",
]

CREATE_ROLES = f"""
DO $$
DECLARE
  allowed boolean := (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user);
  super boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
BEGIN
  IF to_regrole('{APP}') IS NULL AND allowed THEN
    CREATE ROLE {APP} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION
      NOBYPASSRLS;
  END IF;
  IF to_regrole('{ADMIN}') IS NULL AND allowed THEN
    CREATE ROLE {ADMIN} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
  END IF;
  -- Only a superuser may grant BYPASSRLS; without it the USING (true) policies serve.
  IF to_regrole('{ADMIN}') IS NOT NULL AND super THEN
    ALTER ROLE {ADMIN} BYPASSRLS;
  END IF;
  IF to_regrole('{APP}') IS NOT NULL AND to_regrole('{ADMIN}') IS NOT NULL
     AND NOT pg_has_role('{APP}', '{ADMIN}', 'MEMBER') AND allowed THEN
    GRANT {ADMIN} TO {APP};
  END IF;
END $$"""


def _roles_exist() -> bool:
    row = (
        op.get_bind()
        .exec_driver_sql(
            f"SELECT to_regrole('{APP}') IS NOT NULL AND to_regrole('{ADMIN}') IS NOT NULL"
        )
        .scalar()
    )
    return bool(row)


def _grants() -> list[str]:
    both = f"{APP}, {ADMIN}"
    dml = ", ".join(t for t in ("customer", *CHILDREN, *NO_RLS_DML) if t != "ledger_transaction")
    return [
        f"GRANT USAGE ON SCHEMA public TO {both}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {dml} TO {both}",
        # Append-only: no UPDATE, DELETE or TRUNCATE for the application, ever.
        f"GRANT SELECT, INSERT ON ledger_transaction TO {both}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {both}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {both}",
    ]


def _policies(table: str, scope: str) -> list[str]:
    return [
        f"CREATE POLICY cg_read ON {table} FOR SELECT TO {APP} USING ({scope})",
        # Inserts: the application checks (a rep's new customer, a registration).
        f"CREATE POLICY cg_insert ON {table} FOR INSERT TO {APP} WITH CHECK (true)",
        f"CREATE POLICY cg_update ON {table} FOR UPDATE TO {APP} USING ({scope})"
        " WITH CHECK (true)",
        f"CREATE POLICY cg_delete ON {table} FOR DELETE TO {APP} USING ({scope})",
        f"CREATE POLICY cg_admin ON {table} TO {ADMIN} USING (true) WITH CHECK (true)",
    ]


def upgrade() -> None:
    for sql in FUNCTIONS:
        op.execute(sql)
    # The owner's functions are the application's alone (granted below), not PUBLIC's.
    op.execute(
        "REVOKE EXECUTE ON FUNCTION cg_claim_customer(text, bigint),"
        " cg_account_has_customers(bigint) FROM PUBLIC"
    )
    op.execute(CREATE_ROLES)
    for table in SCOPED:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    if not _roles_exist():
        op.execute(
            f"DO $$ BEGIN RAISE NOTICE 'roles {APP}/{ADMIN} missing and not creatable:"
            " no grants or policies (the application runs as the owner)'; END $$"
        )
        return
    for sql in _grants():
        op.execute(sql)
    for table, scope in SCOPED.items():
        for sql in _policies(table, scope):
            op.execute(sql)


def downgrade() -> None:
    for table in SCOPED:
        for policy in ("cg_read", "cg_insert", "cg_update", "cg_delete", "cg_admin"):
            op.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    if _roles_exist():
        both = f"{APP}, {ADMIN}"
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {both}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {both}")
        op.execute(f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {both}")
        op.execute(f"REVOKE ALL ON SCHEMA public FROM {both}")
    for sql in DROP_FUNCTIONS:
        op.execute(sql)
