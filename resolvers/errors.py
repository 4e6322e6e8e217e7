"""GraphQL errors with a stable `extensions.code` (expected failures of a query)."""

from graphql import GraphQLError


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
