"""Error codes, and GraphQL errors with a stable `extensions.code` (expected failures of
a query). Clients switch on the codes: each is spelled once, here."""

from enum import StrEnum

import asyncpg
from graphql import GraphQLError
from sqlalchemy import exc as sa_exc


class ErrorCode(StrEnum):
    """Every GraphQL error's `extensions.code` (and the JSON errors of the HTTP layer)."""

    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    THROTTLED = "THROTTLED"  # over the cost budget (server/budget.py): HTTP 429
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    TIMEOUT = "TIMEOUT"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
    TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
    TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
    INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"
    QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
    SELECTION_LIMIT_EXCEEDED = "SELECTION_LIMIT_EXCEEDED"
    OPERATION_NAME_REQUIRED = "OPERATION_NAME_REQUIRED"
    SUBSCRIPTION_NEEDS_WEBSOCKET = "SUBSCRIPTION_NEEDS_WEBSOCKET"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    BAD_REQUEST = "BAD_REQUEST"
    BATCH_NOT_SUPPORTED = "BATCH_NOT_SUPPORTED"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    CORS_ORIGIN_REFUSED = "CORS_ORIGIN_REFUSED"
    EXPIRED = "EXPIRED"


class UserErrorCode(StrEnum):
    """Why a mutation (or an imported row) was refused: `userErrors { code }`, GraphQL's
    UserErrorCode (schema/errors.py)."""

    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    NOT_FOUND = "NOT_FOUND"
    DUPLICATE = "DUPLICATE"
    CONFLICT = "CONFLICT"
    FORBIDDEN = "FORBIDDEN"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    CARD_NUMBER_REFUSED = "CARD_NUMBER_REFUSED"
    ERASED = "ERASED"  # the customer was erased (privacy request): no personal data again
    AMBIGUOUS = "AMBIGUOUS"  # an imported row's reference ID names more than one customer


class CodedError(GraphQLError):
    code = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, **extensions) -> None:
        super().__init__(message, extensions={"code": self.code, **extensions})


class BadUserInput(CodedError):
    code = ErrorCode.BAD_USER_INPUT


class Unauthenticated(CodedError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(CodedError):
    code = ErrorCode.FORBIDDEN


class NotFound(CodedError):
    code = ErrorCode.NOT_FOUND


class RateLimited(CodedError):
    code = ErrorCode.RATE_LIMITED


class Unavailable(CodedError):
    """A dependency (the database) is out of reach for now: try again later."""

    code = ErrorCode.SERVICE_UNAVAILABLE


# SQLSTATEs: a statement cancelled (statement_timeout, or our cancel) or a lock not granted
# within lock_timeout; and the server refusing or dropping connections.
_TIMEOUT_STATES = {"57014", "55P03"}
_UNAVAILABLE_STATES = {"57P01", "57P02", "57P03", "53300"}


class ServiceUnavailable(Exception):
    """A resolver met a database outage: the request answers 503 as a whole."""


def chain(error: BaseException | None):
    """The error, what it wraps (SQLAlchemy's .orig) and what caused it."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = getattr(error, "orig", None) or error.__cause__


def is_timeout(error: BaseException | None) -> bool:
    for e in chain(error):
        if isinstance(e, asyncpg.QueryCanceledError):
            return True
        if isinstance(e, asyncpg.LockNotAvailableError):
            return True
        if getattr(e, "sqlstate", None) in _TIMEOUT_STATES:
            return True
    return False


def is_unavailable(error: BaseException | None) -> bool:
    """A connection could not be opened, checked out, or died under us."""
    for e in chain(error):
        if isinstance(e, ServiceUnavailable | sa_exc.TimeoutError | sa_exc.DisconnectionError):
            return True  # TimeoutError: no pooled connection within the connect timeout
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, OSError | asyncpg.PostgresConnectionError):
            return True  # refused, socket gone, reset; asyncpg's connect timeout too
        if isinstance(e, asyncpg.InterfaceError) and "connection is closed" in str(e):
            return True
        state = getattr(e, "sqlstate", None) or ""
        if state in _UNAVAILABLE_STATES or state.startswith("08"):
            return True
    return False


def database_unavailable(error: BaseException | None) -> bool:
    """is_unavailable, or a connect attempt that timed out: worth retrying on a new
    connection (the live timeline's LISTEN and its subscribers' reads)."""
    return is_unavailable(error) or any(isinstance(e, TimeoutError) for e in chain(error))
