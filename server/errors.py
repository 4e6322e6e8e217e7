"""Every error leaves with a stable `extensions.code`; unexpected ones are masked.

Expected failures raise `resolvers.errors.CodedError` and pass through as they are.
Anything else is a bug: the client gets "Internal server error" and a request id, the
log gets the traceback under the same id. CUSTOMER_GRAPH_DEBUG=1 shows the real message.
"""

import asyncio
import logging
from contextvars import ContextVar

import orjson
import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.relay.types import GlobalIDValueError
from strawberry.types.graphql import OperationType

from resolvers.errors import ErrorCode, chain, is_timeout, is_unavailable
from server.database import outage_of
from server.observe import OWN_LINE as _OWN_LINE
from server.observe import note_errors

log = logging.getLogger("customer_graph.errors")

# graphql-core reports bad argument/variable values through validation/coercion messages.
_INPUT_HINTS = (
    "Expected value of type",
    "does not exist in",
    "got invalid value",
    "cannot represent",
    "Expected type",
    "of required type",
    "was not provided",
    "is not defined by type",
    "Variable '$",
    "Int cannot represent",
    "must specify exactly one key",  # a @oneOf input given none or several
)


# Messages of the limits that graphql-core and Strawberry raise without a code.
_LIMIT_CODES = (
    ("exceeds maximum operation depth", ErrorCode.QUERY_TOO_DEEP),
    ("aliases found. Allowed", ErrorCode.TOO_MANY_ALIASES),
    ("Document contains more than", ErrorCode.TOO_MANY_TOKENS),
    ("introspection has been disabled", ErrorCode.INTROSPECTION_DISABLED),
)


def _code_for(error: GraphQLError) -> str:
    for hint, code in _LIMIT_CODES:
        if hint in error.message:
            return code
    if error.message.startswith("Syntax Error"):
        return ErrorCode.GRAPHQL_PARSE_FAILED
    if any(hint in error.message for hint in _INPUT_HINTS):
        return ErrorCode.BAD_USER_INPUT
    return ErrorCode.GRAPHQL_VALIDATION_FAILED


class ErrorCodes(SchemaExtension):
    """Give every error a code and mask unexpected exceptions."""

    def on_execute(self):
        # The request budget counts from here. Not for a mutation: its statements each have
        # the statement timeout, and a cancel after COMMIT would answer TIMEOUT for a write.
        if self.execution_context.operation_type is not OperationType.MUTATION:
            start_budget()
        yield

    def on_operation(self):
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        ctx = self.execution_context.context
        request_id = getattr(ctx, "request_id", None)
        debug = getattr(getattr(ctx, "settings", None), "debug", False)
        result.errors = [self._shape(e, request_id, debug) for e in result.errors]
        # Bugs, timeouts and outages have lines of their own (above, and per episode).
        client = [e for e in result.errors if (e.extensions or {}).get("code") not in _OWN_LINE]
        where = [(_code(e), ".".join(map(str, e.path or ())) or None) for e in result.errors]
        noted = note_errors(where)
        if client and not noted:  # a WebSocket operation: no request line to carry them
            # One line per request for the client's mistakes (bad token, validation, input,
            # limits): codes and paths, never messages (they may quote the input) or a
            # traceback. Unexpected errors were logged by _shape at ERROR with theirs.
            log.info(
                "request %s: operation %s answered %s",
                request_id,
                self.execution_context.operation_name or "-",
                ", ".join(
                    e.extensions["code"] + (f" at {'.'.join(map(str, e.path))}" if e.path else "")
                    for e in client
                ),
            )

    @staticmethod
    def _shape(error: GraphQLError, request_id: str | None, debug: bool) -> GraphQLError:
        original = error.original_error
        if isinstance(original, GraphQLError) and (original.extensions or {}).get("code"):
            error.extensions = original.extensions
            return error
        if isinstance(original, GlobalIDValueError):  # relay `node` with a foreign type name
            # Strawberry's own words already say it ("Value cannot represent a GlobalID: …").
            detail = str(original).removeprefix("Value cannot represent a GlobalID: ")
            error.message = f"Not a valid global ID: {detail}"
            error.extensions = {"code": ErrorCode.BAD_USER_INPUT}
            return error
        # Parse, validation and variable-coercion errors: the request itself is at fault.
        outside_execution = error.path is None and isinstance(original, ValueError | TypeError)
        if original is None or isinstance(original, GraphQLError) or outside_execution:
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": _code_for(error)}
            return error
        if is_timeout(original) or is_unavailable(original):
            return _database_error(error, original, request_id)
        log.error(
            "request %s: unexpected error at %s",
            request_id,
            error.path,
            exc_info=(type(original), original, original.__traceback__),
        )
        message = f"{type(original).__name__}: {original}" if debug else "Internal server error"
        return GraphQLError(
            message,
            nodes=error.nodes,
            path=error.path,
            extensions={"code": ErrorCode.INTERNAL_SERVER_ERROR, "requestId": request_id},
        )


def _code(error: GraphQLError) -> str:
    return str((error.extensions or {}).get("code") or "ERROR")  # a plain str, not the enum


def _database_error(
    error: GraphQLError, original: Exception, request_id: str | None
) -> GraphQLError:
    """A timeout (one log line, no traceback) or an outage (GraphQLApp answers 503)."""
    if is_timeout(original):
        log.warning("request %s: statement timed out at %s", request_id, error.path)
        message, code = TIMEOUT_MESSAGE, ErrorCode.TIMEOUT
    else:
        message, code = UNAVAILABLE_MESSAGE, ErrorCode.SERVICE_UNAVAILABLE
    return GraphQLError(
        message,
        nodes=error.nodes,
        path=error.path,
        original_error=original,
        extensions={"code": code},
    )


UNAVAILABLE_MESSAGE = "The database is unavailable; retry later."
TIMEOUT_MESSAGE = "The request took too long and was cancelled."
RETRY_AFTER = b"5"  # seconds: about a PostgreSQL restart


class Schema(strawberry.Schema):
    """Strawberry logs every error with its traceback before extensions see it, a bad
    token included. Here nothing is logged at that point: ErrorCodes logs each request's
    client errors once (one INFO line with codes), unexpected ones at ERROR with their
    traceback, timeouts as one WARNING; outages once per episode (server.database.Outage)."""

    def process_errors(self, errors, execution_context=None) -> None:
        return


def _error_body(message: str, code: str) -> bytes:
    return orjson.dumps(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
    )


UNAVAILABLE_BODY = _error_body(UNAVAILABLE_MESSAGE, ErrorCode.SERVICE_UNAVAILABLE)
TIMEOUT_BODY = _error_body(TIMEOUT_MESSAGE, ErrorCode.TIMEOUT)


class DatabaseFailures:
    """ASGI middleware for HTTP: bounds each request's execution by a wall-clock budget and
    turns a database outage or timeout that escapes a handler (compiled path, token lookup,
    Strawberry via GraphQLApp, /healthz) into a GraphQL error response: TIMEOUT (200), or
    SERVICE_UNAVAILABLE (503 + Retry-After) instead of a text/plain 500."""

    def __init__(self, app, engine_ref: dict, budget: float | None) -> None:
        self.app = app
        self.engine_ref = engine_ref
        self.budget = budget or None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        budget = _Budget(self.budget)
        current = _BUDGET.set(budget)
        try:
            async with budget.timeout:
                await self.app(scope, receive, tracked)
        except Exception as error:
            if started:
                raise
            if budget.timeout.expired() or is_timeout(error):
                log.warning("%s %s timed out", scope["method"], scope["path"])
                return await _answer(send, 200, TIMEOUT_BODY)
            if not is_unavailable(error):
                raise
            *_, cause = chain(error)  # the driver's own words for the log line
            outage_of(self.engine_ref["engine"]).down(cause)
            await _answer(send, 503, UNAVAILABLE_BODY, [(b"retry-after", RETRY_AFTER)])
        finally:
            _BUDGET.reset(current)


class _Budget:
    """A request's execution budget: the clock starts when execution does (start_budget),
    so time queued for a pooled connection (bounded by the connect timeout) is not counted."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.timeout = asyncio.timeout(None)


_BUDGET: ContextVar[_Budget | None] = ContextVar("customer_graph_budget", default=None)


def start_budget() -> None:
    """Start the running request's clock, once (a mixed operation starts it on the compiled
    path and Strawberry's half runs on in the same budget)."""
    budget = _BUDGET.get()
    if budget is not None and budget.seconds and budget.timeout.when() is None:
        budget.timeout.reschedule(asyncio.get_running_loop().time() + budget.seconds)


async def _answer(send, status: int, body: bytes, extra: list | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})
