"""A log you can read: one line per request (its id, operation, read path, SQL, role,
status, codes), a client's mistake in that line, only a bug logs a traceback; never a
token, a password, a card number or the request's variables."""

from __future__ import annotations

import asyncio
import io
import logging

import httpx
import orjson
import pytest

from server import logs
from server.app import create_app
from server.settings import Settings
from tests.conftest import GraphQLClient

ERRORS = "customer_graph.errors"
REQUEST = logs.REQUEST_LOGGER


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
        assert record.name == REQUEST and record.levelno == logging.INFO
        assert record.exc_info is None
        line = record.msg  # the request line's fields (structlog's event dict)
        assert [e.split(" at ")[0] for e in line["errors"]] == [code]
        assert len(line["request_id"]) == 16
        assert "xyz" not in record.getMessage()  # never the input itself


async def test_operation_name_is_in_the_line(gql, caplog):
    with caplog.at_level(logging.INFO):
        await gql("query CustomerByNumber { customer(number: 5) { id } }")
    (record,) = _records(caplog)
    assert record.msg["operation"] == "CustomerByNumber"


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


@pytest.fixture
async def logged(app_engine):
    """An app with the access log on, its lines rendered as `serve` renders them (JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    logger = logging.getLogger(REQUEST)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    settings = Settings(database_url="unused", access_log=True, compiled_reads=True)
    app = create_app(engine=app_engine, settings=settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as http:
            yield http, stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


async def test_one_json_line_per_request_with_the_clients_request_id(logged, admin_token):
    http, stream = logged
    auth = {"Authorization": f"Bearer {admin_token}"}
    query = "query Page($email: String!) { customer(by: {email: $email}) { number } }"
    email = "secret.person@example.com"
    sent = {"query": query, "variables": {"email": email}, "operationName": "Page"}
    response = await http.post("/graphql", json=sent, headers={**auth, "X-Request-ID": "abc-123"})
    assert response.status_code == 200 and response.headers["x-request-id"] == "abc-123"
    (line,) = _lines(stream)
    assert line["event"] == "request" and line["level"] == "info"
    assert line["request_id"] == "abc-123"
    assert line["operation"] == "Page" and line["operation_type"] == "query"
    assert line["read_path"] == "compiled" and line["status"] == 200
    assert line["role"] == "ADMIN" and line["statements"] == 2  # token lookup + the page
    assert line["duration_ms"] > 0 and line["sql_ms"] > 0 and "errors" not in line
    assert line["timestamp"].endswith("Z") and line["logger"] == REQUEST
    text = stream.getvalue()
    assert admin_token not in text and email not in text and "customer(" not in text


async def test_a_generated_id_is_echoed_and_errors_are_in_the_line(logged, admin_token):
    http, stream = logged
    response = await http.post(
        "/graphql",
        json={"query": 'mutation { login(email: "a@b.c", password: "hunter2") { token } }'},
        headers={"X-Request-ID": "not valid: spaces"},
    )
    assert response.status_code == 200
    rid = response.headers["x-request-id"]
    assert len(rid) == 16 and rid != "not valid: spaces"
    body = await http.post("/graphql", json={"query": "{ nope }"})
    assert body.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    first, second = _lines(stream)
    assert first["request_id"] == rid and first["operation_type"] == "mutation"
    assert first["read_path"] == "field_by_field" and first["role"] == "ANONYMOUS"
    assert second["errors"] == ["GRAPHQL_VALIDATION_FAILED"]
    assert "hunter2" not in stream.getvalue()  # never a password


async def test_an_unexpected_error_carries_the_request_id_of_the_header(gql, caplog, monkeypatch):
    async def broken(ctx):
        raise RuntimeError("bug")

    monkeypatch.setattr("resolvers.sales_channels.all_sales_channels", broken)
    response = await gql.http.post(
        "/graphql",
        json={"query": "{ salesChannels { code } }"},
        headers={"Authorization": f"Bearer {gql.token}", "X-Request-ID": "trace-42"},
    )
    assert response.json()["errors"][0]["extensions"]["requestId"] == "trace-42"
    assert response.headers["x-request-id"] == "trace-42"


def test_text_for_a_terminal_json_otherwise():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert logs.resolve_format(None, Tty()) == "text"
    assert logs.resolve_format(None, io.StringIO()) == "json"
    assert logs.resolve_format("json", Tty()) == "json"
    with pytest.raises(ValueError):
        logs.resolve_format("xml")
    assert logs.safe_name("Q4111111111111111") == "Q[digits]"


async def test_the_line_counts_the_statements_of_dataloaders(
    app_engine, engine, admin_token, caplog
):
    """Field by field, each level is a loader's statement in a task of its own: the
    request's context follows them, so the line counts every one."""
    from tests.factories import make_customer

    await make_customer(engine)
    settings = Settings(database_url="unused", access_log=True, compiled_reads=False)
    transport = httpx.ASGITransport(app=create_app(engine=app_engine, settings=settings))
    query = """{ customers(first: 5) { nodes {
      number addresses { city } orders { nodes { number } } } } }"""
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        with caplog.at_level(logging.INFO, logger=REQUEST):
            response = await http.post(
                "/graphql",
                json={"query": query},
                headers={"Authorization": f"Bearer {admin_token}"},
            )
    assert "errors" not in response.json()
    (record,) = [r for r in caplog.records if r.name == REQUEST]
    line = record.msg
    assert line["read_path"] == "field_by_field"
    # token lookup, customers, addresses, orders: each query also sets the viewer first
    assert line["statements"] >= 7, line


def test_the_request_lines_json_is_the_processor_chains():
    """The JSON formatter renders the request line directly (server/logs._Formatter): the
    same keys, in the same order, with the same values as structlog's processor chain."""
    fields = {"request_id": "abc", "status": 200, "duration_ms": 1.5, "role": "ADMIN"}
    logger = logging.getLogger(REQUEST)
    record = logger.makeRecord(
        REQUEST,
        logging.INFO,
        __file__,
        0,
        {**fields, "event": "request"},
        None,
        None,
        extra={"_logger": logger, "_name": "info"},
    )
    direct = orjson.loads(logs.formatter("json").format(record))
    chain = logs.formatter("json")
    chain.fast = False
    through_chain = orjson.loads(chain.format(record))
    assert list(direct) == list(through_chain)
    direct.pop("timestamp"), through_chain.pop("timestamp")
    assert (
        direct
        == through_chain
        == {**fields, "event": "request", "level": "info", "logger": REQUEST, "pid": direct["pid"]}
    )


def test_under_serves_set_up_the_line_is_written_by_structlog_directly(monkeypatch):
    """serve's logging (one JSON handler on stderr): request lines skip the standard
    library's records (logs.write_request_lines_directly) and read the same; any other
    set-up keeps them going through logging."""
    raw = io.BytesIO()
    stderr = io.TextIOWrapper(raw, write_through=True)
    handler = logging.StreamHandler(stderr)
    handler.setFormatter(logs.formatter("json"))
    handler.addFilter(logs.AlembicChatter())
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [handler])
    monkeypatch.setattr(root, "level", logging.INFO)
    fields = {"request_id": "abc", "status": 200, "duration_ms": 1.5, "role": "ADMIN"}
    try:
        assert logs.write_request_lines_directly()
        logs.request_line(dict(fields))
        logs.request_line(dict(fields, path="/livez"), logging.DEBUG)  # below the level
    finally:
        logs.reset_request_lines()
    (line,) = [orjson.loads(x) for x in raw.getvalue().splitlines()]
    assert line.pop("timestamp").endswith("Z")
    assert list(line) == [*fields, "event", "level", "logger", "pid"]
    assert line == {
        **fields,
        "event": "request",
        "level": "info",
        "logger": REQUEST,
        "pid": line["pid"],
    }
    # Through the chain: the same keys in the same order.
    logs.request_line(dict(fields))
    (_, again) = [orjson.loads(x) for x in raw.getvalue().splitlines()]
    again.pop("timestamp")
    assert list(again) == list(line) and again == line
    # Another handler on the request logger: lines keep going through logging.
    extra = logging.StreamHandler(io.StringIO())
    logging.getLogger(REQUEST).addHandler(extra)
    try:
        assert not logs.write_request_lines_directly()
    finally:
        logging.getLogger(REQUEST).removeHandler(extra)


async def test_direct_lines_are_written_in_batches(monkeypatch):
    """Within the event loop, direct request lines are written together every 50 ms (one
    system call for many lines), and whatever waits is written when they are reset."""
    raw = io.BytesIO()
    handler = logging.StreamHandler(io.TextIOWrapper(raw, write_through=True))
    handler.setFormatter(logs.formatter("json"))
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [handler])
    monkeypatch.setattr(root, "level", logging.INFO)
    try:
        assert logs.write_request_lines_directly()
        for n in range(3):
            logs.request_line({"request_id": f"r{n}"})
        assert raw.getvalue() == b""  # waiting for the batch
        await asyncio.sleep(0.2)
        assert [orjson.loads(x)["request_id"] for x in raw.getvalue().splitlines()] == [
            "r0",
            "r1",
            "r2",
        ]
        logs.request_line({"request_id": "last"})
    finally:
        logs.reset_request_lines()
    assert orjson.loads(raw.getvalue().splitlines()[-1])["request_id"] == "last"
