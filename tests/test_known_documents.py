"""server/known_documents.py: a document is parsed and validated once per worker, yet
every request still gets its limits, and an invalid document its errors, every time."""

from unittest.mock import ANY

import httpx

from server import known_documents
from server.app import create_app
from server.settings import Settings
from tests.conftest import GraphQLClient, gid
from tests.factories import make_customer

NOTE = """mutation($input: CustomerAddNoteInput!) {
  customerAddNote(input: $input) { event { summary } userErrors { code } } }"""
PAGE = """query($n: Int!) {
  customers(first: $n) { nodes { number orders(first: $n) { nodes { number } } } } }"""


async def test_a_known_mutation_runs_again_without_being_parsed_again(gql, engine):
    c = await make_customer(engine)
    for i in range(3):
        variables = {"input": {"customerId": gid("Customer", c.id), "note": f"n{i}"}}
        data = await gql.data(NOTE, variables)
        assert data["customerAddNote"] == {"event": {"summary": f"n{i}"}, "userErrors": []}
    known = [k for (text, _), k in known_documents._KNOWN.items() if text == NOTE]
    assert len(known) == 1 and known[0].valid_for


async def test_an_invalid_document_answers_its_errors_every_time(gql):
    bad = "mutation { customerAddNote(input: {note: 1}) { nope } }"
    first, second = await gql(bad), await gql(bad)
    assert first == second
    assert first["errors"] and first.get("data") is None
    known = [k for (text, _), k in known_documents._KNOWN.items() if text == bad]
    assert len(known) == 1 and not known[0].valid_for  # it parses: kept, never as valid


async def test_limits_still_apply_to_a_known_document(app_engine, admin_token):
    """The cost depends on the variables: the same text passes, is refused, passes."""
    settings = Settings(database_url="unused", debug=False, compiled_reads=False, max_cost=500)
    app = create_app(engine=app_engine, settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        gql = GraphQLClient(http, admin_token)
        assert "errors" not in await gql(PAGE, {"n": 5})
        refused = await gql(PAGE, {"n": 100})
        assert refused["errors"] == [
            {"message": ANY, "extensions": {"code": "QUERY_TOO_COSTLY", **refused_extra(refused)}}
        ]
        assert "errors" not in await gql(PAGE, {"n": 5})


def refused_extra(body: dict) -> dict:
    """The cost error's figures (cost, maximum), whatever they are."""
    return {k: v for k, v in body["errors"][0]["extensions"].items() if k != "code"}
