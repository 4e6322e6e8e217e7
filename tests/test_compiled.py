"""The compiled read path answers byte for byte what the field-by-field path answers.

Every query runs twice against the same data: through the compiled path (one SQL
statement) and through Strawberry with dataloaders (CUSTOMER_GRAPH_COMPILED off). The
response bodies must be identical bytes, for each role, including nulls, empty lists,
cursors and argument errors (which the compiled path leaves to Strawberry).
"""

from __future__ import annotations

import base64
import hashlib
import random

import httpx
import orjson
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLObjectType,
    Undefined,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from sqlalchemy import text

from resolvers import compiled as compiled_q
from server.api import schema as app_schema
from server.app import create_app
from server.settings import Settings
from tests.factories import (
    T0,
    make_address,
    make_certificate,
    make_customer,
    make_event,
    make_ledger,
    make_order,
    make_user,
)
from tests.test_nested_reads import PAGE, seed_customers


@pytest.fixture
async def both(engine):
    """(compiled client, dataloader client)."""
    clients = []
    for compiled in (True, False):
        # These tests compare paths, not limits: no cost or alias limit (tests/test_cost.py
        # and tests/test_limits.py have them).
        settings = Settings(
            database_url="unused",
            debug=False,
            compiled_reads=compiled,
            max_cost=10**9,
            max_aliases=10**6,
        )
        app = create_app(engine=engine, settings=settings)
        clients.append(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )
    yield clients
    for c in clients:
        await c.aclose()


async def post(client, token, query, variables=None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    return r.content


async def same(both, token, query, variables=None, *, compiled: bool | None = None) -> bytes:
    """Both paths answer the same bytes; `compiled` asserts which path the first one took."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload = {"query": query, "variables": variables or {}}
    ra = await both[0].post("/graphql", json=payload, headers=headers)
    rb = await both[1].post("/graphql", json=payload, headers=headers)
    a, b = ra.content, rb.content
    assert a == b, f"\ncompiled: {a[:3000]!r}\nloaders:  {b[:3000]!r}\nquery: {query} {variables}"
    assert ra.status_code == rb.status_code
    assert rb.headers.get("x-customer-graph-path") is None
    if compiled is not None:  # True, False, or "mixed" (compiled + Strawberry)
        path = ra.headers.get("x-customer-graph-path")
        expected = {True: "compiled", False: None}.get(compiled, compiled)
        assert path == expected, (query, variables, a[:500])
    return a


@pytest.fixture
async def world(engine):
    """Seeded customers plus the edge cases: nulls, empty lists, a rep, a site user."""
    customers = await seed_customers(engine, 6)
    async with engine.begin() as conn:  # seed_customers inserts explicit order ids
        await conn.execute(
            text("SELECT setval(pg_get_serial_sequence('orders', 'id'), max(id)) FROM orders")
        )
    rep_id, rep_token = await make_user(engine, role="SALES_REP", email="rep2@example.com")
    site_id, site_token = await make_user(engine, role="CUSTOMER", email="site@example.com")
    _admin_id, admin_token = await make_user(engine, role="ADMIN", email="boss@example.com")
    bare = await make_customer(
        engine,
        first_name=None,
        last_name=None,
        company_name='Ünïcode "Quote" Co\n',
        kind="BUSINESS",
        email="bare@example.com",
        sales_rep_id=rep_id,
        user_id=site_id,
        note="line1\nline2\t\\",
    )
    other = await make_customer(
        engine, first_name="Zed", email="zed@example.com", sales_rep_id=rep_id
    )
    merged = await make_customer(
        engine,
        first_name="Old",
        email="old@example.com",
        status="MERGED",
        merged_into_id=other.id,
    )
    await make_certificate(engine, other.id, revoked_at=T0)
    await make_order(engine, other.id, lines=3)
    await make_address(engine, other.id, region=None)
    await make_ledger(engine, other.id, ["12.50", "-2.25"], currency="USD")
    await make_ledger(engine, other.id, ["1.00"], currency="EUR")
    await make_event(engine, other.id, actor_id=rep_id)
    return {
        "customers": customers,
        "bare": bare,
        "other": other,
        "merged": merged,
        "tokens": {"ADMIN": admin_token, "SALES_REP": rep_token, "CUSTOMER": site_token},
    }


ROLES = ["ADMIN", "SALES_REP", "CUSTOMER"]


@pytest.mark.parametrize("role", ROLES)
async def test_nested_page_is_identical(both, world, role):
    body = await same(both, world["tokens"][role], PAGE, {"n": 50})
    assert b'"errors"' not in body


async def test_compiled_page_is_one_statement(both, world, counter):
    counter.reset()
    body = await post(both[0], world["tokens"]["ADMIN"], PAGE, {"n": 50})
    assert orjson.loads(body)["data"]["customers"]["edges"]
    assert counter.count == 2, counter.statements  # the token lookup + the page


# ---------------------------------------------------------------------------------------
# Hand-written corpus: every Customer relation, every field of the compilable subset

CUSTOMER_SCALARS = """id __typename number kind firstName lastName companyName email phone
  referenceId status note version createdAt updatedAt displayName"""
ACCOUNT = """account { __typename id number name createdAt updatedAt
  billingContact { __typename name email phone }
  billingAddress { __typename line1 line2 city region postalCode country }
  paymentMethods { __typename id processor brand last4 expMonth expYear isDefault createdAt } }"""
USER = "id email role firstName lastName isActive createdAt displayName __typename"
ORDER = """__typename id number status source currency placedAt createdAt updatedAt
  subtotal { amount currency } taxTotal { amount currency } shippingTotal { amount currency }
  total { __typename amount currency } amountPaid { amount } amountRefunded { currency }
  salesChannel { id code name }
  lines { __typename id position sku description quantity taxRate
          unitPrice { amount currency } lineTotal { amount currency } }"""
PAGE_INFO = "pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }"
LEDGER = """__typename id kind transferGroup memo createdAt amount { amount currency }
  balanceAfter { amount currency } order { number total { amount } }"""
EVERYTHING = f"""{CUSTOMER_SCALARS}
  {ACCOUNT}
  salesRep {{ {USER} }}
  salesChannels {{ __typename id code name }}
  addresses {{ __typename id kind isDefault name company line1 line2 city region postalCode
              country phone createdAt updatedAt }}
  orders {{ __typename totalCount {PAGE_INFO} edges {{ __typename cursor node {{ {ORDER} }} }} }}
  ledgerTransactions(first: 3) {{ totalCount {PAGE_INFO} nodes {{ {LEDGER} }} }}
  balances {{ __typename amount currency }}
  customFields {{ __typename key label type textValue numberValue booleanValue dateValue value }}
  taxStatus {{ __typename status taxCode exemptionCertificates {{ __typename id number country
    region reason validFrom validTo revokedAt createdAt isValid }} }}
  timeline(first: 2) {{ totalCount {PAGE_INFO} edges {{ cursor node {{ __typename id kind
    occurredAt summary actor {{ email displayName }} }} }} }}"""


def corpus(world) -> list[tuple[str, dict, bool | str]]:
    """(query, variables, answered by the compiled path? True, False or "mixed")"""
    other, bare, merged = world["other"], world["bare"], world["merged"]
    gid = base64.b64encode(f"Customer:{other.id}".encode()).decode()
    return [
        (
            f"query($n: String!) {{ customer(number: $n) {{ {EVERYTHING} }} }}",
            {"n": other.number},
            True,
        ),
        (
            f"query($n: String!) {{ customer(number: $n) {{ {EVERYTHING} }} }}",
            {"n": bare.number},
            True,
        ),
        (f"query($id: ID!) {{ customer(id: $id) {{ {EVERYTHING} }} }}", {"id": gid}, True),
        (f'{{ customer(email: "BARE@example.com") {{ {EVERYTHING} }} }}', {}, True),
        ('{ customer(email: "old@example.com") { number } }', {}, True),
        (
            "query($n: String!) { customer(number: $n) { number status } }",
            {"n": merged.number},
            True,
        ),
        ('{ customer(number: "nope") { number } }', {}, True),
        (
            f"{{ customers(first: 3) {{ {PAGE_INFO} edges {{ cursor node {{ {EVERYTHING} }} }} }} }}",  # noqa: E501
            {},
            True,
        ),
        ("{ customers { totalCount nodes { number } } }", {}, True),
        (
            f"{{ __typename a: customers(first: 0) {{ totalCount {PAGE_INFO} nodes {{ id }} }} }}",
            {},
            True,
        ),
        *[
            (
                "query($f: CustomerOrderField!, $d: OrderDirection!) { customers(first: 4,"
                f" orderBy: {{field: $f, direction: $d}}) {{ {PAGE_INFO} edges {{ cursor node {{ number }} }} }} }}",  # noqa: E501
                {"f": f, "d": d},
                True,
            )
            for f in ("NAME", "NUMBER", "CREATED_AT", "UPDATED_AT")
            for d in ("ASC", "DESC")
        ],
        (f"{{ customers(last: 2) {{ {PAGE_INFO} nodes {{ number }} }} }}", {}, True),
        (
            f"{{ customers(orderBy: {{field: NUMBER}}) {{ nodes {{ number orders(last: 2) {{ {PAGE_INFO}"  # noqa: E501
            " nodes { number } } } } }",
            {},
            True,
        ),
        # fragments, aliases, directives, variables
        (
            f"""query($yes: Boolean!, $no: Boolean!) {{ customer(number: "{other.number}") {{
            ...C  ... on Customer {{ x: number  email @skip(if: $yes) }}
            y: orders(first: 2) @include(if: $yes) {{ ...Conn }}
            z: orders(first: 1) @include(if: $no) {{ totalCount }}
            ledgerTransactions @skip(if: $no) {{ nodes {{ ... on LedgerTransaction {{ kind }} }} }} }} }}  # noqa: E501
          fragment C on Customer {{ number n2: number taxStatus {{ ...T }} }}
          fragment T on TaxStatus {{ status }}
          fragment Conn on OrderConnection {{ edges {{ cursor }} edges {{ node {{ number }} }} }}""",  # noqa: E501
            {"yes": True, "no": False},
            True,
        ),
        (
            f'{{ a: customer(number: "{other.number}") {{ number }} b: customer(number: "{bare.number}") {{ n: number }} }}',  # noqa: E501
            {},
            True,
        ),
        # JSON scalars compile (tests/test_compiled_json.py has the odd values)
        (
            f'{{ customer(number: "{other.number}") {{ orders {{ nodes {{ shippingAddress }} }} }} }}',  # noqa: E501
            {},
            True,
        ),
        (
            f'{{ customer(number: "{other.number}") {{ timeline {{ nodes {{ data cursor }} }} }} }}',  # noqa: E501
            {},
            True,
        ),
        (f'{{ customer(number: "{merged.number}") {{ mergedInto {{ number }} }} }}', {}, True),
        (
            "{ customers(filter: {status: [MERGED]}) { nodes { number status"
            " mergedInto { number email mergedInto { number } orders(first: 1) { totalCount } }"
            " } } }",
            {},
            True,
        ),
        (
            "{ customers(first: 1) { nodes { number } } bulkJobs { totalCount } }",
            {},
            "mixed",
        ),
        ("{ customers(first: 1) { nodes { addresses { customer { number } } } } }", {}, True),
        ("{ customers(first: 1) { nodes { number mergedInto { number } } } }", {}, True),
        # bad arguments: Strawberry answers, the bytes still match
        ("{ customers(first: 101) { totalCount } }", {}, False),
        ("{ customers(first: -1) { totalCount } }", {}, False),
        ("{ customers(first: 1, last: 1) { totalCount } }", {}, False),
        ('{ customers(after: "garbage") { totalCount } }', {}, False),
        ('{ customers(before: "WyJ4Il0") { totalCount } }', {}, False),
        (
            f'{{ customer(number: "{other.number}") {{ orders(after: "bad!") {{ totalCount }} }} }}',  # noqa: E501
            {},
            False,
        ),
        (
            f'{{ customer(number: "{other.number}") {{ orders(first: 500) {{ totalCount }} }} }}',
            {},
            False,
        ),
        ('{ customer(id: "bad") { number } }', {}, False),
        (
            '{{ customer(id: "{}") {{ number }} }}'.format(base64.b64encode(b"Order:1").decode()),
            {},
            False,
        ),
        ("{ customer { number } }", {}, False),
        ('{ customer(number: "x", email: "y") { number } }', {}, False),
        ("query($n: Int) { customers(first: $n) { totalCount } }", {"n": "ten"}, False),
        ("{ customers { nope } }", {}, False),
        ("{ customers { ", {}, False),
    ]


@pytest.mark.parametrize("role", ROLES)
async def test_corpus_is_identical(both, world, role):
    token = world["tokens"][role]
    for query, variables, compiled in corpus(world):
        await same(both, token, query, variables, compiled=compiled)


async def test_nested_cursor_walk_is_identical(both, world):
    """Page through orders forward and backward with the cursors the compiled path prints."""
    token = world["tokens"]["ADMIN"]
    number = world["customers"][0].number
    q = f"""query($n: String!, $a: String, $b: String, $f: Int, $l: Int) {{ customer(number: $n) {{
      orders(first: $f, after: $a, last: $l, before: $b) {{ {PAGE_INFO} nodes {{ number }} }} }} }}"""  # noqa: E501
    variables = {"n": number, "f": 5}
    while True:
        body = orjson.loads(await same(both, token, q, variables, compiled=True))
        info = body["data"]["customer"]["orders"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        variables = {"n": number, "f": 5, "a": info["endCursor"]}
    variables = {"n": number, "l": 4, "b": info["startCursor"]}
    while True:
        body = orjson.loads(await same(both, token, q, variables, compiled=True))
        info = body["data"]["customer"]["orders"]["pageInfo"]
        if not info["hasPreviousPage"]:
            break
        variables = {"n": number, "l": 4, "b": info["startCursor"]}


async def test_tokens_and_anonymous_fall_back(both, world):
    for token in (None, "cg_unknown"):
        await same(both, token, "{ customers { totalCount } }", compiled=False)
    _compiled, _loaders = both
    for c in both:
        r = await c.post(
            "/graphql",
            json={"query": "{ customers { totalCount } }"},
            headers={"Authorization": "Basic abc"},
        )
        assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# ---------------------------------------------------------------------------------------
# Generated queries: random subsets of the compilable subset, seeded RNG
#
# What the generator may select is read from the real schema, restricted to what
# resolvers/compiled/ declares compilable (the test `Builder.field` applies): a field of
# object type T is `__typename`, a column-backed scalar of `scalar_columns(T)` whose type
# the builder can print, or an entry of `RELATIONS[T]`. A newly declared field is then
# generated (and `test_generator_covers_every_compilable_field` insists it was).

GQL = app_schema._schema


def _is_required(arg) -> bool:
    return is_non_null_type(arg.type) and arg.default_value is Undefined


def _prints(field_name: str, leaf) -> bool:
    """Whether `Builder.field` prints this column-backed leaf (a JSON scalar falls back)."""
    if field_name == "id" and leaf.name == "ID":
        return True
    return isinstance(leaf, GraphQLEnumType) or leaf.name in compiled_q.SCALAR_ENCODERS


def _connection(gtype) -> tuple[str, str, str] | None:
    """(node type, connection type, edge type) of a Relay connection type, else None."""
    if not isinstance(gtype, GraphQLObjectType) or "pageInfo" not in gtype.fields:
        return None
    if "edges" not in gtype.fields:
        return None
    edge = get_named_type(gtype.fields["edges"].type)
    node = get_named_type(edge.fields["node"].type)
    return node.name, gtype.name, edge.name


def derive_schema(root: str = "Customer") -> dict[str, dict]:
    """Per object type reachable from `root` through compilable fields: its compilable
    fields as "scalars" (leaves), "one" / "many" (object, list of objects: field -> type)
    and "conn" (Relay connections: field -> (node, connection, edge) type names)."""
    out: dict[str, dict] = {}
    todo = [root]
    while todo:
        type_name = todo.pop(0)
        if type_name in out:
            continue
        gtype = GQL.type_map[type_name]
        columns = compiled_q.scalar_columns(gtype)
        relations = compiled_q.RELATIONS.get(type_name, {})
        spec: dict = {"scalars": ["__typename"], "one": {}, "many": {}, "conn": {}}
        out[type_name] = spec
        for name, fdef in gtype.fields.items():
            if name not in relations and name not in columns:
                continue  # not compilable: the operation would fall back
            if any(
                _is_required(arg)
                for arg_name, arg in fdef.args.items()
                if arg_name not in compiled_q.PAGE_ARGS
            ):
                continue
            named = get_named_type(fdef.type)
            if is_leaf_type(named):
                if name in relations or _prints(name, named):
                    spec["scalars"].append(name)
                continue
            if name not in relations or not isinstance(named, GraphQLObjectType):
                continue  # an object needs a relation; interfaces and unions fall back
            conn = _connection(named)
            if conn is not None:
                spec["conn"][name] = conn
                todo.append(conn[0])
            elif is_list_type(get_nullable_type(fdef.type)):
                spec["many"][name] = named.name
                todo.append(named.name)
            else:
                spec["one"][name] = named.name
                todo.append(named.name)
    return out


SCHEMA = derive_schema()


def compilable_fields(spec: dict) -> set[str]:
    return {*spec["scalars"], *spec["one"], *spec["many"], *spec["conn"]}


class QueryGen:
    def __init__(self, rng: random.Random, seen: dict[str, set[str]] | None = None) -> None:
        self.rng = rng
        self.fragments: list[str] = []
        self.used: set[str] = set()
        # type -> compilable fields emitted where they are evaluated (not under a false
        # @include or a true @skip, nor inside such a field)
        self.seen = seen if seen is not None else {}

    def directive(self) -> str:
        r = self.rng.random()
        if r < 0.08:
            self.used.add("yes")
            return " @include(if: $yes)"
        if r < 0.12:
            self.used.add("no")
            return " @skip(if: $no)"
        if r < 0.15:
            self.used.add("no")
            return " @include(if: $no)"
        return ""

    def alias(self, name: str) -> str:
        return f"{name}_{self.rng.randint(1, 9)}: " if self.rng.random() < 0.15 else ""

    def emit(self, type_name: str, name: str, directive: str, live: bool) -> bool:
        """Records the field as generated; whether its own selection is evaluated."""
        live = live and directive != " @include(if: $no)"
        if live:
            self.seen.setdefault(type_name, set()).add(name)
        return live

    def selection(self, type_name: str, depth: int, live: bool = True) -> str:
        spec = SCHEMA[type_name]
        fields = []
        scalars = spec["scalars"]
        for s in self.rng.sample(scalars, self.rng.randint(1, min(4, len(scalars)))):
            alias, directive = self.alias(s), self.directive()
            self.emit(type_name, s, directive, live)
            fields.append(f"{alias}{s}{directive}")
        if depth < 3:
            for kind in ("one", "many"):
                for name, child in spec[kind].items():
                    if self.rng.random() < 0.3:
                        alias, directive = self.alias(name), self.directive()
                        inner = self.emit(type_name, name, directive, live)
                        fields.append(
                            f"{alias}{name}{directive}"
                            f" {{ {self.selection(child, depth + 1, inner)} }}"
                        )
            for name, types in spec["conn"].items():
                if self.rng.random() < 0.35:
                    fields.append(self.connection(type_name, name, types, depth, live))
        body = " ".join(fields)
        r = self.rng.random()
        if r < 0.15:
            return f"... on {type_name} {{ {body} }}"
        if r < 0.3:
            name = f"F{len(self.fragments)}"
            self.fragments.append(f"fragment {name} on {type_name} {{ {body} }}")
            return f"...{name}"
        return body

    def connection(
        self, parent: str, name: str, types: tuple[str, str, str], depth: int, live: bool
    ) -> str:
        rng = self.rng
        node, conn, _edge = types
        page_args = GQL.type_map[parent].fields[name].args
        conn_fields = GQL.type_map[conn].fields
        args = []
        if rng.random() < 0.7:
            arg = "last" if rng.random() < 0.2 else "first"
            size = rng.randint(0, 4)
            if arg in page_args:
                args.append(f"{arg}: {size}")
        alias, directive = self.alias(name), self.directive()
        inner = self.emit(parent, name, directive, live)
        parts = []
        if rng.random() < 0.4 and "totalCount" in conn_fields:
            parts.append("totalCount")
        if rng.random() < 0.5:
            info = rng.sample(
                ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"], rng.randint(1, 4)
            )
            parts.append(f"pageInfo {{ {' '.join(info)} }}")
        if rng.random() < 0.6:
            typename = "__typename " if rng.random() < 0.1 else ""
            cursor = "cursor " if rng.random() < 0.5 else ""
            selection = self.selection(node, depth + 1, inner)
            parts.append(f"edges {{ {typename}{cursor}node {{ {selection} }} }}")
        if (not parts or rng.random() < 0.3) and "nodes" in conn_fields:
            parts.append(f"nodes {{ {self.selection(node, depth + 1, inner)} }}")
        elif not parts:
            parts.append(f"edges {{ node {{ {self.selection(node, depth + 1, inner)} }} }}")
        if rng.random() < 0.1:
            parts.append("__typename")
        arg_text = f"({', '.join(args)})" if args else ""
        return f"{alias}{name}{arg_text}{directive} {{ {' '.join(parts)} }}"

    def query(self, numbers: list[str], ids: list[int]) -> tuple[str, dict]:
        """A generated selection under one of the root fields the compiled path answers:
        every root the read API offers over these types, not only customer/customers."""
        rng = self.rng
        kind = rng.choice(
            ["customer", "customer", "customers", "customers", "node", "nodes", "me",
             "search", "accounts", "salesReps", "salesChannels", "by"]
        )  # fmt: skip
        # Only the chosen root's selection is generated: an unused fragment is invalid.
        customer = self.selection("Customer", 0) if kind not in _OTHER_ROOTS else ""
        gid = base64.b64encode(f"Customer:{rng.choice(ids)}".encode()).decode()
        if kind == "customer":
            text = f'customer(number: "{rng.choice(numbers)}") {{ {customer} }}'
        elif kind == "by":
            text = f'customer(by: {{number: "{rng.choice(numbers)}"}}) {{ {customer} }}'
        elif kind == "customers":
            field = rng.choice(["NAME", "NUMBER", "CREATED_AT", "UPDATED_AT"])
            direction = rng.choice(["ASC", "DESC"])
            text = f"customers(first: {rng.randint(1, 5)}, orderBy: {{field: {field},"
            text += f" direction: {direction}}}) {{ totalCount nodes {{ {customer} }} }}"
        elif kind == "node":
            text = f'node(id: "{gid}") {{ __typename ... on Customer {{ {customer} }} }}'
        elif kind == "nodes":
            other = base64.b64encode(f"Customer:{rng.choice(ids)}".encode()).decode()
            text = f'nodes(ids: ["{gid}", "{other}"]) {{ id ... on Customer {{ {customer} }} }}'
        elif kind == "me":
            text = f"me {{ customer {{ {customer} }} }}"
        elif kind == "search":
            text = (
                'customerSearch(filter: {lastName: "a", nameMatch: PREFIX}, first: 3) {'
                f" __typename ... on CustomerSearchMatches {{ customers {{ nodes {{ {customer} }}"
                " } } }"
            )
        elif kind == "accounts":
            text = f"accounts(first: 3) {{ nodes {{ {self.selection('Account', 1)} }} }}"
        elif kind == "salesReps":
            text = f"salesReps {{ {self.selection('User', 1)} }}"
        else:
            text = f"salesChannels {{ {self.selection('SalesChannel', 1)} }}"
        defs = ", ".join(f"${v}: Boolean!" for v in sorted(self.used))
        head = f"query({defs})" if defs else "query"
        variables = {v: v == "yes" for v in self.used}
        return f"{head} {{ {text} }} " + " ".join(self.fragments), variables


_OTHER_ROOTS = ("accounts", "salesReps", "salesChannels")
GENERATED = 160


def generated_queries(world) -> tuple[list[tuple[str, dict]], dict[str, set[str]]]:
    """The seeded corpus ((query, variables) each) and the fields it selects per type."""
    rng = random.Random(20250801)
    numbers = [c.number for c in world["customers"]] + [
        world["other"].number,
        world["bare"].number,
        world["merged"].number,
    ]
    ids = [c.id for c in world["customers"]] + [world["other"].id, world["merged"].id]
    seen: dict[str, set[str]] = {}
    return [QueryGen(rng, seen).query(numbers, ids) for _ in range(GENERATED)], seen


async def test_generated_queries_are_identical(both, world):
    queries, _seen = generated_queries(world)
    for i, (query, variables) in enumerate(queries):
        role = ROLES[i % 3]
        await same(both, world["tokens"][role], query, variables, compiled=True)


async def test_generator_covers_every_compilable_field(world):
    """Every field resolvers/compiled/ declares compilable is selected by some generated
    query, so a newly declared one is compared on both paths without editing this file."""
    assert compiled_q.RELATIONS.keys() <= SCHEMA.keys(), "a RELATIONS type is unreachable"
    assert {"orders", "ledgerTransactions", "timeline"} <= SCHEMA["Customer"]["conn"].keys()
    _queries, seen = generated_queries(world)
    missing = {
        type_name: sorted(compilable_fields(spec) - seen.get(type_name, set()))
        for type_name, spec in SCHEMA.items()
    }
    assert not {k: v for k, v in missing.items() if v}, missing


# ---------------------------------------------------------------------------------------
# Automatic persisted queries (Apollo APQ)


def _apq(digest: str) -> str:
    return orjson.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}}).decode()


async def test_persisted_queries(both, world):
    compiled = both[0]
    headers = {"Authorization": f"Bearer {world['tokens']['ADMIN']}"}
    query = "query($n: Int) { customers(first: $n) { nodes { number } } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    ext = {"persistedQuery": {"version": 1, "sha256Hash": digest}}

    r = await compiled.post("/graphql", json={"extensions": ext}, headers=headers)
    assert r.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    params = {"extensions": _apq(digest), "variables": '{"n": 2}'}
    r = await compiled.get("/graphql", params=params, headers=headers)
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

    # register with the full query, then the hash alone works, by POST and by GET
    full = await compiled.post(
        "/graphql", json={"query": query, "variables": {"n": 2}, "extensions": ext}, headers=headers
    )
    assert full.headers["x-customer-graph-path"] == "compiled"
    by_post = await compiled.post(
        "/graphql", json={"variables": {"n": 2}, "extensions": ext}, headers=headers
    )
    by_get = await compiled.get("/graphql", params=params, headers=headers)
    assert full.content == by_post.content == by_get.content
    assert len(orjson.loads(by_get.content)["data"]["customers"]["nodes"]) == 2

    # a mismatching hash is refused
    bad = await compiled.post(
        "/graphql",
        json={"query": query + " ", "extensions": ext},
        headers=headers,
    )
    assert bad.status_code == 400

    # a persisted query the compiled path answers only in part still runs
    viewer_q = "{ me { user { email } } bulkJobs { __typename } }"
    vdigest = hashlib.sha256(viewer_q.encode()).hexdigest()
    vext = {"persistedQuery": {"version": 1, "sha256Hash": vdigest}}
    await compiled.post("/graphql", json={"query": viewer_q, "extensions": vext}, headers=headers)
    r = await compiled.get("/graphql", params={"extensions": _apq(vdigest)}, headers=headers)
    body = r.json()
    assert body["data"]["me"] == {"user": {"email": "boss@example.com"}}, body
    jobs = body["data"]["bulkJobs"]
    assert "errors" not in body and jobs == {"__typename": "BulkJobConnection"}
    assert r.headers["x-customer-graph-path"] == "mixed"  # me compiled, bulkJobs not


async def test_limits_apply_to_the_compiled_path(engine, world):
    """Over a limit, the compiled path steps aside and the limit's own error answers."""
    import dataclasses

    settings = Settings(database_url="unused", debug=False, compiled_reads=True)
    tight = dataclasses.replace(settings, max_depth=4, max_cost=30, max_aliases=1)
    app = create_app(engine=engine, settings=tight)
    token = world["tokens"]["ADMIN"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for query, code in (
            (
                "{ customers { edges { node { orders { edges { node { number } } } } } } }",
                "QUERY_TOO_DEEP",
            ),
            (
                "{ customers(first: 10) { nodes { number timeline(first: 5) { totalCount } } } }",
                "QUERY_TOO_COSTLY",
            ),
            ("{ a: customers { totalCount } b: customers { totalCount } }", "TOO_MANY_ALIASES"),
        ):
            r = await c.post(
                "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
            )
            assert r.headers.get("x-customer-graph-path") is None, query
            assert r.json()["errors"][0]["extensions"]["code"] == code, r.json()


async def test_cached_statement_serves_each_viewer_their_own(both, world, engine):
    """The statement cache is keyed by role, not viewer: two reps with the same query and
    variables each see their own customers, on the compiled path both times."""
    rep_a, token_a = await make_user(engine, role="SALES_REP", email="rep-a@example.com")
    rep_b, token_b = await make_user(engine, role="SALES_REP", email="rep-b@example.com")
    await make_customer(engine, first_name="Ann", email="ann@example.com", sales_rep_id=rep_a)
    await make_customer(engine, first_name="Bob", email="bob@example.com", sales_rep_id=rep_b)
    query = "query { customers(first: 10) { nodes { firstName } } }"
    names = []
    for token in (token_a, token_b, token_a):
        body = await same(both, token, query, compiled=True)
        names.append([n["firstName"] for n in orjson.loads(body)["data"]["customers"]["nodes"]])
    assert names == [["Ann"], ["Bob"], ["Ann"]]


async def test_fractional_seconds_print_as_postgresql_prints_them(both, world, engine):
    """µs 120000 prints `.12` on both paths (PostgreSQL's JSON form), whole seconds none."""
    order = await make_order(engine, world["other"].id, lines=1)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE orders SET placed_at = :t WHERE id = :id"),
            {"t": T0.replace(microsecond=120000), "id": order.id},
        )
    query = """query($id: ID!) { customer(id: $id) {
        orders(first: 5) { edges { cursor node { number placedAt } } } } }"""
    gid = base64.b64encode(f"Customer:{world['other'].id}".encode()).decode()
    body = await same(both, world["tokens"]["ADMIN"], query, {"id": gid}, compiled=True)
    stamps = [
        e["node"]["placedAt"] for e in orjson.loads(body)["data"]["customer"]["orders"]["edges"]
    ]
    assert "2025-01-01T00:00:00.12+00:00" in stamps
