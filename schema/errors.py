"""Expected mutation failures are data: `userErrors { field code message }`."""

import enum
from typing import Any, TypeVar

import strawberry
from strawberry.types.base import StrawberryList, StrawberryOptional


@strawberry.enum(description="Why a mutation refused its input. Stable: clients switch on it.")
class UserErrorCode(enum.Enum):
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


@strawberry.type
class UserError:
    field: list[str] | None = strawberry.field(
        description="Path to the input field at fault, e.g. ['input', 'email']; null for the whole."
    )
    code: UserErrorCode
    message: str


def user_errors(refused) -> list[UserError]:
    """`resolvers.mutations.Refused` -> the payload's userErrors."""
    return [
        UserError(field=p.field, code=UserErrorCode(p.code), message=p.message)
        for p in refused.problems
    ]


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
