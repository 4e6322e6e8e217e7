"""GraphQL over HTTP: media types, status codes, GET queries, JSON for every error."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from sqlalchemy import text

from server.app import create_app
from tests.factories import make_customer

GRAPHQL_RESPONSE = "application/graphql-response+json"


@pytest.fixture(params=[True, False], ids=["compiled", "field_by_field"])
async def http(request, engine, settings, admin_token):
    chosen = dataclasses.replace(settings, compiled_reads=request.param)
    app = create_app(engine=engine, settings=chosen)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c


async def post(http, query: str, accept: str, variables: dict | None = None):
    return await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"accept": accept}
    )


async def test_graphql_response_json_status_codes(http, engine):
    await make_customer(engine, email="ada@example.com")
    ok = await post(http, "{ customers { totalCount } }", GRAPHQL_RESPONSE)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert ok.json() == {"data": {"customers": {"totalCount": 1}}}

    for query, variables in (
        ("{ customers {", None),  # does not parse
        ("{ nope }", None),  # does not validate
        ("query($n: Int!) { customers(first: $n) { totalCount } }", {"n": "x"}),  # coercion
    ):
        refused = await post(http, query, GRAPHQL_RESPONSE, variables)
        assert refused.status_code == 400, query
        assert refused.headers["content-type"].startswith(GRAPHQL_RESPONSE)
        body = refused.json()
        assert "data" not in body and body["errors"][0]["extensions"]["code"]

    # A field error: the operation ran, data is there, the status stays 200.
    partial = await post(http, '{ node(id: "xyz") { id } }', GRAPHQL_RESPONSE)
    assert partial.status_code == 200 and partial.json()["data"] == {"node": None}


async def test_application_json_keeps_200_for_request_errors(http):
    legacy = await post(http, "{ customers {", "application/json")
    assert legacy.status_code == 200
    assert legacy.headers["content-type"].startswith("application/json")
    assert legacy.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_get_runs_queries_and_refuses_mutations(http, engine):
    await make_customer(engine, email="ada@example.com")
    got = await http.get("/graphql", params={"query": "{ customers { totalCount } }"})
    assert got.status_code == 200 and got.json() == {"data": {"customers": {"totalCount": 1}}}
    with_variables = await http.get(
        "/graphql",
        params={
            "query": "query($e: String!) { customer(by: {email: $e}) { email } }",
            "variables": '{"e": "ada@example.com"}',
        },
    )
    assert with_variables.json() == {"data": {"customer": {"email": "ada@example.com"}}}
    mutation = 'mutation { customerCreate(input: {firstName: "Eve"}) { userErrors { code } } }'
    refused = await http.get("/graphql", params={"query": mutation})
    assert refused.status_code == 405
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.json()["errors"][0]["extensions"]["code"]
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM customer"))).scalar() == 1


async def test_every_error_is_json_with_a_code(http):
    plain = await http.post(
        "/graphql", content=b"{ customers { totalCount } }", headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 415
    assert plain.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    for extensions in ("x", 1, [1]):
        bad = await http.post(
            "/graphql", json={"query": "{ __typename }", "extensions": extensions}
        )
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
