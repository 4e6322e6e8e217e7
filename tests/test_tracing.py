"""Traces with OpenTelemetry's in-memory exporter: the span tree of a nested query on both
read paths, under the caller's W3C traceparent."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from server import tracing
from server.app import create_app
from server.settings import Settings
from tests.factories import make_customer

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"
NESTED = """query Nested { customers(first: 5) { nodes {
  number addresses { city } orders(first: 3) { nodes { number } } } } }"""


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        yield exporter
    finally:
        tracing.disable()


def children(spans, parent) -> list:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "field_by_field"])
async def test_the_span_tree_of_a_nested_query(spans, app_engine, engine, admin_token, compiled):
    await make_customer(engine)
    settings = Settings(database_url="unused", compiled_reads=compiled)
    transport = httpx.ASGITransport(app=create_app(engine=app_engine, settings=settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post(
            "/graphql",
            json={"query": NESTED},
            headers={"Authorization": f"Bearer {admin_token}", "traceparent": TRACEPARENT},
        )
    assert response.status_code == 200 and "errors" not in response.json()
    everything = spans.get_finished_spans()  # the test's own set-up has SQL spans too
    (request,) = [s for s in everything if s.kind is SpanKind.SERVER]
    assert request.context.trace_id == TRACE_ID  # the caller's trace
    finished = [s for s in everything if s.context.trace_id == TRACE_ID]
    assert request.parent.span_id == PARENT_ID and request.name == "POST /graphql"
    (operation,) = [s for s in children(finished, request) if s.name.startswith("GraphQL")]
    assert operation.name == "GraphQL query Nested"
    assert operation.attributes["graphql.operation.name"] == "Nested"

    sql = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert all(s.attributes.get("db.system") == "postgresql" for s in sql)
    under_operation = [s for s in sql if s in children(finished, operation)]
    statements = [s.attributes.get("db.statement", "") for s in under_operation]
    if compiled:
        # One statement answers the whole page; the token lookup ran before it.
        assert len(under_operation) == 1, statements
        assert any(
            "api_token" in s.attributes.get("db.statement", "") for s in children(finished, request)
        )
    else:
        # customers, addresses, orders: each level one statement (and the viewer setting)
        reads = [s for s in statements if "cg_set_viewer" not in s and s.startswith("SELECT")]
        assert len(reads) == 3, statements
    # No query text or variables beyond the SQL with its placeholders.
    assert not any("Nested" in s for s in statements)
