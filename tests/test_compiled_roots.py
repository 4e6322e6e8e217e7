"""`node`, `nodes`, `order` and `me` on the compiled read path: byte-identical to the
field-by-field path for each role, fragments on other types skipped, bad ids answered by
Strawberry."""

from __future__ import annotations

import base64

import orjson
import pytest
from sqlalchemy import update

from models import Customer
from tests.conftest import gid
from tests.factories import make_account, make_payment_method
from tests.test_compiled import ROLES, both, same, world  # noqa: F401 - fixtures

# Every scalar of each node type, as an inline fragment: a `node` selection carries them all
# and only the one matching the id's type applies.
FRAGMENTS = """
  ... on Customer { number displayName email status orders(first: 2) { totalCount nodes { number } } }
  ... on Account { number name billingContact { name email } billingAddress { city country }
                   paymentMethods { id brand last4 isDefault } }
  ... on PaymentMethod { processor brand last4 expMonth expYear isDefault createdAt }
  ... on Address { addressKind: kind isDefault line1 city region postalCode country }
  ... on Order { number orderStatus: status placedAt total { amount currency } lines { sku quantity } }
  ... on LedgerTransaction { ledgerKind: kind memo amount { amount currency } balanceAfter { amount }
                              customer { number } }
  ... on TimelineEvent { eventKind: kind occurredAt summary actor { email displayName } }
  ... on TaxExemptionCertificate { number region validFrom validTo revokedAt isValid }
  ... on SalesChannel { code name }
  ... on User { userEmail: email displayName role }
"""  # noqa: E501

IDS = """query($n: String!) { customer(number: $n) {
  id account { id paymentMethods { id } } addresses { id } salesRep { id }
  orders { nodes { id number } } ledgerTransactions { nodes { id } }
  timeline { nodes { id } } taxStatus { exemptionCertificates { id } } salesChannels { id }
} }"""


@pytest.fixture
async def ids(both, world, engine):  # noqa: F811
    """Global ids of one object of every node type, read as ADMIN on the other path."""
    account = await make_account(engine)
    await make_payment_method(engine, account.id)
    async with engine.begin() as conn:
        await conn.execute(
            update(Customer).where(Customer.id == world["other"].id).values(account_id=account.id)
        )

    body = await same(both, world["tokens"]["ADMIN"], IDS, {"n": world["other"].number})
    c = orjson.loads(body)["data"]["customer"]
    order = c["orders"]["nodes"][0]
    return {
        "Customer": c["id"],
        "Account": c["account"]["id"],
        "PaymentMethod": c["account"]["paymentMethods"][0]["id"],
        "Address": c["addresses"][0]["id"],
        "User": c["salesRep"]["id"],
        "Order": order["id"],
        "order_number": order["number"],
        "LedgerTransaction": c["ledgerTransactions"]["nodes"][0]["id"],
        "TimelineEvent": c["timeline"]["nodes"][0]["id"],
        "TaxExemptionCertificate": c["taxStatus"]["exemptionCertificates"][0]["id"],
    }


NODE_TYPES = [
    "Customer",
    "Account",
    "PaymentMethod",
    "Address",
    "User",
    "Order",
    "LedgerTransaction",
    "TimelineEvent",
    "TaxExemptionCertificate",
]


@pytest.mark.parametrize("role", ROLES)
async def test_node_of_every_type_is_identical(both, world, ids, role):  # noqa: F811
    token = world["tokens"][role]
    q = f"query($id: ID!) {{ node(id: $id) {{ __typename id {FRAGMENTS} }} }}"
    for type_name in NODE_TYPES:
        await same(both, token, q, {"id": ids[type_name]}, compiled=True)
    # missing rows are null; a named fragment on the interface applies too
    missing = "query($id: ID!) { node(id: $id) { ...N } } fragment N on Node { id }"
    await same(both, token, missing, {"id": gid("Customer", 987654)}, compiled=True)
    await same(both, token, missing, {"id": ids["Order"]}, compiled=True)


@pytest.mark.parametrize("role", ROLES)
async def test_nodes_in_order_with_nulls(both, world, ids, role):  # noqa: F811
    token = world["tokens"][role]
    every = [ids[t] for t in NODE_TYPES] + [gid("Order", 424242), ids["Customer"]]
    q = f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ __typename {FRAGMENTS} }} }}"
    await same(both, token, q, {"ids": every}, compiled=True)
    await same(both, token, q, {"ids": []}, compiled=True)


@pytest.mark.parametrize("role", ROLES)
async def test_order_by_id_or_number(both, world, ids, role):  # noqa: F811
    token = world["tokens"][role]
    body = (
        "{ number status subtotal { amount currency } lines { position sku unitPrice { amount } }"
        " customer { number displayName addresses { city customer { number } } } }"
    )
    await same(
        both,
        token,
        f"query($id: ID) {{ order(id: $id) {body} }}",
        {"id": ids["Order"]},
        compiled=True,
    )
    q = f"query($n: String) {{ order(number: $n) {body} }}"
    await same(both, token, q, {"n": ids["order_number"]}, compiled=True)
    await same(both, token, q, {"n": "O-nope"}, compiled=True)


@pytest.mark.parametrize("role", ROLES)
async def test_me_is_identical(both, world, role):  # noqa: F811
    token = world["tokens"][role]
    q = """{ me { __typename user { id email displayName role } customer { number email
      addresses { city } orders(first: 1) { nodes { number } } } } }"""
    await same(both, token, q, compiled=True)
    mixed = "{ customers(first: 2) { nodes { number } } me { user { email } } }"
    await same(both, token, mixed, compiled=True)


@pytest.mark.parametrize("role", ROLES)
async def test_bad_or_uncompiled_ids_fall_back(both, world, ids, role):  # noqa: F811
    token = world["tokens"][role]
    node = "query($id: ID!) { node(id: $id) { id } }"
    for value in ("garbage", gid("Nope", 1), gid("Customer", "x")):
        await same(both, token, node, {"id": value}, compiled=False)
    await same(both, token, node, {"id": gid("OrderLine", 1)}, compiled=True)
    nodes = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    await same(both, token, nodes, {"ids": [ids["Customer"], "garbage"]}, compiled=False)
    await same(both, token, nodes, {"ids": [ids["Customer"]] * 101}, compiled=False)
    order = "query($id: ID) { order(id: $id) { number } }"
    await same(both, token, order, {"id": ids["Customer"]}, compiled=False)
    await same(both, token, "{ order { number } }", compiled=False)
    # a field that needs Python still sends the whole query field by field
    await same(
        both,
        token,
        node.replace("{ id }", "{ ... on Customer { savedSearches { name } } }"),
        {"id": ids["Customer"]},
        compiled=False,
    )


@pytest.fixture
async def lookups(engine):
    """Rows for the list roots: channels, reps (one inactive), definitions (one archived)."""
    from tests.factories import make_custom_field, make_sales_channel, make_user

    await make_sales_channel(engine, "kiosk", "Kiosk")
    await make_sales_channel(engine, "phone", "Phone")
    await make_user(engine, role="SALES_REP", email="ann@example.com", last_name="Adams")
    await make_user(engine, role="SALES_REP", email="gone@example.com", is_active=False)
    await make_custom_field(engine, "segment", "SELECT", options=["gold", "silver"], position=2)
    await make_custom_field(engine, "joined_on", "DATE", position=1, help_text='Joined "when"')
    await make_custom_field(engine, "legacy_code", archived=True)


@pytest.mark.parametrize("role", ROLES)
async def test_list_roots_are_identical(both, world, lookups, role):  # noqa: F811
    token = world["tokens"][role]
    q = """query($all: Boolean!) {
      salesChannels { __typename id code name }
      salesReps { id email firstName lastName displayName role isActive createdAt }
      customFieldDefinitions(includeArchived: $all) { id key label helpText type options
        required archived position createdAt updatedAt }
    }"""
    for include in (False, True):
        await same(both, token, q, {"all": include}, compiled=True)
    defs = await same(both, token, "{ customFieldDefinitions { key } }", compiled=True)
    assert b"legacy_code" not in defs and b"segment" in defs
    ids = [
        d["id"]
        for d in orjson.loads(
            await same(
                both,
                token,
                "{ customFieldDefinitions(includeArchived: true) { id } }",
                compiled=True,
            )
        )["data"]["customFieldDefinitions"]
    ]
    q = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on CustomFieldDefinition { key options } } }"
    await same(both, token, q, {"ids": ids}, compiled=True)


@pytest.mark.parametrize("role", ROLES)
async def test_accounts_root_is_identical(both, world, ids, engine, role):  # noqa: F811
    await make_account(engine, name="Orphan Ltd")  # no customer: only an admin sees it
    token = world["tokens"][role]
    page = """query($f: Int, $a: String, $l: Int, $b: String) {
      accounts(first: $f, after: $a, last: $l, before: $b) {
        totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { id number name billingContact { name email }
          paymentMethods { brand last4 } customers { number displayName } } } } }"""
    first = orjson.loads(await same(both, token, page, {"f": 1}, compiled=True))
    info = first["data"]["accounts"]["pageInfo"]
    if info["endCursor"]:
        await same(both, token, page, {"f": 1, "a": info["endCursor"]}, compiled=True)
        await same(both, token, page, {"l": 1, "b": info["endCursor"]}, compiled=True)
    await same(both, token, page, {"l": 5}, compiled=True)
    # with a filter: the accounts of the visible customers that match
    filtered = '{ accounts(filter: {kind: ACCOUNT, company: "acme"}) { totalCount } }'
    await same(both, token, filtered, compiled=True)


async def test_gzip_for_clients_that_ask(both, world):  # noqa: F811
    """A nested page is compressed for clients sending Accept-Encoding: gzip, and only then;
    the header that says which path answered survives."""
    from tests.test_nested_reads import PAGE

    token = world["tokens"]["ADMIN"]
    payload = {"query": PAGE, "variables": {"n": 50}}
    auth = {"Authorization": f"Bearer {token}"}
    plain = await both[0].post(
        "/graphql", json=payload, headers=auth | {"Accept-Encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers
    zipped = await both[0].post(
        "/graphql", json=payload, headers=auth | {"Accept-Encoding": "gzip"}
    )
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["x-customer-graph-path"] == "compiled"
    assert int(zipped.headers["content-length"]) < len(plain.content) / 4
    assert zipped.content == plain.content  # httpx decompressed it


def test_cached_statements_share_their_sql_text():
    """Statements are cached per variables; pages differing only in their cursor keep one
    SQL text in memory between them (thousands of cached pages, one text)."""
    from graphql import get_operation_ast, parse
    from graphql.execution.values import get_variable_values

    from models.enums import Role
    from resolvers.compiled import compile_operation
    from resolvers.viewer import Viewer
    from server.api import schema

    query = """query($after: String) { customers(first: 50, after: $after) {
      pageInfo { endCursor } nodes { number orders(first: 10) { nodes { number } } } } }"""
    doc = parse(query)
    op = get_operation_ast(doc, None)
    statements = []
    for pk in (1, 2):
        cursor = base64.urlsafe_b64encode(orjson.dumps([f"name{pk}", pk])).decode().rstrip("=")
        values = get_variable_values(schema._schema, op.variable_definitions, {"after": cursor})
        viewer = Viewer(user_id=pk, role=Role.SALES_REP)
        statements.append(compile_operation(schema._schema, doc, op, values, viewer))
    first, second = statements
    assert first.params != second.params
    assert first.sql is second.sql


async def test_objects_wider_than_format_arguments(engine):
    """format() takes at most 99 arguments: a wider object is split into several calls."""
    from resolvers.compiled.json_text import j_str, jlit, obj_sql, quoted

    parts = []
    for i in range(150):
        value = {0: j_str(f"'v{i}'::text", False), 1: quoted(f"({i})::text"), 2: jlit("null")}[
            i % 3
        ]
        parts.append((f"k{i}", value))
    money = obj_sql([("amount", quoted("(1.50)::text")), ("currency", j_str("'EUR'::text", False))])
    parts.append(("money", money))
    sql = obj_sql(parts)
    assert sql.count("format(") >= 2
    async with engine.connect() as conn:  # driver SQL: `:null` is no bind parameter
        printed = (await conn.exec_driver_sql(f"SELECT {sql}")).scalar_one()
    expected = {f"k{i}": [f"v{i}", str(i), None][i % 3] for i in range(150)}
    expected["money"] = {"amount": "1.50", "currency": "EUR"}
    assert printed == orjson.dumps(expected).decode()
