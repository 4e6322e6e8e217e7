"""Property-based: a few hundred generated queries as ADMIN; no 5xx, no unmasked error.

hypothesis-graphql builds syntactically valid queries from the printed schema, with
arbitrary arguments (bad IDs, huge page sizes, odd strings). Every answer must be a
well-formed GraphQL response whose errors all carry an expected code.
"""

import asyncio

import httpx
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis_graphql import queries

from server.api import schema
from server.app import create_app
from tests.factories import make_customer, make_order

# Every test here runs on the compiled read path and field by field (tests/conftest.py).
BOTH_PATHS = True

SDL = schema.as_str()
EXPECTED = {
    "BAD_USER_INPUT",
    "NOT_FOUND",
    "QUERY_TOO_DEEP",
    "TOO_MANY_ALIASES",
    "TOO_MANY_TOKENS",
    "QUERY_TOO_COSTLY",
    "GRAPHQL_VALIDATION_FAILED",
}


async def test_generated_queries_never_fail_unexpectedly(engine, settings, admin_token):
    customer = await make_customer(engine, email="fuzz@example.com")
    await make_order(engine, customer.id)
    app = create_app(engine=engine, settings=settings)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_token}"}
    loop = asyncio.get_running_loop()
    seen = {"count": 0}

    async def check(query: str) -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://fuzz") as client:
            response = await client.post("/graphql", json={"query": query}, headers=headers)
        assert response.status_code == 200, (query, response.text)
        body = response.json()
        assert "data" in body or "errors" in body
        for error in body.get("errors", []):
            code = error.get("extensions", {}).get("code")
            assert code in EXPECTED, (query, error)
        seen["count"] += 1

    @hypothesis_settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(query=queries(SDL))
    def run(query: str) -> None:
        asyncio.run_coroutine_threadsafe(check(query), loop).result(timeout=60)

    await asyncio.to_thread(run)
    assert seen["count"] >= 150
