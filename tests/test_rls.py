"""The second wall: row-level security under the application role (migration 0010).

The access matrix of tests/test_access.py runs with one wall at a time, on both read
paths: the scope function broken (every viewer "sees" every customer: RLS alone), and RLS
disabled on every table (scope alone). The application role itself is checked directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

import resolvers.compiled.scope as compiled_scope
import resolvers.scope
from models.enums import Role
from resolvers.context import Context
from resolvers.rls import set_viewer
from resolvers.search import filtered_customers
from resolvers.viewer import Viewer
from server.app import create_app
from tests import test_access
from tests.conftest import GraphQLClient
from tests.factories import make_customer, make_ledger, make_order, make_user
from tests.test_search_explain import FILTERS
from tests.test_search_explain import seeded as seeded  # a fixture

SCOPED_TABLES = (
    "customer",
    "address",
    "custom_field_value",
    "customer_sales_channel",
    "orders",
    "order_line",
    "ledger_transaction",
    "timeline_event",
    "tax_exemption_certificate",
    "payment_method",
    "account",
)


def break_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    """resolvers/scope.py's one scope function answers "everything" for every viewer."""
    monkeypatch.setattr(resolvers.scope, "customer_predicate", lambda viewer: true())
    compiled_scope.scope_template.cache_clear()  # the compiled path's compiled predicates


@pytest.fixture
async def without_rls(engine: AsyncEngine) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        for table in SCOPED_TABLES:
            await conn.execute(text(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"))
    try:
        yield
    finally:
        async with engine.begin() as conn:
            for table in SCOPED_TABLES:
                await conn.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))


@pytest.fixture(params=[False, True], ids=["field-by-field", "compiled"])
async def app_client(request, app_engine, settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        engine=app_engine, settings=dataclasses.replace(settings, compiled_reads=request.param)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c


@pytest.fixture
def broken_scope(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    break_scope(monkeypatch)
    yield
    monkeypatch.undo()
    compiled_scope.scope_template.cache_clear()


async def test_access_matrix_with_rls_alone(broken_scope, app_client, engine, admin_token):
    await test_access.test_access_matrix(app_client, engine, admin_token)


async def test_site_users_of_reps_with_rls_alone(broken_scope, app_client, engine):
    await test_access.test_reps_do_not_see_other_reps_site_users(app_client, engine)


async def test_access_matrix_with_scope_alone(without_rls, app_client, engine, admin_token):
    await test_access.test_access_matrix(app_client, engine, admin_token)


async def test_broken_scope_leaks_without_rls(without_rls, broken_scope, app_client, engine):
    """The harness can tell: with both walls down, the broken scope does leak."""
    _rep_a, token_a = await make_user(engine, role="SALES_REP", email="a@reps.test")
    rep_b, _ = await make_user(engine, role="SALES_REP", email="b@reps.test")
    await make_customer(engine, sales_rep_id=rep_b)
    data = await GraphQLClient(app_client, token_a).data("{ customers { totalCount } }")
    assert data["customers"]["totalCount"] == 1


async def test_broken_scope_leaks_nothing_to_reps_or_site_users(broken_scope, app_client, engine):
    _rep_a, token_a = await make_user(engine, role="SALES_REP", email="a@reps.test")
    rep_b, _ = await make_user(engine, role="SALES_REP", email="b@reps.test")
    _user_x, token_x = await make_user(engine, role="CUSTOMER", email="x@users.test")
    theirs = await make_customer(engine, sales_rep_id=rep_b, email="theirs@example.com")
    await make_order(engine, theirs.id, lines=1)
    await make_ledger(engine, theirs.id, ["5.00"])
    query = """{ customers(first: 10) { totalCount edges { node { number
        orders(first: 5) { edges { node { number } } } ledgerTransactions(first: 5) {
        edges { node { kind } } } } } } accounts(first: 10) { edges { node { name } } } }"""
    for token in (token_a, token_x):
        data = await GraphQLClient(app_client, token).data(query)
        assert data["customers"] == {"totalCount": 0, "edges": []}
        assert data["accounts"]["edges"] == []
        body = await GraphQLClient(app_client, token)(
            "query($n: String) { customer(number: $n) { number } }", {"n": theirs.number}
        )
        assert body["data"]["customer"] is None


async def test_a_write_outside_the_scope_finds_nothing(broken_scope, client, engine):
    """A rep's mutation on another rep's customer: the lock finds no row (RLS), NOT_FOUND."""
    _rep_a, token_a = await make_user(engine, role="SALES_REP", email="a@reps.test")
    rep_b, _ = await make_user(engine, role="SALES_REP", email="b@reps.test")
    theirs = await make_customer(engine, sales_rep_id=rep_b, first_name="Theirs")
    body = await GraphQLClient(client, token_a)(
        """mutation($id: ID!) { customerUpdate(input: {id: $id, firstName: "Mine"}) {
            userErrors { code } } }""",
        {"id": test_access.gid("Customer", theirs.id)},
    )
    assert body["data"]["customerUpdate"]["userErrors"] == [{"code": "NOT_FOUND"}]
    async with engine.connect() as conn:
        name = await conn.scalar(
            text("SELECT first_name FROM customer WHERE id = :i"), {"i": theirs.id}
        )
    assert name == "Theirs"


async def _refused(app_engine: AsyncEngine, *sqls: str) -> str:
    with pytest.raises(Exception) as caught:
        async with app_engine.begin() as conn:
            for sql in sqls:
                await conn.execute(text(sql))
    return str(caught.value)


async def test_the_application_role_is_no_owner(app_engine, engine):
    customer = await make_customer(engine)
    await make_ledger(engine, customer.id, ["10.00"])
    async with app_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, current_user"
                    " FROM pg_roles WHERE rolname = current_user"
                )
            )
        ).one()
        owned = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relowner = current_user::regrole"
            )
        )
    assert tuple(row) == (False, False, False, False, "customer_graph_app")
    assert owned == 0
    assert "permission denied" in await _refused(app_engine, "TRUNCATE ledger_transaction")
    assert "permission denied" in await _refused(app_engine, "TRUNCATE customer")
    for sql in ("UPDATE ledger_transaction SET memo = 'x'", "DELETE FROM ledger_transaction"):
        assert "permission denied" in await _refused(app_engine, sql)
    assert "permission denied" in await _refused(
        app_engine, "SET session_replication_role = replica"
    )
    assert "must be owner" in await _refused(
        app_engine, "ALTER TABLE customer DISABLE ROW LEVEL SECURITY"
    )
    # An admin viewer's role has the same grants: no TRUNCATE, no ledger UPDATE.
    for sql in ("TRUNCATE ledger_transaction", "UPDATE ledger_transaction SET memo = 'x'"):
        assert "permission denied" in await _refused(
            app_engine, "SELECT cg_set_viewer(1, 'ADMIN')", sql
        )


async def test_no_viewer_no_rows(app_engine, engine):
    """A transaction that never sets its viewer sees no customer rows (deny by default),
    and the viewer set in one transaction is gone in the next on the same connection."""
    rep, _ = await make_user(engine, role="SALES_REP", email="a@reps.test")
    await make_customer(engine, sales_rep_id=rep)
    async with app_engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM customer")) == 0
        await conn.rollback()
        await conn.execute(text("SELECT cg_set_viewer(:i, 'SALES_REP')"), {"i": rep})
        assert await conn.scalar(text("SELECT count(*) FROM customer")) == 1
        await conn.rollback()
        assert await conn.scalar(text("SELECT count(*) FROM customer")) == 0
        await conn.rollback()
        await conn.execute(text("SELECT cg_set_viewer(:i, 'SALES_REP')"), {"i": rep + 1})
        assert await conn.scalar(text("SELECT count(*) FROM customer")) == 0


@pytest.mark.parametrize("role", ["ADMIN", "SALES_REP"])
async def test_search_filters_keep_their_indexes_under_rls(
    role, app_engine, engine, settings, seeded
):
    """tests/test_search_explain.py's filters, EXPLAINed as the application role: an admin's
    transaction bypasses RLS (the owner's plans); a rep's customer scan under its policy
    (`sales_rep_id = cg_viewer_rep() OR user_id = cg_viewer_user()`) stays indexed, and so
    does each child table's `EXISTS (SELECT FROM customer c WHERE c.id = customer_id)`."""
    ctx = Context(engine=app_engine, settings=settings, viewer=Viewer(user_id=7, role=Role(role)))
    problems = []
    for name, criteria in FILTERS.items():
        stmt = await filtered_customers(ctx, criteria)
        sql = str(
            stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        ).replace("%%", "%")
        async with app_engine.connect() as conn:
            await set_viewer(conn, ctx.viewer)
            plan = "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {sql}")))
        if "Seq Scan on customer" in plan:
            problems.append(f"{name}: sequential scan\n{plan}")
    assert not problems, "\n\n".join(problems)


async def test_admin_transactions_bypass_rls_and_others_do_not(app_engine):
    """An ADMIN's transaction runs as customer_graph_admin (BYPASSRLS: a superuser migrated
    here), so its plans are the owner's; a rep's stays the app role's, under RLS; the
    switch ends with the transaction."""

    async def who(conn) -> tuple:
        sql = "SELECT current_user::text, row_security_active('customer')"
        return tuple((await conn.execute(text(sql))).one())

    async with app_engine.connect() as conn:
        await conn.execute(text("SELECT cg_set_viewer(1, 'ADMIN')"))
        admin = await who(conn)
        await conn.rollback()
        await conn.execute(text("SELECT cg_set_viewer(2, 'SALES_REP')"))
        rep = await who(conn)
        await conn.rollback()
        after = await who(conn)
    assert admin == ("customer_graph_admin", False)
    assert rep == ("customer_graph_app", True)
    assert after == ("customer_graph_app", True)
