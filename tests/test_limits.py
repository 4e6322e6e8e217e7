"""Every request limit at its edge (passes) and one past it (fails with its own code)."""

import dataclasses

import httpx
import pytest

from server.app import create_app

# Every test here runs on the compiled read path and field by field (tests/conftest.py).
BOTH_PATHS = True


@pytest.fixture
def limited(engine, settings, admin_token):
    """An HTTP client for an app with the given limits, posting as ADMIN."""

    async def make(**limits) -> httpx.AsyncClient:
        app = create_app(engine=engine, settings=dataclasses.replace(settings, **limits))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        return client

    return make


async def post(client, query: str, variables: dict | None = None) -> tuple[int, dict]:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    return response.status_code, response.json()


def codes(body) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def nested(levels: int) -> str:
    """A query `levels` selection sets deep below the root (customers=1, edges=2, …)."""
    chain = ["customers", "edges", "node", "orders", "edges", "node", "lines", "unitPrice"]
    query = "__typename"
    for name in reversed(chain[:levels]):
        query = f"{name} {{ {query} }}"
    return "{ " + query + " }"


async def test_depth(limited):
    client = await limited(max_depth=6)
    _, body = await post(client, nested(6))
    assert "errors" not in body, body
    _, body = await post(client, nested(7))
    assert codes(body) == ["QUERY_TOO_DEEP"]


async def test_aliases(limited):
    client = await limited(max_aliases=30)
    ok = "{ " + " ".join(f"a{i}: __typename" for i in range(30)) + " }"
    _, body = await post(client, ok)
    assert "errors" not in body
    _, body = await post(client, ok.replace(" }", " a30: __typename }"))
    assert codes(body) == ["TOO_MANY_ALIASES"]


async def test_tokens(limited):
    client = await limited(max_tokens=40)
    # "{", "}" and each name is a token: 2 + 38 names = 40.
    ok = "{ " + " ".join(["__typename"] * 38) + " }"
    _, body = await post(client, ok)
    assert "errors" not in body, body
    _, body = await post(client, ok.replace(" }", " __typename }"))
    assert codes(body) == ["TOO_MANY_TOKENS"]


async def test_body_size(limited):
    client = await limited(max_body_bytes=1000)
    base = '{"query": "{ __typename }", "variables": {}, "pad": "'
    exact = base + "x" * (1000 - len(base) - 2) + '"}'
    assert len(exact) == 1000
    response = await client.post(
        "/graphql", content=exact, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200 and response.json()["data"] == {"__typename": "Query"}
    response = await client.post(
        "/graphql", content=exact[:-2] + 'x"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert codes(response.json()) == ["REQUEST_TOO_LARGE"]


async def test_batches_are_refused(limited):
    client = await limited()
    response = await client.post("/graphql", json=[{"query": "{ __typename }"}] * 2)
    assert response.status_code == 400
    assert codes(response.json()) == ["BATCH_NOT_SUPPORTED"]
    response = await client.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and codes(response.json()) == ["BAD_REQUEST"]


COSTLY = """query($outer: Int, $inner: Int) {
  customers(first: $outer) { edges { node { orders(first: $inner) { totalCount } } } }
}"""


async def test_cost(limited):
    client = await limited(max_cost=1000)
    # 10 customers + 10 x 99 orders = 1,000 nodes: at the limit.
    _, body = await post(client, COSTLY, {"outer": 10, "inner": 99})
    assert "errors" not in body, body
    _, body = await post(client, COSTLY, {"outer": 10, "inner": 100})
    assert codes(body) == ["QUERY_TOO_COSTLY"]
    assert body["errors"][0]["extensions"]["cost"] == 1010


async def test_cost_counts_defaults_and_fragments(limited):
    client = await limited(max_cost=219)
    query = """{ customers { ...C } } fragment C on CustomerConnection {
      edges { node { orders { totalCount } timeline { totalCount } } } }"""
    # 20 customers (default) x (10 orders + 10 events) + 20 = 420 > 219.
    _, body = await post(client, query)
    assert codes(body) == ["QUERY_TOO_COSTLY"] and body["errors"][0]["extensions"]["cost"] == 420


async def test_default_limits_allow_the_documented_page(limited):
    client = await limited()
    _, body = await post(client, COSTLY, {"outer": 100, "inner": 59})
    assert "errors" not in body, body  # 100 + 5,900 <= 6,000


async def test_introspection_switch(limited):
    on = await limited()
    _, body = await post(on, "{ __schema { queryType { name } } }")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    off = await limited(introspection=False)
    _, body = await post(off, "{ __schema { queryType { name } } }")
    assert set(codes(body)) == {"INTROSPECTION_DISABLED"}
    _, body = await post(off, "{ __typename }")
    assert body["data"] == {"__typename": "Query"}


def fan_out(levels: int) -> str:
    """Each fragment spreads the next twice: 2**levels fields from a few hundred bytes."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ __typename }}")
    return "query { ...F0 } " + " ".join(fragments)


async def test_fragment_fan_out_is_refused_fast(limited):
    import time

    client = await limited(max_selections=1024, max_tokens=100_000)
    _, body = await post(client, fan_out(10))  # 1,024 fields: at the limit
    assert "errors" not in body, body
    _, body = await post(client, fan_out(11))
    assert codes(body) == ["SELECTION_LIMIT_EXCEEDED"]
    started = time.perf_counter()
    _, body = await post(client, fan_out(40))  # a trillion fields once expanded
    assert codes(body) == ["SELECTION_LIMIT_EXCEEDED"]
    assert time.perf_counter() - started < 2


async def test_nul_characters_are_bad_input(limited):
    client = await limited()
    _, body = await post(client, 'query { customer(number: "C-\\u0000") { id } }')
    assert codes(body) == ["BAD_USER_INPUT"]
    _, body = await post(
        client, "query($n: String) { customer(number: $n) { id } }", {"n": "C-\x00"}
    )
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_unknown_fragments_and_deep_fragment_chains_get_codes(limited):
    client = await limited(max_tokens=100_000)
    _, body = await post(client, "{ ...Nope }")
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"] and "Nope" in body["errors"][0]["message"]
    chain = (
        "query { ...F0 } "
        + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(300))
        + " fragment F300 on Query { __typename }"
    )
    _, body = await post(client, chain)
    assert codes(body) == ["QUERY_TOO_DEEP"], body
