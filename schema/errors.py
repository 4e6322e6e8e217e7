"""Expected mutation failures are data: `userErrors { field code message }`."""

from typing import Any, TypeVar

import strawberry
from strawberry.types.base import StrawberryList, StrawberryOptional

from resolvers import errors

# The use cases' own enum (resolvers.errors.UserErrorCode), exposed as the GraphQL enum.
UserErrorCode = strawberry.enum(
    errors.UserErrorCode,
    description="Why a mutation refused its input. Stable: clients switch on it.",
)


@strawberry.type
class UserError:
    field: list[str] | None = strawberry.field(
        description="Path to the input field at fault, e.g. ['input', 'email']; null for the whole."
    )
    code: UserErrorCode
    message: str


def user_errors(refused) -> list[UserError]:
    """`resolvers.mutations.Refused` -> the payload's userErrors."""
    return [UserError(field=p.field, code=p.code, message=p.message) for p in refused.problems]


T = TypeVar("T")


def refused_payload(payload_type: type[T], refused) -> T:
    """The payload of a refused mutation: its userErrors, and every other field empty (null,
    an empty list, or 0), whatever the payload. The one place a Refused becomes a payload."""
    empty: dict[str, Any] = {}
    for f in payload_type.__strawberry_definition__.fields:
        if f.python_name == "user_errors" or f.base_resolver is not None:
            continue
        kind = f.type
        if isinstance(kind, StrawberryOptional):
            empty[f.python_name] = None
        elif isinstance(kind, StrawberryList):
            empty[f.python_name] = []
        else:
            empty[f.python_name] = kind()  # a count: 0
    return payload_type(**empty, user_errors=user_errors(refused))
