"""The cost limit counts what will run: coerced variables (defaults included), every list
sized (connections by page, plain lists by their declared bound), refused before any SQL;
and the computed cost is never below the objects a query actually returns."""

from __future__ import annotations

import base64
import random

import httpx
import orjson
import pytest
from graphql import (
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLUnionType,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    parse,
)
from sqlalchemy import insert, select

from models import Customer
from resolvers.tokens import issue_token
from server.api import schema
from server.app import create_app
from server.limits import query_cost
from server.settings import Settings
from tests.factories import make_customer, make_user
from tests.test_nested_reads import seed_customers

GRAPHQL = schema._schema
NODE_TYPES = {t.name for t in GRAPHQL.get_possible_types(GRAPHQL.type_map["Node"])}
CAP = 50  # resolvers.accounts.ACCOUNT_CUSTOMERS_CAP, as documented in the schema


def apps(engine, **limits) -> dict[str, httpx.AsyncClient]:
    clients = {}
    for path, compiled in (("compiled", True), ("loaders", False)):
        settings = Settings(database_url="unused", debug=False, compiled_reads=compiled, **limits)
        app = create_app(engine=engine, settings=settings)
        clients[path] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        )
    return clients


async def post(client, token: str, query: str, variables: dict | None = None) -> dict:
    r = await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    return r.json()


@pytest.fixture
async def world(engine):
    """Six full customers (12 orders of 2 lines, ledger, addresses, …) of one rep, all on
    one account, plus 55 more of the rep's customers attached to it (over the cap)."""
    customers = await seed_customers(engine, 6)
    rep_id = customers[0].sales_rep_id
    account_id = customers[0].account_id
    async with engine.begin() as conn:
        await conn.execute(
            insert(Customer.__table__),
            [
                dict(
                    first_name=f"Extra{i:02d}",
                    last_name="Attached",
                    email=f"extra{i}@example.com",
                    sales_rep_id=rep_id,
                    account_id=account_id,
                )
                for i in range(55)
            ],
        )
    await make_customer(
        engine,
        first_name="Gone",
        status="MERGED",
        merged_into_id=customers[0].id,
        account_id=account_id,
        sales_rep_id=rep_id,
    )
    _, admin = await make_user(engine, role="ADMIN", email="boss@example.com")
    return {
        "customers": customers,
        "account_id": account_id,
        "tokens": {"ADMIN": admin, "SALES_REP": await issue_token(engine, rep_id)},
    }


# The attack: page sizes as variable defaults (counted as the default page before), and
# Account.customers (a plain list a rep fills by attaching customers) not multiplying.
ATTACK = """query Attack($n: Int = 100) {
  customers(first: $n) { nodes { number account { customers { number
    orders(first: $n) { nodes { number lines { sku quantity } } } } } } }
}"""
DEFAULTED = """query($n: Int = 100) {
  customers(first: $n) { nodes { number orders(first: $n) { nodes { number } } } }
}"""


@pytest.mark.parametrize("path", ["compiled", "loaders"])
async def test_the_attack_is_refused_before_any_sql(engine, world, counter, path):
    client = apps(engine)[path]
    token = world["tokens"]["SALES_REP"]
    for query in (ATTACK, DEFAULTED):
        counter.reset()
        body = await post(client, token, query)
        assert body["data"] is None, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_COSTLY", error
        assert error["extensions"]["cost"] > 6_000
        # Only the bearer token's lookup ran: no read of any customer data.
        assert counter.count <= 1 and all("api_token" in s for s in counter.statements), (
            counter.statements
        )
    # Sent small pages are what counts: 10 + 10 x 10 = 110.
    body = await post(client, token, DEFAULTED, {"n": 10})
    assert "errors" not in body and len(body["data"]["customers"]["nodes"]) == 10


@pytest.mark.parametrize("role", ["ADMIN", "SALES_REP"])
async def test_account_customers_are_capped_in_sql_on_both_paths(engine, world, role):
    """55 live customers attached: both paths return the same first 50 by id."""
    clients = apps(engine)
    query = "query($id: ID!) { node(id: $id) { ... on Account { customers { number } } } }"
    gid = base64.b64encode(f"Account:{world['account_id']}".encode()).decode()
    token = world["tokens"][role]
    bodies = []
    for client in clients.values():
        r = await client.post(
            "/graphql",
            json={"query": query, "variables": {"id": gid}},
            headers={"Authorization": f"Bearer {token}"},
        )
        bodies.append(r.content)
    assert bodies[0] == bodies[1], bodies
    numbers = [c["number"] for c in orjson.loads(bodies[0])["data"]["node"]["customers"]]
    async with engine.connect() as conn:
        table = Customer.__table__
        expected = (
            await conn.execute(
                select(table.c.number)
                .where(table.c.account_id == world["account_id"], table.c.status != "MERGED")
                .order_by(table.c.id)
                .limit(CAP)
            )
        ).scalars()
        assert numbers == list(expected) and len(numbers) == CAP


# ---- generated: the cost is never below the objects returned --------------------------

PAGES = (1, 2, 3, 5, 12, 100)
ROOTS = (
    "customers",
    "accounts",
    "customerSearch",
    "nodes",
    "customer",
    "salesChannels",
    "salesReps",
    "customFieldDefinitions",
    "duplicateCustomers",
    "me",
)


class Generator:
    """Random queries over the schema's object fields, every object asking `__typename`."""

    def __init__(self, rng: random.Random, ids: list[str], number: str) -> None:
        self.rng, self.ids, self.number = rng, ids, number
        self.definitions: list[str] = []
        self.variables: dict = {}

    def page(self) -> str:
        """A page argument: a literal, a variable sent, or a variable left to its default."""
        size = self.rng.choice(PAGES)
        how = self.rng.choice(("literal", "sent", "default", "default-overridden", "omitted"))
        if how == "omitted":
            return ""
        if how == "literal":
            return f"first: {size}"
        name = f"v{len(self.definitions)}"
        if how == "sent":
            self.definitions.append(f"${name}: Int")
            self.variables[name] = size
        else:
            self.definitions.append(f"${name}: Int = {size}")
            if how == "default-overridden":
                self.variables[name] = self.rng.choice(PAGES)
        return f"first: ${name}"

    def query(self) -> tuple[str, dict]:
        self.definitions, self.variables = [], {}
        roots = self.rng.sample(ROOTS, self.rng.randint(1, 2))
        body = " ".join(self.root(name) for name in roots)
        head = f"query({', '.join(self.definitions)})" if self.definitions else "query"
        return f"{head} {{ {body} }}", self.variables

    def root(self, name: str) -> str:
        field = GRAPHQL.query_type.fields[name]
        args = {
            "nodes": f"ids: {orjson.dumps(self.rng.sample(self.ids, 3)).decode()}",
            "customer": f'number: "{self.number}"',
            "customerSearch": 'filter: {lastName: "Last00", nameMatch: PREFIX}',
        }.get(name, "")
        if "first" in field.args:
            args = ", ".join(a for a in (args, self.page()) if a)
        call = f"{name}({args})" if args else name
        return f"{call} {self.selection(field.type, 0)}"

    def selection(self, gtype, depth: int) -> str:
        named = get_named_type(gtype)
        if isinstance(named, GraphQLUnionType | GraphQLInterfaceType):
            types = GRAPHQL.get_possible_types(named)
            spreads = " ".join(
                f"... on {t.name} {self.selection(t, depth)}"
                for t in self.rng.sample(types, min(3, len(types)))
            )
            return f"{{ __typename {spreads} }}"
        assert isinstance(named, GraphQLObjectType)
        fields = ["__typename"]
        leaves, objects = [], []
        for name, field in named.fields.items():
            if any(isinstance(a.type, GraphQLNonNull) for a in field.args.values()):
                continue
            target = get_named_type(field.type)
            if is_leaf_type(target):
                if target.name != "JSON":
                    leaves.append(name)
            else:
                objects.append((name, field))
        fields += self.rng.sample(leaves, min(len(leaves), 2))
        connection = {"edges", "pageInfo"} <= named.fields.keys()
        for name, field in objects:
            wanted = connection and name in ("edges", "nodes")
            if depth < 4 and (wanted or self.rng.random() < 0.35):
                args = f"({self.page()})" if "first" in field.args else ""
                args = "" if args == "()" else args
                fields.append(f"{name}{args} {self.selection(field.type, depth + 1)}")
        return "{ " + " ".join(fields) + " }"


def _object(value: dict, parent: str | None, key: str | None, *, in_list: bool) -> int:
    typename = value.get("__typename")
    assert typename, value  # every generated selection asks for it
    edge_node = key == "node" and parent is not None and parent.endswith("Edge")
    own = 1 if typename in NODE_TYPES and not in_list and not edge_node else 0
    inner = 0
    for k, v in value.items():
        if isinstance(v, list):
            for item in v:
                if isinstance(item, dict):
                    inner += 1 + _object(item, typename, k, in_list=True)
        elif isinstance(v, dict):
            inner += _object(v, typename, k, in_list=False)
    return own + inner


def count(data: dict) -> int:
    return _object({"__typename": "Query", **data}, None, None, in_list=True)


async def test_cost_is_never_below_the_objects_returned(engine, world):
    """Random queries (nesting, page sizes as literals, variables sent or defaulted) as
    ADMIN and as the rep, on both paths: objects counted in the JSON <= computed cost."""
    clients = apps(engine, max_cost=10**9)  # run everything; the bound is what is checked
    customers = world["customers"]
    ids = [base64.b64encode(f"Customer:{c.id}".encode()).decode() for c in customers]
    ids.append(base64.b64encode(f"Account:{world['account_id']}".encode()).decode())
    gen = Generator(random.Random(20261203), ids, customers[0].number)
    account = ids[-1]
    # Where the data fill every page and list, the bound is exact.
    exact = [
        (
            "query($n: Int = 3) { customers(first: $n, orderBy: {field: NUMBER}) {"
            " __typename nodes { __typename orders(first: 2) {"
            " __typename edges { __typename node { __typename } } } } } }",
            {},
        ),
        (
            "query($id: ID!) { node(id: $id) { __typename"
            " ... on Account { customers { __typename number } } } }",
            {"id": account},
        ),
    ]
    for query, variables in exact:
        cost = query_cost(parse(query), None, variables)
        for token in world["tokens"].values():
            for client in clients.values():
                assert count((await post(client, token, query, variables))["data"]) == cost
    checked, tight = 0, 0
    for _ in range(40):
        query, variables = gen.query()
        cost = query_cost(parse(query), None, variables)
        for role, token in world["tokens"].items():
            for path, client in clients.items():
                body = await post(client, token, query, variables)
                assert "errors" not in body, (path, role, query, variables, body["errors"])
                got = count(body["data"])
                assert got <= cost, (path, role, got, cost, query, variables)
                checked += 1
                tight = max(tight, got)
    assert checked == 160 and tight > 50  # the corpus really returns lists of objects


def test_declared_list_sizes_name_real_list_fields():
    """A renamed field must not silently fall back to the default size."""
    from server.limits import LIST_SIZES

    for type_name, field_name in LIST_SIZES:
        field = GRAPHQL.type_map[type_name].fields[field_name]
        assert isinstance(get_nullable_type(field.type), GraphQLList), (type_name, field_name)


def test_declared_caps_name_real_list_fields_and_are_documented():
    """Each relation's cap (resolvers/relations.py) is on a list field the cost limit counts
    at it, and the description of a field capped in SQL tells clients."""
    from resolvers.compiled.fields import DECLARED, list_cap
    from resolvers.relations import ChildList

    capped = 0
    for type_name, fields in DECLARED.items():
        for field_name, relation in fields.items():
            cap = list_cap(type_name, field_name)
            if cap is None:
                continue
            capped += 1
            field = GRAPHQL.type_map[type_name].fields[field_name]
            assert isinstance(get_nullable_type(field.type), GraphQLList), (type_name, field_name)
            if isinstance(relation, ChildList):  # else a bound the data keeps (balances)
                assert f"{cap:,}" in (field.description or ""), (type_name, field_name, cap)
    assert capped == 6


async def test_addresses_are_capped_in_sql_on_both_paths(engine):
    """105 addresses: both paths return the same first 100, defaults first."""
    from models import Address

    customer = await make_customer(engine, first_name="Many", last_name="Addresses")
    async with engine.begin() as conn:
        await conn.execute(
            insert(Address.__table__),
            [
                dict(
                    customer_id=customer.id,
                    kind="SHIPPING",
                    is_default=i == 104,
                    line1=f"{i} Main St",
                    country="US",
                )
                for i in range(105)
            ],
        )
    _, token = await make_user(engine, role="ADMIN", email="boss@example.com")
    query = "query($n: String!) { customer(by: {number: $n}) { addresses { line1 } } }"
    bodies = [
        (
            await client.post(
                "/graphql",
                json={"query": query, "variables": {"n": customer.number}},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).content
        for client in apps(engine).values()
    ]
    assert bodies[0] == bodies[1], bodies
    lines = [a["line1"] for a in orjson.loads(bodies[0])["data"]["customer"]["addresses"]]
    assert len(lines) == 100 and lines[0] == "104 Main St" and lines[1] == "0 Main St"
