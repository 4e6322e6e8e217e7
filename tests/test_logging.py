"""A log you can read: a client's mistake is one INFO line, only a bug logs a traceback."""

from __future__ import annotations

import logging

from tests.conftest import GraphQLClient

ERRORS = "customer_graph.errors"


def _records(caplog) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.INFO
        and r.name.startswith(("customer_graph", "strawberry", "server", "resolvers", "schema"))
    ]


async def test_client_errors_are_one_line_without_traceback(client, gql, caplog):
    cases = [
        (GraphQLClient(client, "cg_not_a_token"), "{ me { user { email } } }", "UNAUTHENTICATED"),
        (gql, "{ nope }", "GRAPHQL_VALIDATION_FAILED"),
        (gql, '{ node(id: "xyz") { id } }', "BAD_USER_INPUT"),
        (gql, "{ customers(first: 1000) { totalCount } }", "BAD_USER_INPUT"),
        (gql, "query Named { customer(number: ", "GRAPHQL_PARSE_FAILED"),
    ]
    for as_, query, code in cases:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            body = await as_(query)
        assert body["errors"][0]["extensions"]["code"] == code, body
        records = _records(caplog)
        assert len(records) == 1, [r.getMessage() for r in records]
        (record,) = records
        assert record.name == ERRORS and record.levelno == logging.INFO
        assert record.exc_info is None
        assert code in record.getMessage()
        request_id = record.getMessage().split()[1].rstrip(":")
        assert len(request_id) == 16
        assert "xyz" not in record.getMessage()  # never the input itself


async def test_operation_name_is_in_the_line(gql, caplog):
    with caplog.at_level(logging.INFO):
        await gql("query CustomerByNumber { customer(number: 5) { id } }")
    (record,) = _records(caplog)
    assert "CustomerByNumber" in record.getMessage()


async def test_a_bug_logs_a_traceback_at_error(gql, caplog, monkeypatch):
    async def broken(ctx):
        raise RuntimeError("bug")

    monkeypatch.setattr("resolvers.sales_channels.all_sales_channels", broken)
    with caplog.at_level(logging.INFO):
        body = await gql("{ salesChannels { code } }")
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    records = _records(caplog)
    assert [r.levelno for r in records] == [logging.ERROR]
    assert records[0].exc_info is not None
    assert error["extensions"]["requestId"] in records[0].getMessage()
