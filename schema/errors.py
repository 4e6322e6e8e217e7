"""Expected mutation failures are data: `userErrors { field code message }`."""

import enum

import strawberry


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
