"""Hostile arguments are bad input, not internal errors, on both read paths (issue 14).

Forged cursors (NUL, timestamps PostgreSQL or Python cannot hold, integers past 64 bits,
wrong shapes), global IDs past 64 bits or of the `Node` interface itself, and custom-field
bounds such as `1e999999` each get BAD_USER_INPUT. Every case runs as ADMIN through the
compiled and the field-by-field path, and the two answers must be the same bytes.
Custom-field numbers print as PostgreSQL's numeric text on both paths.
"""

from __future__ import annotations

import asyncio
import base64
import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import gid
from tests.factories import (
    make_account,
    make_custom_field,
    make_customer,
    make_event,
    make_ledger,
    make_order,
    make_user,
    set_custom_value,
)
from tests.test_compiled import both, same  # noqa: F401 - fixture

INT64_MAX = 2**63 - 1


@pytest.fixture
async def world(engine) -> dict[str, Any]:
    """One customer with an order, a ledger entry, an event and an account; an admin."""
    _, token = await make_user(engine, role="ADMIN", email="hostile-admin@example.com")
    account = await make_account(engine)
    customer = await make_customer(engine, email="ada@example.com", account_id=account.id)
    await make_order(engine, customer.id)
    await make_ledger(engine, customer.id, ["1.00"])
    await make_event(engine, customer.id)
    await make_custom_field(engine, "score", "NUMBER")
    await make_custom_field(engine, "since", "DATE")
    return {"token": token, "number": customer.number}


def forged(payload: str | bytes) -> str:
    """A cursor as the server would print it (base64url, no padding) around any bytes."""
    raw = payload.encode() if isinstance(payload, str) else payload
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def as_json(value: Any) -> str:
    """JSON text that orjson cannot write: integers past 64 bits, lone surrogates."""
    return json.dumps(value)


def codes(body: bytes) -> list[str]:
    return [e["extensions"]["code"] for e in orjson.loads(body).get("errors", [])]


async def refused(both, world, query: str, variables: dict) -> dict:  # noqa: F811
    """Both paths answer the same bytes, and the answer is one BAD_USER_INPUT."""
    body = await same(both, world["token"], query, variables)
    assert codes(body) == ["BAD_USER_INPUT"], (query, variables, body[:600])
    return orjson.loads(body)


# ---------------------------------------------------------------------------------------
# Cursors: every connection, by the types of its sort key

CUSTOMERS = (
    "query($c: String) {{ customers({page}, orderBy: {{field: {field}, direction: {dir}}})"
    " {{ nodes {{ number }} pageInfo {{ endCursor }} }} }}"
)
NESTED = (
    "query($n: String!, $c: String) {{ customer(number: $n) {{ {field}({page})"
    " {{ nodes {{ id }} pageInfo {{ hasNextPage }} }} }} }}"
)
UNDER_LIST = "query($c: String) {{ customers(first: 5) {{ nodes {{ {field}({page}) {{ totalCount nodes {{ id }} }} }} }} }}"  # noqa: E501
ACCOUNTS = "query($c: String) {{ accounts({page}) {{ nodes {{ number }} }} }}"
SEARCH = (
    'query($c: String) { customerSearch(filter: {lastName: "Lovelace"}, first: 5, after: $c)'
    " { __typename ... on CustomerSearchMatches { customers { nodes { number } } } } }"
)

AFTER, BEFORE = "first: 2, after: $c", "last: 2, before: $c"


def connections() -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, query, types of the sort key) for every paginated list a cursor goes to:
    each customers orderBy field forwards and backwards (directions alternate: the
    decoding does not depend on them), each nested list and `accounts` both ways."""
    out = []
    for i, (field, kind) in enumerate(
        (
            ("NAME", "text"),
            ("NUMBER", "text"),
            ("CREATED_AT", "timestamp"),
            ("UPDATED_AT", "timestamp"),
        )
    ):
        for j, page in enumerate((AFTER, BEFORE)):
            direction = ("ASC", "DESC")[(i + j) % 2]
            query = CUSTOMERS.format(page=page, field=field, dir=direction)
            out.append((f"customers {field} {direction} {page[:4]}", query, (kind, "int")))
    for field, key in (
        ("orders", ("timestamp", "int")),
        ("ledgerTransactions", ("int",)),
        ("timeline", ("int",)),
    ):
        for page in (AFTER, BEFORE):
            out.append((f"customer.{field} {page[:4]}", NESTED.format(field=field, page=page), key))
        out.append((f"customers.{field}", UNDER_LIST.format(field=field, page=AFTER), key))
    for page in (AFTER, BEFORE):
        out.append((f"accounts {page[:4]}", ACCOUNTS.format(page=page), ("text", "int")))
    out.append(("customerSearch", SEARCH, ("text", "int")))
    return out


CONNECTIONS = connections()

# Values no cursor of ours holds, by the type of the key part they stand in for.
HOSTILE_VALUES: dict[str, list[Any]] = {
    "text": ["\u0000", "a\u0000b", 5, None, ["a"], {"a": 1}, True],
    "int": [2**63, 2**64, -(2**63) - 1, 10**30, 1.5, 1e300, "1", None, True, [1]],
    "timestamp": [
        "0001-01-01T00:00:00+23:59",  # year 0 in UTC: Python cannot hold it
        "9999-12-31T23:59:59-23:59",  # year 10000 in UTC
        "2025-01-01T00:00:00",  # no offset: which instant is it?
        "2025-02-30T00:00:00+00:00",
        "\u0000",
        "",
        1735689600,
        None,
    ],
}
# Well-formed keys that must still work (the edges of each type).
FINE_VALUES: dict[str, list[Any]] = {
    "text": ["", "zzz", "Ünïcode \"'\\"],
    "int": [0, INT64_MAX, -(2**63)],
    "timestamp": ["0001-01-02T00:00:00+00:00", "9999-12-31T00:00:00+00:00", "2025-01-01T00:00Z"],
}
FINE_KEY = {"text": "m", "int": 1, "timestamp": "2025-01-01T00:00:00+00:00"}


def hostile_cursors(key: tuple[str, ...], shift: int) -> list[str]:
    """Cursors for a sort key of these types: one hostile value at each position of an
    otherwise good key; and a quarter of the shapeless ones (not base64, not JSON, wrong
    shape), picked by `shift`, so that each list gets some and each of them several lists."""
    good = [FINE_KEY[k] for k in key]
    shapeless = [
        "!!!",
        "a",
        "====",
        "\u0000",
        forged(b"\xff\xfe"),
        forged("nope"),
        forged("null"),
        forged("{}"),
        forged('"x"'),
        forged("[]"),
        forged(as_json([*good, 1])),
        forged(as_json(good[:-1])),
        forged(as_json([good])),
        forged('["a\\ud800", 1]'),  # a lone surrogate
        forged(as_json(good) + "x"),
    ]
    out = shapeless[shift % 4 :: 4]
    for i, kind in enumerate(key):
        for value in HOSTILE_VALUES[kind]:
            out.append(forged(as_json([*good[:i], value, *good[i + 1 :]])))
    return out


@pytest.mark.parametrize(("name", "query", "key"), CONNECTIONS, ids=[c[0] for c in CONNECTIONS])
async def test_hostile_cursors_are_bad_input(both, world, name, query, key):  # noqa: F811
    for cursor in hostile_cursors(key, CONNECTIONS.index((name, query, key))):
        body = await refused(both, world, query, {"n": world["number"], "c": cursor})
        if "\x00" not in cursor:  # NUL in the argument itself is refused before decoding
            assert "not a valid cursor" in body["errors"][0]["message"], (name, cursor)


@pytest.mark.parametrize(("name", "query", "key"), CONNECTIONS, ids=[c[0] for c in CONNECTIONS])
async def test_cursors_at_the_edges_still_work(both, world, name, query, key):  # noqa: F811
    for i, kind in enumerate(key):
        for value in FINE_VALUES[kind]:
            cursor = [FINE_KEY[k] for k in key]
            cursor[i] = value
            variables = {"n": world["number"], "c": forged(as_json(cursor))}
            body = await same(both, world["token"], query, variables)
            assert b'"errors"' not in body, (name, cursor, body[:600])


# Leaves: the hand-picked values above (often), and arbitrary JSON scalars.
HAND_PICKED = [v for values in (*HOSTILE_VALUES.values(), *FINE_VALUES.values()) for v in values]
# Leaves: the hand-picked values above (as often as anything else), and any JSON scalar.
LEAVES = st.sampled_from(HAND_PICKED) | st.one_of(
    st.none() | st.booleans() | st.text(max_size=8),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)


def sort_keys(key: tuple[str, ...]) -> st.SearchStrategy[list[Any]]:
    """Mostly a good key with one part replaced (by a hand-picked value or any leaf);
    else any short list."""
    good = [FINE_KEY[k] for k in key]
    one_off = st.tuples(st.integers(0, len(key) - 1), LEAVES).map(
        lambda change: [*good[: change[0]], change[1], *good[change[0] + 1 :]]
    )
    return one_off | st.lists(LEAVES | st.lists(LEAVES, max_size=2), max_size=3)


AFTER_LISTS = [(q, key) for _, q, key in CONNECTIONS if "after: $c" in q]
CASES = st.sampled_from(AFTER_LISTS).flatmap(
    lambda case: st.tuples(st.just(case[0]), sort_keys(case[1]))
)


async def test_generated_cursors_are_data_or_bad_input(both, world):  # noqa: F811
    """Generated sort keys as cursors of every list read forwards: the same bytes on both
    paths, and either a page or BAD_USER_INPUT."""
    loop = asyncio.get_running_loop()
    seen = {"count": 0}

    async def check(query: str, cursor: str) -> None:
        body = await same(both, world["token"], query, {"n": world["number"], "c": cursor})
        assert codes(body) in ([], ["BAD_USER_INPUT"]), (query, cursor, body[:600])
        seen["count"] += 1

    @hypothesis_settings(
        max_examples=60,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=CASES)
    def run(case: tuple[str, list[Any]]) -> None:
        query, key = case
        cursor = forged(as_json(key))
        asyncio.run_coroutine_threadsafe(check(query, cursor), loop).result(timeout=60)

    await asyncio.to_thread(run)
    assert seen["count"] >= 60


DUPLICATES = (
    "query($c: String) {{ duplicateCustomers(by: [EMAIL, NAME], fuzzy: {fuzzy}, after: $c)"
    " {{ nodes {{ size }} }} }}"
)


async def test_duplicate_report_cursors_are_bad_input(both, world):  # noqa: F811
    """The duplicates report (field by field on both paths) decodes with the same
    function: exact groups by their text keys, fuzzy pairs by (similarity, id, id)."""
    exact, fuzzy = DUPLICATES.format(fuzzy="false"), DUPLICATES.format(fuzzy="true")
    for query, key in ((exact, ["a", "b"]), (fuzzy, ["0.5", 1, 2])):
        body = await same(both, world["token"], query, {"c": forged(as_json(key))})
        assert b'"errors"' not in body, body
    for query, key in (
        (exact, ["a\u0000", "b"]),
        (exact, [None, "b"]),
        (fuzzy, ["NaN", 1, 2]),
        (fuzzy, ["Infinity", 1, 2]),
        (fuzzy, ["1e999999", 1, 2]),
        (fuzzy, [0.5, 1, 2]),
        (fuzzy, ["0.5", 2**63, 2]),
    ):
        await refused(both, world, query, {"c": forged(as_json(key))})


async def test_fuzzy_duplicate_pairs_page_by_their_cursors(both, world, engine):  # noqa: F811
    """The fuzzy report's cursor (similarity, id, id) is read back: its similarity
    column is typed numeric, so the next page follows instead of 'not a valid cursor'."""
    for first, last in (
        ("Jonathan", "Smithson"),
        ("Jonathon", "Smithson"),
        ("Jonathan", "Smithsonn"),
    ):
        await make_customer(engine, first_name=first, last_name=last)
    query = (
        "query($c: String) { duplicateCustomers(by: [NAME], fuzzy: true, first: 1, after: $c)"
        " { pageInfo { hasNextPage endCursor } nodes { similarity customers { number } } } }"
    )
    seen, cursor = [], None
    for _ in range(5):
        body = orjson.loads(await same(both, world["token"], query, {"c": cursor}))
        page = body["data"]["duplicateCustomers"]
        seen += [sorted(c["number"] for c in n["customers"]) for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        cursor = page["pageInfo"]["endCursor"]
    assert len(seen) >= 2 and len({tuple(p) for p in seen}) == len(seen), seen


@pytest.mark.parametrize(
    "selection",
    [
        "__typename",
        "... on RefineSearch { cap countAtLeast }",
        "... on CustomerSearchMatches { customers { totalCount } }",
        "... on CustomerSearchMatches { customers { nodes { number } } }",
    ],
)
@pytest.mark.parametrize("filter_", ['{lastName: "Lovelace"}', "{}", '{lastName: "Nobody"}'])
async def test_search_cursor_is_checked_whatever_is_selected(both, world, selection, filter_):  # noqa: F811
    """customerSearch(after:) is validated up front: with or without the matches
    selected, and whether the search matches, refines or finds nothing."""
    search = f"customerSearch(filter: {filter_}, after: $c)"
    query = f"query($c: String) {{ {search} {{ {selection} }} }}"
    for cursor in ("garbage", forged(as_json(["\u0000", 1])), forged(as_json(["a", 2**63]))):
        await refused(both, world, query, {"c": cursor})


# ---------------------------------------------------------------------------------------
# Global IDs


ID_QUERIES = {
    "customer": ("query($id: ID!) { customer(id: $id) { number } }", "Customer"),
    "order": ("query($id: ID!) { order(id: $id) { number } }", "Order"),
    "node": ("query($id: ID!) { node(id: $id) { id } }", "Customer"),
    "node Order": ("query($id: ID!) { node(id: $id) { ... on Order { number } } }", "Order"),
    "nodes": ("query($id: ID!) { nodes(ids: [$id]) { id } }", "Customer"),
    "filter.salesChannels": (
        "query($id: ID!) { customers(filter: {salesChannels: [$id]}) { totalCount } }",
        "SalesChannel",
    ),
    "filter.salesRep": (
        "query($id: ID!) { customers(filter: {salesRep: $id}) { nodes { number } } }",
        "User",
    ),
    "accounts filter": (
        "query($id: ID!) { accounts(filter: {salesRep: $id}) { nodes { number } } }",
        "User",
    ),
    "search filter": (
        "query($id: ID!) { customerSearch(filter: {salesRep: $id}) { __typename } }",
        "User",
    ),
}
ARABIC_ONE = "\u0661"  # int() reads it as 1
BAD_PKS = [2**63, -(2**63) - 1, 2**64, 10**40, "", " 1", "1 ", "+1", "1_0", "0x1", "1.0", "1e3"]
BAD_PKS.append(ARABIC_ONE)


@pytest.mark.parametrize("field", list(ID_QUERIES))
async def test_hostile_global_ids_are_bad_input(both, world, field):  # noqa: F811
    query, type_name = ID_QUERIES[field]
    for pk in BAD_PKS:
        body = await refused(both, world, query, {"id": gid(type_name, pk)})
        assert "global ID" in body["errors"][0]["message"], (pk, body)
    # the interface itself, and types that are no Node
    for other in ("Node", "PageInfo", "Money", "Query", "Nope", ""):
        await refused(both, world, query, {"id": gid(other, 317)})


async def test_mutations_decode_ids_with_the_same_range_check(both, world):  # noqa: F811
    """Mutations (field by field on both paths) use the same decoder: an id past 64 bits
    is bad input before any row is locked."""
    query = "mutation($id: ID!) { customerArchive(input: {id: $id}) { userErrors { code } } }"
    for pk in (2**63, -(2**63) - 1, ARABIC_ONE):
        await refused(both, world, query, {"id": gid("Customer", pk)})
    query = (
        'mutation($id: ID!) { customFieldValueSet(input: {customerId: $id, key: "score",'
        ' value: "1"}) { userErrors { code } } }'
    )
    await refused(both, world, query, {"id": gid("Customer", 2**64)})


async def test_stored_numbers_follow_the_bounds_rule(both, world, engine):  # noqa: F811
    """A NUMBER value is parsed by the same rule as a filter bound: more decimals than
    numeric holds is INVALID, not an error from PostgreSQL."""
    customer = await make_customer(engine, email="rule@example.com")
    query = (
        "mutation($id: ID!, $v: String!) { customFieldValueSet(input: {customerId: $id,"
        ' key: "score", value: $v}) { userErrors { code } } }'
    )
    for value in ("1." + "0" * 20_000, "1e999999", "NaN", "1." + "0" * 60 + "1"):
        body = await same(
            both, world["token"], query, {"id": gid("Customer", customer.id), "v": value}
        )
        assert orjson.loads(body)["data"]["customFieldValueSet"]["userErrors"] == [
            {"code": "INVALID"}
        ], (value[:20], body[:300])


@pytest.mark.parametrize("field", ["customer", "node", "nodes", "order"])
async def test_global_ids_at_the_edges_of_64_bits_read_nothing(both, world, field):  # noqa: F811
    query, type_name = ID_QUERIES[field]
    for pk in (INT64_MAX, -(2**63), 0, -1):
        body = await same(both, world["token"], query, {"id": gid(type_name, pk)})
        assert orjson.loads(body) == {"data": {field: [None] if field == "nodes" else None}}


async def test_one_bad_id_among_many_nodes(both, world):  # noqa: F811
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    ids = [gid("Customer", 1), gid("Node", 317), gid("Customer", 2**63)]
    await refused(both, world, query, {"ids": ids})


async def test_node_of_the_interface_type(both, world):  # noqa: F811
    body = await refused(both, world, 'query { node(id: "Tm9kZTozMTc=") { id } }', {})
    assert body["data"] == {"node": None}


# ---------------------------------------------------------------------------------------
# Custom fields

CUSTOM = (
    "query($f: [CustomFieldFilter!]) {{ {root}(filter: {{customFields: $f}}) {{ {selection} }} }}"
)
CUSTOM_ROOTS = {
    "customers": CUSTOM.format(root="customers", selection="nodes { number }"),
    "accounts": CUSTOM.format(root="accounts", selection="totalCount"),
    "customerSearch": CUSTOM.format(root="customerSearch", selection="__typename"),
}
BAD_NUMBERS = [
    "1e999999",
    "-1e999999",
    "1e-999999",
    "NaN",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e31",
    "1." + "0" * 20_000,  # more decimals than numeric holds
    "1." + "0" * 60 + "1",  # 61 decimals
    "",
    "one",
    "0x10",
]
BAD_DATES = ["99999-01-01", "0000-01-01", "2025-02-30", "-2025-01-01", "2025", "", "today"]


@pytest.mark.parametrize("root", list(CUSTOM_ROOTS))
async def test_hostile_custom_field_bounds_are_bad_input(both, world, root):  # noqa: F811
    """Each value as min, max or equals: across the three roots, each value in each."""
    query = CUSTOM_ROOTS[root]
    shift = list(CUSTOM_ROOTS).index(root)
    for key, values in (("score", BAD_NUMBERS), ("since", BAD_DATES)):
        for i, value in enumerate(values):
            bound = ("min", "max", "equals")[(i + shift) % 3]
            body = await refused(both, world, query, {"f": [{"key": key, bound: value}]})
            assert body["errors"][0]["extensions"]["argument"] == "filter.customFields"


async def test_custom_field_bounds_at_the_edges_still_work(both, world):  # noqa: F811
    query = CUSTOM_ROOTS["customers"]
    for key, value in (
        ("score", "1e30"),
        ("score", "-1e30"),
        ("score", "1E-30"),
        ("score", "0"),
        ("score", "1." + "0" * 59 + "1"),  # 60 decimals
        ("since", "0001-01-01"),
        ("since", "9999-12-31"),
    ):
        body = await same(both, world["token"], query, {"f": [{"key": key, "min": value}]})
        assert b'"errors"' not in body, (key, value, body)


# Stored NUMBER values and how both paths print them: PostgreSQL's numeric text (the
# compiled path's `numeric::text`), never Python's exponent form.
PRINTED = {
    "5E+20": "500000000000000000000",
    "1E-7": "0.0000001",
    "0E-10": "0.0000000000",
    "-0": "0",
    "-0.00": "0.00",
    "123456789012345678901234567890": "123456789012345678901234567890",
    "1.5E+3": "1500",
    "-2.50": "-2.50",
    "1E+30": "1000000000000000000000000000000",
    "1E-30": "0.000000000000000000000000000001",
}


async def test_custom_field_numbers_print_the_same(both, world, engine):  # noqa: F811
    customer = await make_customer(engine, email="numbers@example.com")
    for i, stored in enumerate(PRINTED):
        definition = await make_custom_field(engine, f"n{i:02}", "NUMBER", position=i)
        await set_custom_value(engine, customer.id, definition.id, number_value=Decimal(stored))
    query = "query($n: String!) { customer(number: $n) { customFields { key numberValue value } } }"
    body = await same(both, world["token"], query, {"n": customer.number})
    values = orjson.loads(body)["data"]["customer"]["customFields"]
    assert [(v["numberValue"], v["value"]) for v in values] == [(p, p) for p in PRINTED.values()]
