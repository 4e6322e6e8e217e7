"""One compiled statement per variable shape (resolvers/compiled/variables.py, generic.py):
the same document with another customer ID, search prefix or cursor reuses the statement
with its own parameters; a variable that shapes the SQL gets its own statement; bad
values answer as before; and each answer is byte for byte the field-by-field path's."""

from __future__ import annotations

import httpx
import orjson
import pytest
from graphql import get_operation_ast, parse
from graphql.execution.values import get_variable_values

from models.enums import Role
from resolvers.compiled import ROOTS, generic
from resolvers.compiled.variables import RawRead
from resolvers.viewer import Viewer
from server.api import schema as app_schema
from server.app import create_app
from server.compiled import CompiledGraphQL
from server.settings import Settings
from tests.conftest import gid
from tests.factories import make_customer, make_order, make_user
from tests.test_compiled import both, same, world  # noqa: F401 - fixtures
from tests.test_rls import broken_scope  # noqa: F401 - fixture

ONE_CUSTOMER = """query($id: ID!) { customer(by: {id: $id}) {
  number firstName lastName orders(first: 5) { nodes { number total { amount } } } } }"""
PAGES = """query($after: String) { customers(first: 2, after: $after) {
  pageInfo { hasNextPage endCursor } nodes { number } } }"""
SEARCH = """query($p: String!, $c: String!) {
  customerSearch(filter: {lastName: $p, nameMatch: PREFIX, country: $c}, first: 50) {
    __typename ... on CustomerSearchMatches { customers { nodes { number lastName } } } } }"""
NODE = """query($id: ID!) { node(id: $id) { id __typename
  ... on Customer { number lastName } ... on Order { number total { amount } } } }"""


def compiled_of(client: httpx.AsyncClient) -> CompiledGraphQL:
    """The /graphql front of the app behind a test client (its statement cache)."""
    app = client._transport.app  # type: ignore[attr-defined]
    return next(r.endpoint for r in app.routes if isinstance(r.endpoint, CompiledGraphQL))


def data(body: bytes) -> dict:
    return orjson.loads(body)["data"]


async def test_two_customer_ids_compile_once(both, world):  # noqa: F811
    front = compiled_of(both[0])
    token = world["tokens"]["ADMIN"]
    for customer in world["customers"][:4]:
        body = await same(both, token, ONE_CUSTOMER, {"id": gid("Customer", customer.id)})
        found = data(body)["customer"]
        assert found["number"] == customer.number
        assert len(found["orders"]["nodes"]) == 5
    assert front.compiles == 1


async def test_keyset_pages_share_one_statement(both, world):  # noqa: F811
    front = compiled_of(both[0])
    token = world["tokens"]["ADMIN"]
    body = data(await same(both, token, PAGES, {}, compiled=True))["customers"]
    seen = [n["number"] for n in body["nodes"]]
    assert front.compiles == 1  # no cursor: a shape of its own
    while body["pageInfo"]["hasNextPage"]:
        after = body["pageInfo"]["endCursor"]
        body = data(await same(both, token, PAGES, {"after": after}, compiled=True))["customers"]
        seen += [n["number"] for n in body["nodes"]]
    full = data(await same(both, token, "{ customers(first: 100) { nodes { number } } }"))
    assert seen == [n["number"] for n in full["customers"]["nodes"]]
    assert len(seen) >= 8  # four pages at least, one statement for every page after the first
    assert front.compiles == 3


async def test_search_prefixes_share_one_statement(both, world):  # noqa: F811
    front = compiled_of(both[0])
    token = world["tokens"]["ADMIN"]
    found = {}
    for prefix in ("Last00", "last001", "Last", "Nobody"):
        body = await same(both, token, SEARCH, {"p": prefix, "c": "FR"}, compiled=True)
        nodes = data(body)["customerSearch"]["customers"]["nodes"]
        found[prefix] = {n["lastName"] for n in nodes}
    assert found["Last00"] == {f"Last00{i}" for i in range(6)}
    assert found["last001"] == {"Last001"}
    assert found["Nobody"] == set()
    assert front.compiles == 1
    # Another country reuses it too; one with no customers finds none.
    body = await same(both, token, SEARCH, {"p": "Last", "c": "US"}, compiled=True)
    assert data(body)["customerSearch"]["customers"]["nodes"] == []
    assert front.compiles == 1


async def test_node_ids_of_two_types_get_a_statement_each(both, world, engine):  # noqa: F811
    front = compiled_of(both[0])
    token = world["tokens"]["ADMIN"]
    first, second = world["customers"][:2]
    orders = [await make_order(engine, first.id), await make_order(engine, second.id)]
    body = await same(both, token, NODE, {"id": gid("Customer", first.id)}, compiled=True)
    assert data(body)["node"]["number"] == first.number
    body = await same(both, token, NODE, {"id": gid("Order", orders[0].id)}, compiled=True)
    assert data(body)["node"] == {
        "id": gid("Order", orders[0].id),
        "__typename": "Order",
        "number": orders[0].number,
        "total": {"amount": "33.00"},
    }
    assert front.compiles == 2
    body = await same(both, token, NODE, {"id": gid("Customer", second.id)}, compiled=True)
    assert data(body)["node"]["number"] == second.number
    body = await same(both, token, NODE, {"id": gid("Order", orders[1].id)}, compiled=True)
    assert data(body)["node"]["number"] == orders[1].number
    body = await same(both, token, NODE, {"id": gid("Customer", 10**12)}, compiled=True)
    assert data(body)["node"] is None
    assert front.compiles == 2


async def test_variables_that_shape_the_sql_get_their_own_statement(both, world):  # noqa: F811
    front = compiled_of(both[0])
    token = world["tokens"]["ADMIN"]
    ordered = """query($f: CustomerOrderField!) { customers(first: 3, orderBy: {field: $f,
      direction: DESC}) { nodes { number lastName } } }"""
    by_name = data(await same(both, token, ordered, {"f": "NAME"}, compiled=True))
    by_number = data(await same(both, token, ordered, {"f": "NUMBER"}, compiled=True))
    assert by_name != by_number
    assert front.compiles == 2
    await same(both, token, ordered, {"f": "NAME"}, compiled=True)
    assert front.compiles == 2

    filtered = """query($f: CustomerFilter) { customers(first: 50, filter: $f) {
      nodes { number } } }"""
    everyone = data(await same(both, token, filtered, {"f": None}, compiled=True))
    some = data(await same(both, token, filtered, {"f": {"lastName": "Last001"}}, compiled=True))
    assert len(some["customers"]["nodes"]) == 1 < len(everyone["customers"]["nodes"])
    assert front.compiles == 4
    # Another filter field present: other SQL; the same field again: reused.
    await same(both, token, filtered, {"f": {"firstName": "First001"}}, compiled=True)
    assert front.compiles == 5
    other = data(await same(both, token, filtered, {"f": {"lastName": "Last002"}}, compiled=True))
    assert other != some
    assert front.compiles == 5


async def test_bad_ids_and_cursors_answer_as_before(both, world, engine):  # noqa: F811
    token = world["tokens"]["ADMIN"]
    customer = world["customers"][0]
    order = await make_order(engine, customer.id)
    good = {"id": gid("Customer", customer.id)}
    await same(both, token, ONE_CUSTOMER, good, compiled=True)
    for bad in ("nope", gid("Order", order.id), gid("Customer", "1x"), gid("Customer", 2**64)):
        body = await same(both, token, ONE_CUSTOMER, {"id": bad}, compiled=False)
        assert orjson.loads(body)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await same(both, token, NODE, {"id": gid("Customer", customer.id)}, compiled=True)
    for bad in ("nope", gid("Nothing", 1), gid("Customer", "-")):
        await same(both, token, NODE, {"id": bad}, compiled=False)
    page = data(await same(both, token, PAGES, {}, compiled=True))
    cursor = page["customers"]["pageInfo"]["endCursor"]
    await same(both, token, PAGES, {"after": cursor}, compiled=True)
    for bad in ("bm9wZQ", cursor[:-2], "WyJhIl0", "WyJhIiwgIngiXQ"):  # not JSON, cut, short, typed
        body = await same(both, token, PAGES, {"after": bad}, compiled=False)
        assert orjson.loads(body)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await same(both, token, SEARCH, {"p": "Last", "c": "FR"}, compiled=True)
    await same(both, token, SEARCH, {"p": "Last", "c": "XX"}, compiled=False)  # no country
    await same(both, token, SEARCH, {"p": "La\u0000", "c": "FR"}, compiled=False)  # NUL
    # and the good values are still served by the cached statements
    front = compiled_of(both[0])
    compiles = front.compiles
    await same(both, token, ONE_CUSTOMER, good, compiled=True)
    await same(both, token, PAGES, {"after": cursor}, compiled=True)
    await same(both, token, SEARCH, {"p": "Last00", "c": "FR"}, compiled=True)
    assert front.compiles == compiles


@pytest.fixture
async def rls_both(app_engine):
    """(compiled, field-by-field) clients as the application role: row-level security on."""
    clients = []
    for compiled in (True, False):
        settings = Settings(database_url="unused", debug=False, compiled_reads=compiled)
        app = create_app(engine=app_engine, settings=settings)
        clients.append(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )
    yield clients
    for c in clients:
        await c.aclose()


async def test_a_rep_never_sees_another_reps_customer(rls_both, engine):
    """Both reps' requests share one statement (one role); each sees only their own."""
    await _reps_apart(rls_both, engine)


async def test_a_rep_never_sees_another_reps_customer_with_rls_alone(
    broken_scope,  # noqa: F811
    rls_both,
    engine,
):
    """resolvers/scope.py broken: row-level security alone keeps them apart."""
    await _reps_apart(rls_both, engine)


async def _reps_apart(rls_both, engine) -> None:
    rep_a, token_a = await make_user(engine, role="SALES_REP", email="rep-a@example.com")
    rep_b, token_b = await make_user(engine, role="SALES_REP", email="rep-b@example.com")
    ann = await make_customer(engine, last_name="Ann", email="ann@example.com", sales_rep_id=rep_a)
    bob = await make_customer(engine, last_name="Bob", email="bob@example.com", sales_rep_id=rep_b)
    front = compiled_of(rls_both[0])
    seen = []
    for token, customer in [(token_a, ann), (token_a, bob), (token_b, bob), (token_b, ann)]:
        body = await same(rls_both, token, ONE_CUSTOMER, {"id": gid("Customer", customer.id)})
        seen.append(data(body)["customer"] and data(body)["customer"]["lastName"])
    assert seen == ["Ann", None, "Bob", None]
    assert front.compiles == 1


# ---------------------------------------------------------------------------------------
# The proof: a planner that reads a value behind the tracing's back keys by value


def _compiled(query: str, variables: dict) -> generic.Compiled:
    document = parse(query)
    operation = get_operation_ast(document, None)
    gql = app_schema._schema
    coerced = get_variable_values(gql, operation.variable_definitions, variables)
    return generic.compile_reusable(
        gql, document, operation, coerced, variables, Viewer(user_id=7, role=Role.ADMIN)
    )


NUMBER = "query($n: String!) { customer(number: $n) { number } }"


def test_an_honest_planner_is_reusable():
    compiled = _compiled(NUMBER, {"n": "C-1"})
    assert compiled.generic == {("n",)}
    assert compiled.statement.rebound({"n": "C-2"}).params != compiled.statement.params


def test_a_value_read_directly_keys_by_value(monkeypatch):
    original = ROOTS["customer"]

    def peeking(b, gtype, nodes):
        b.args(gtype, nodes)["number"].startswith("C")  # any use outside `recorded`
        return original(b, gtype, nodes)

    monkeypatch.setitem(ROOTS, "customer", peeking)
    compiled = _compiled(NUMBER, {"n": "C-1"})
    assert compiled.generic == frozenset()
    assert compiled.statement is not None


def test_a_planner_telling_vars_from_strings_keys_by_value(monkeypatch):
    """isinstance() raises nothing on a Var: the first proof (traced = ordinary) sees it."""
    original = ROOTS["customer"]

    def typed(b, gtype, nodes):
        sql = original(b, gtype, nodes)
        return sql if isinstance(b.args(gtype, nodes)["number"], str) else "'\"told\"'"

    monkeypatch.setitem(ROOTS, "customer", typed)
    compiled = _compiled(NUMBER, {"n": "C-1"})
    assert compiled.generic == frozenset()
    assert "told" not in compiled.statement.sql


def test_a_value_smuggled_out_of_a_producer_fails_the_proof(monkeypatch):
    """A producer leaking its value into the SQL around it: only the perturbed compile
    (the second proof) can tell, and it does."""
    original = ROOTS["customer"]

    def smuggling(b, gtype, nodes):
        leaked = []
        b.recorded(lambda p, v: leaked.append(v), b.args(gtype, nodes)["number"])
        return f"(SELECT {original(b, gtype, nodes)} WHERE '{leaked[0]}' <> '')"

    monkeypatch.setitem(ROOTS, "customer", smuggling)
    compiled = _compiled(NUMBER, {"n": "C-1"})
    assert compiled.generic == frozenset()
    assert "'C-1'" in compiled.statement.sql


def test_a_var_refuses_every_use():
    from resolvers.compiled.variables import Var

    var = Var(("n",), "secret")
    for use in (str, repr, bool, len, hash, lambda v: v == "secret", lambda v: v + "x"):
        with pytest.raises(RawRead):
            use(var)
    with pytest.raises(RawRead):
        var.strip()  # type: ignore[attr-defined]
    with pytest.raises(RawRead):
        f"{var}"
