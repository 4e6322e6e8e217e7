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
from schema.scalars import numeric_text


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

    @strawberry.field(description="The value as text, whatever its type (for display).")
    def value(self) -> str:
        if self.text_value is not None:
            return self.text_value
        if self.number_value is not None:
            return numeric_text(self.number_value)  # as the compiled path prints it
        if self.date_value is not None:
            return self.date_value.isoformat()
        return "true" if self.boolean_value else "false"


@strawberry.type
class CustomFieldQueries:
    @strawberry.field(description="Custom field definitions, in display order.")
    async def custom_field_definitions(
        self, info: Info, include_archived: bool = False
    ) -> list[CustomFieldDefinition]:
        viewer_of(info)
        rows = await q.definitions(info.context, include_archived)
        return build_all("CustomFieldDefinition", rows)
