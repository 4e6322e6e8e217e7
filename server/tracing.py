"""Traces (OpenTelemetry), off unless OTEL_EXPORTER_OTLP_ENDPOINT or CUSTOMER_GRAPH_TRACING=1.

When on: a span per HTTP request (opentelemetry-instrumentation-asgi, which honours an
incoming W3C `traceparent`), a span per GraphQL operation (`Traced` on the Strawberry
path, `operation_span` on the compiled front), and a span per SQL statement
(opentelemetry-instrumentation-asyncpg, which sees both paths' statements). Spans go to
the OTLP/HTTP exporter, configured by the standard OTEL_* variables (endpoint, headers,
OTEL_SERVICE_NAME). Off, no operation span is made at all, and `tracer()` is
OpenTelemetry's no-op tracer.

The provider is kept here rather than only installed globally, so a test can switch
tracing on with an in-memory exporter and off again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Tracer
from strawberry.extensions import SchemaExtension

NAME = "customer_graph"
_provider: Any = None  # a TracerProvider while tracing is on


def wanted() -> bool:
    flag = (os.environ.get("CUSTOMER_GRAPH_TRACING") or "").strip().lower()
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")) or flag in {"1", "true", "on"}


def enable(provider: Any = None) -> None:
    """Tracing on for this process: `provider` (a test's), else an SDK provider exporting
    OTLP over HTTP in batches. Idempotent."""
    global _provider
    if _provider is not None:
        return
    if provider is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        service = os.environ.get("OTEL_SERVICE_NAME") or "customer-graph"
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().instrument(tracer_provider=provider)
    _provider = provider


def disable() -> None:
    """Tracing off again (tests)."""
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().uninstrument()
    _provider = None


def enabled() -> bool:
    return _provider is not None


def tracer() -> Tracer:
    if _provider is None:
        return trace.get_tracer(NAME)  # no-op unless someone installed a provider
    return _provider.get_tracer(NAME)


def middleware() -> tuple[type, dict[str, Any]]:
    """OpenTelemetry's request span as (middleware class, options) for add_middleware (W3C
    traceparent honoured); no span per ASGI message, which a 225 KB page would multiply."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware, {
        "tracer_provider": _provider,
        "exclude_spans": ["receive", "send"],
    }


@contextlib.contextmanager
def operation_span(operation_type: str, name: str | None) -> Iterator[Span]:
    """The GraphQL operation's span (the compiled front's; Strawberry's is `Traced`).
    Tracing off: no span at all, as `Traced` does (even a no-op span was ~3 % of a small
    compiled read's worker CPU, py-spy on bench.compare's c)."""
    if _provider is None:
        yield INVALID_SPAN
        return
    with tracer().start_as_current_span(
        _span_name(operation_type, name), kind=SpanKind.INTERNAL
    ) as span:
        _describe(span, operation_type, name)
        yield span


def _span_name(operation_type: str | None, name: str | None) -> str:
    return f"GraphQL {operation_type or 'operation'} {name or '(anonymous)'}"


def _describe(span: Span, operation_type: str | None, name: str | None) -> None:
    if span.is_recording():
        span.set_attribute("graphql.operation.type", operation_type or "")
        span.set_attribute("graphql.operation.name", name or "")


class Traced(SchemaExtension):
    """A span around each Strawberry operation (its name known once parsed). Not per
    resolver: a nested page resolves thousands of fields; its SQL has spans of its own."""

    def on_operation(self):
        if not enabled():
            yield
            return
        with tracer().start_as_current_span("GraphQL operation") as span:
            yield
            ec = self.execution_context
            try:
                kind = ec.operation_type.value if ec.graphql_document is not None else None
            except Exception:  # no such operation: Strawberry reports it
                kind = None
            span.update_name(_span_name(kind, ec.operation_name))
            _describe(span, kind, ec.operation_name)
            result = ec.result
            if result is not None and result.errors:
                codes = [(e.extensions or {}).get("code", "ERROR") for e in result.errors]
                span.set_attribute("graphql.error.codes", codes)
