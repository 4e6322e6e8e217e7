"""What each HTTP request was and cost: its id, operation, read path, SQL, outcome.

`Observe` (ASGI middleware) gives every request a `RequestState` in a context variable:
the request id (the client's `X-Request-ID` when it sends a sane one, else 16 hex
digits), echoed in the response's `X-Request-ID`. The code that knows fills it in: the
compiled front (`note_operation`, `sql` for its bare statements), Strawberry's extensions
(`Observed`, and `server.errors.ErrorCodes` for error codes), SQLAlchemy's engine events
(`watch_engine`: statements and their time). When the response ends, the middleware
writes one request line (server/logs.py) and the metrics (server/metrics.py).
"""

from __future__ import annotations

import logging
import random
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from resolvers.errors import ErrorCode
from server import logs, metrics

# Written by server/compiled.py on the request's scope: (viewer | None, token error | None).
AUTH_KEY = "customer_graph.auth"
PATH_HEADER = b"x-customer-graph-path"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Not worth a line each at INFO: probes and scrapes every few seconds, GraphiQL's assets.
_ids = random.Random()  # seeded from the OS once per process
_QUIET = ("/livez", "/readyz", "/healthz", "/metrics", "/graphiql/")


@dataclass(slots=True)
class RequestState:
    request_id: str
    started: float
    statements: int = 0
    sql_seconds: float = 0.0
    operation: str | None = None
    operation_type: str | None = None
    errors: list[tuple[str, str | None]] = field(default_factory=list)  # (code, path)


CURRENT: ContextVar[RequestState | None] = ContextVar("customer_graph_request", default=None)


def current() -> RequestState | None:
    return CURRENT.get()


def note_operation(name: Any, operation_type: str | None = None) -> None:
    state = CURRENT.get()
    if state is None:
        return
    if isinstance(name, str):
        state.operation = name
    if operation_type is not None:
        state.operation_type = operation_type


def note_errors(errors: list[tuple[str, str | None]]) -> bool:
    """Record a request's error codes for its line; False: no HTTP request to note them on
    (a WebSocket operation), the caller logs them itself."""
    state = CURRENT.get()
    if state is None:
        return False
    state.errors.extend(errors)
    return True


def sql(seconds: float) -> None:
    """A statement run on a bare driver connection (the compiled path), which SQLAlchemy's
    events do not see."""
    state = CURRENT.get()
    if state is not None:
        state.statements += 1
        state.sql_seconds += seconds


def _before(conn, cursor, statement, parameters, context, executemany) -> None:
    if context is not None:
        context._cg_started = time.perf_counter()


def _after(conn, cursor, statement, parameters, context, executemany) -> None:
    state = CURRENT.get()
    if state is None or context is None:
        return
    started = getattr(context, "_cg_started", None)
    state.statements += 1
    if started is not None:
        state.sql_seconds += time.perf_counter() - started


def watch_engine(engine: AsyncEngine) -> None:
    """Count each request's SQL statements and their time (once per engine)."""
    sync = engine.sync_engine
    if not event.contains(sync, "after_cursor_execute", _after):
        event.listen(sync, "before_cursor_execute", _before)
        event.listen(sync, "after_cursor_execute", _after)


def _request_id(scope) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            sent = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(sent):
                return sent
            break
    # An id to find a request's lines by, not a secret: no system call for randomness.
    return f"{_ids.getrandbits(64):016x}"


def _codes_of(body: bytes) -> list[tuple[str, str | None]]:
    """The codes of a small error body the front or a middleware sent (not Strawberry's:
    ErrorCodes noted those)."""
    try:
        errors = orjson.loads(body).get("errors") or []
        return [(str((e.get("extensions") or {}).get("code") or "ERROR"), None) for e in errors]
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return []


class Observe:
    """ASGI middleware for HTTP: request id, request line, request metrics."""

    def __init__(self, app, *, access_log: bool, metrics: bool, graphql_path: str = "/graphql"):
        self.app = app
        self.access_log = access_log
        self.metrics = metrics
        self.graphql_path = graphql_path

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = RequestState(_request_id(scope), time.perf_counter())
        token = CURRENT.set(state)
        graphql = scope["path"] == self.graphql_path
        status = 500
        read_path = "field_by_field"
        echo = (b"x-request-id", state.request_id.encode())

        async def observed(message) -> None:
            nonlocal status, read_path
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or []
                for key, value in headers:
                    if key == PATH_HEADER:
                        read_path = value.decode()
                message = {**message, "headers": [*headers, echo]}
            elif graphql and not state.errors and message["type"] == "http.response.body":
                body = message.get("body", b"")
                if len(body) < 4096 and b'"errors"' in body[:64]:
                    state.errors = _codes_of(body)
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            CURRENT.reset(token)
            self._finish(scope, state, graphql, status, read_path)

    def _finish(self, scope, state: RequestState, graphql: bool, status: int, read_path: str):
        seconds = time.perf_counter() - state.started
        codes = [code for code, _ in state.errors]
        if not codes and status >= 400:
            codes = [f"HTTP_{status}"]
        if graphql and self.metrics:
            metrics.observe_request(
                operation=state.operation,
                operation_type=state.operation_type,
                read_path=read_path,
                codes=codes,
                seconds=seconds,
                statements=state.statements,
                sql_seconds=state.sql_seconds,
            )
        # A client's mistakes are logged even without the access log: the one line per
        # request that names them (server/errors.py leaves them to it).
        client_errors = [c for c, _ in state.errors if c not in OWN_LINE]
        if not (self.access_log or client_errors):
            return
        path = scope["path"]
        level = logging.DEBUG if path.startswith(_QUIET) and not codes else logging.INFO
        viewer = (scope.get(AUTH_KEY) or (None, None))[0]
        role = getattr(getattr(viewer, "role", None), "value", None) if viewer else None
        fields: dict[str, Any] = {
            "request_id": state.request_id,
            "method": scope["method"],
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        if graphql:
            fields.update(
                operation=logs.safe_name(state.operation),
                operation_type=state.operation_type,
                read_path=read_path,
                statements=state.statements,
                sql_ms=round(state.sql_seconds * 1000, 2),
                role=role or "ANONYMOUS",
            )
        if state.errors:
            fields["errors"] = [f"{c} at {where}" if where else c for c, where in state.errors]
        logs.request_line(fields, level)


# Bugs, timeouts and outages have lines of their own (server/errors.py, server/database.py).
OWN_LINE = frozenset(
    (ErrorCode.INTERNAL_SERVER_ERROR, ErrorCode.SERVICE_UNAVAILABLE, ErrorCode.TIMEOUT)
)


class Observed(SchemaExtension):
    """Strawberry's half: the operation's name and type for the request line and metrics,
    and open subscriptions (the operation spans a subscription's whole life)."""

    def on_operation(self):
        self._subscription = False
        try:
            yield
        finally:
            if self._subscription:
                metrics.SUBSCRIPTIONS.dec()
        ec = self.execution_context
        try:
            kind = ec.operation_type.value if ec.graphql_document is not None else None
        except Exception:  # no such operation: Strawberry reports it
            kind = None
        note_operation(getattr(ec, "_provided_operation_name", None) or ec.operation_name, kind)

    def on_execute(self):
        ec = self.execution_context
        settings = getattr(ec.context, "settings", None)
        if ec.operation_type is OperationType.SUBSCRIPTION and getattr(settings, "metrics", True):
            metrics.SUBSCRIPTIONS.inc()
            self._subscription = True
        yield
