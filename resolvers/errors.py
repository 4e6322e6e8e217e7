"""GraphQL errors with a stable `extensions.code` (expected failures of a query)."""

import asyncpg
from graphql import GraphQLError
from sqlalchemy import exc as sa_exc


class CodedError(GraphQLError):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions) -> None:
        super().__init__(message, extensions={"code": self.code, **extensions})


class BadUserInput(CodedError):
    code = "BAD_USER_INPUT"


class Unauthenticated(CodedError):
    code = "UNAUTHENTICATED"


class Forbidden(CodedError):
    code = "FORBIDDEN"


class NotFound(CodedError):
    code = "NOT_FOUND"


class RateLimited(CodedError):
    code = "RATE_LIMITED"


class Unavailable(CodedError):
    """A dependency (the database) is out of reach for now: try again later."""

    code = "SERVICE_UNAVAILABLE"


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
