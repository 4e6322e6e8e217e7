"""Every error leaves with a stable `extensions.code`; unexpected ones are masked.

Expected failures raise `resolvers.errors.CodedError` and pass through as they are.
Anything else is a bug: the client gets "Internal server error" and a request id, the
log gets the traceback under the same id. CUSTOMER_GRAPH_DEBUG=1 shows the real message.
"""

import logging

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.relay.types import GlobalIDValueError

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
)


# Messages of the limits that graphql-core and Strawberry raise without a code.
_LIMIT_CODES = (
    ("exceeds maximum operation depth", "QUERY_TOO_DEEP"),
    ("aliases found. Allowed", "TOO_MANY_ALIASES"),
    ("Document contains more than", "TOO_MANY_TOKENS"),
    ("introspection has been disabled", "INTROSPECTION_DISABLED"),
)


def _code_for(error: GraphQLError) -> str:
    for hint, code in _LIMIT_CODES:
        if hint in error.message:
            return code
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if any(hint in error.message for hint in _INPUT_HINTS):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


class ErrorCodes(SchemaExtension):
    """Give every error a code and mask unexpected exceptions."""

    def on_operation(self):
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        ctx = self.execution_context.context
        request_id = getattr(ctx, "request_id", None)
        debug = getattr(getattr(ctx, "settings", None), "debug", False)
        result.errors = [self._shape(e, request_id, debug) for e in result.errors]
        client = [
            e for e in result.errors if (e.extensions or {}).get("code") != "INTERNAL_SERVER_ERROR"
        ]
        if client:
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
            error.message = f"Not a valid global ID: {original}"
            error.extensions = {"code": "BAD_USER_INPUT"}
            return error
        # Parse, validation and variable-coercion errors: the request itself is at fault.
        outside_execution = error.path is None and isinstance(original, ValueError | TypeError)
        if original is None or isinstance(original, GraphQLError) or outside_execution:
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": _code_for(error)}
            return error
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
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )
