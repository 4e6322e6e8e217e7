"""Admin-defined custom fields and their typed values on customers."""

from datetime import date, datetime
from decimal import Decimal

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers import custom_fields as q
from resolvers.context import viewer_of
from schema.base import build_all, node_resolver, registered
from schema.enums import CustomFieldType


@registered
@strawberry.type(description="A field an administrator added to every customer.")
class CustomFieldDefinition(relay.Node):
    id: relay.NodeID[int]
    key: str
    label: str
    help_text: str | None
    type: CustomFieldType
    options: list[str] | None = strawberry.field(description="The choices of a SELECT field.")
    required: bool
    archived: bool
    position: int
    created_at: datetime
    updated_at: datetime

    resolve_nodes = node_resolver(q.definitions_by_id)


@registered
@strawberry.type(description="A customer's value for one custom field; one typed value is set.")
class CustomFieldValue:
    key: str
    label: str
    type: CustomFieldType
    archived: bool = strawberry.field(
        description="The definition was archived; the stored value stays readable."
    )
    text_value: str | None
    number_value: Decimal | None
    boolean_value: bool | None
    date_value: date | None

    # A computed column (resolvers.custom_fields.VALUE_TEXT): one SQL expression, both paths.
    value: str = strawberry.field(description="The value as text, whatever its type (for display).")


@strawberry.type
class CustomFieldQueries:
    @strawberry.field(description="Custom field definitions, in display order.")
    async def custom_field_definitions(
        self, info: Info, include_archived: bool = False
    ) -> list[CustomFieldDefinition]:
        viewer_of(info)
        rows = await q.definitions(info.context, include_archived)
        return build_all("CustomFieldDefinition", rows)
