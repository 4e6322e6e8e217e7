"""Mixed operations: the root fields that compile come from one statement, the others from
Strawberry (run on the query with the compiled fields blanked out), merged in order.
Byte-identical to Strawberry answering everything, errors and their locations included."""

from __future__ import annotations

import orjson
import pytest

from tests.test_compiled import ROLES, both, same, world  # noqa: F401 - fixtures

MIXED = [
    # (query, variables)
    (
        "{ customers(first: 2) { nodes { number } }"
        " bulkJobs { totalCount } salesChannels { name } }",
        {},
    ),
    # a variable only the compiled field uses: its definition (and the parentheses) go
    (
        "query($n: Int!) {\n  customers(first: $n) { totalCount nodes { number } }\n"
        "  bulkJobs { totalCount }\n}",
        {"n": 3},
    ),
    # variables used by both sides, and one each
    (
        "query($n: Int, $m: Int, $k: Int) { a: customers(first: $n) { nodes { number } }"
        " b: bulkJobs(first: $m) { totalCount }"
        " c: customers(first: $k, orderBy: {field: NUMBER}) { nodes { number } }"
        " d: bulkJobs(first: $n) { totalCount } }",
        {"n": 1, "m": 2, "k": 3},
    ),
    # fragments: only compiled, shared, nested
    (
        "query { customers(first: 2) { ...Page }"
        " bulkJobs { ...Acc } me { user { ...U } } }\n"
        "fragment Page on CustomerConnection { nodes { ...C } }\n"
        "fragment C on Customer { number email }\n"
        "fragment Acc on BulkJobConnection { totalCount }\n"
        "fragment U on User { email }",
        {},
    ),
    # directives on both sides
    (
        "query($yes: Boolean!, $no: Boolean!) { __typename"
        " customers(first: 1) @include(if: $yes) { nodes { number } }"
        " x: customers(first: 1) @skip(if: $yes) { totalCount }"
        " bulkJobs @skip(if: $no) { totalCount } }",
        {"yes": True, "no": False},
    ),
    # a nullable root field that errors: data stays, the error points at the right spot
    (
        "query {\n  customers(first: 1) { nodes { number } }\n"
        '  taxDetermination(customerId: "bad", region: "US") { exempt }\n}',
        {},
    ),
]

# Strawberry's half nulls `data` (a non-null root field fails): its answer is sent as is.
NULLED = (
    "query {\n  customers(first: 1) { nodes { number } }\n  accounts(first: 500) { totalCount }\n}"
)

# Not reducible: several operations, or fragments at the root.
WHOLE = [
    (
        "query A { customers(first: 1) { totalCount }"
        " bulkJobs { totalCount } }"
        " query B { me { user { email } } }",
        {},
        "A",
    ),
    (
        "query { ...R bulkJobs { totalCount } } fragment R on Query { customers { totalCount } }",
        {},
        None,
    ),
]


@pytest.mark.parametrize("role", ROLES)
async def test_mixed_operations_are_identical(both, world, role):  # noqa: F811
    token = world["tokens"][role]
    for query, variables in MIXED:
        await same(both, token, query, variables, compiled="mixed")
    body = orjson.loads(await same(both, token, NULLED, compiled=None))
    assert body["data"] is None and body["errors"][0]["locations"] == [{"line": 3, "column": 3}], (
        body
    )


@pytest.mark.parametrize("role", ROLES)
async def test_mixed_error_locations_point_into_the_original(both, world, role):  # noqa: F811
    token = world["tokens"][role]
    query, variables = MIXED[-1]
    body = orjson.loads(await same(both, token, query, variables, compiled="mixed"))
    assert body["data"]["customers"]["nodes"] is not None
    assert body["data"]["taxDetermination"] is None
    assert body["errors"][0]["locations"] == [{"line": 3, "column": 3}], body


async def test_operations_that_cannot_be_reduced_run_whole(both, world):  # noqa: F811
    token = world["tokens"]["ADMIN"]
    for query, variables, name in WHOLE:
        headers = {"Authorization": f"Bearer {token}"}
        payload = {"query": query, "variables": variables, "operationName": name}
        a = await both[0].post("/graphql", json=payload, headers=headers)
        b = await both[1].post("/graphql", json=payload, headers=headers)
        assert a.content == b.content
        assert "x-customer-graph-path" not in a.headers, query
