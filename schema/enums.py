"""GraphQL enums: the model enums, exposed as they are stored."""

import enum

import strawberry

from models import enums
from resolvers.customers import CustomerOrderField as _CustomerOrderField

Role = strawberry.enum(enums.Role)
CustomerKind = strawberry.enum(enums.CustomerKind)
CustomerStatus = strawberry.enum(enums.CustomerStatus)
TaxStatusKind = strawberry.enum(enums.TaxStatus, name="TaxStatusKind")
AddressKind = strawberry.enum(enums.AddressKind)
OrderStatus = strawberry.enum(enums.OrderStatus)
OrderSource = strawberry.enum(enums.OrderSource)
LedgerKind = strawberry.enum(enums.LedgerKind)
CustomFieldType = strawberry.enum(enums.CustomFieldType)
MarketingState = strawberry.enum(
    enums.MarketingState,
    description="SUBSCRIBED; UNSUBSCRIBED (opted out); PENDING (awaiting confirmation); "
    "NOT_SUBSCRIBED (never asked).",
)
OptInLevel = strawberry.enum(
    enums.OptInLevel, description="SINGLE opt-in, or CONFIRMED (double opt-in)."
)
CustomerOrderField = strawberry.enum(_CustomerOrderField)


@strawberry.enum
class OrderDirection(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"
