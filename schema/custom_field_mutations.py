"""Custom field definition and value mutations."""

from typing import Any

import strawberry
from strawberry.types import Info

from resolvers import custom_field_mutations as q
from resolvers import custom_fields as field_q
from resolvers import customers as customer_q
from resolvers.context import viewer_of
from resolvers.global_ids import decode_id
from resolvers.mutations import Refused
from schema.base import build
from schema.custom_fields import CustomFieldDefinition
from schema.customers import Customer
from schema.enums import CustomFieldType
from schema.errors import UserError, refused_payload

UNSET: Any = strawberry.UNSET


@strawberry.input
class CustomFieldDefinitionInput:
    key: str = strawberry.field(description=f"Stable identifier: {q.KEY_HELP}.")
    label: str
    type: CustomFieldType
    options: list[str] | None = strawberry.field(default=None, description="SELECT only.")
    required: bool = False
    position: int = 0
    help_text: str | None = None


@strawberry.input
class CustomFieldDefinitionUpdateInput:
    id: strawberry.ID
    label: str | None = UNSET
    help_text: str | None = UNSET
    options: list[str] | None = UNSET
    required: bool | None = UNSET
    position: int | None = UNSET


@strawberry.input
class CustomFieldDefinitionIdInput:
    id: strawberry.ID


@strawberry.input
class CustomFieldValueInput:
    customer_id: strawberry.ID
    key: str
    value: str = strawberry.field(
        description="Text; NUMBER as 12.5, DATE as 2025-01-31, "
        "BOOLEAN as true/false, SELECT as one of the options."
    )


@strawberry.input
class CustomFieldClearInput:
    customer_id: strawberry.ID
    key: str


@strawberry.input
class CustomFieldEntry:
    key: str
    value: str | None = strawberry.field(description="null clears the value.")


@strawberry.input
class CustomerSetCustomFieldsInput:
    customer_id: strawberry.ID
    values: list[CustomFieldEntry]


@strawberry.type
class CustomFieldDefinitionPayload:
    definition: CustomFieldDefinition | None
    user_errors: list[UserError]


@strawberry.type
class CustomFieldValuePayload:
    customer: Customer | None
    user_errors: list[UserError]


async def _definition(info: Info, def_id: int) -> CustomFieldDefinitionPayload:
    row = await info.context.fresh().loader(field_q.definitions_by_id).load(def_id)
    return CustomFieldDefinitionPayload(
        definition=build("CustomFieldDefinition", row), user_errors=[]
    )


async def _customer(info: Info, cid: int) -> CustomFieldValuePayload:
    row = await info.context.fresh().loader(customer_q.customers_by_id).load(cid)
    return CustomFieldValuePayload(customer=build("Customer", row), user_errors=[])


@strawberry.type
class CustomFieldMutations:
    @strawberry.mutation(description="Add a field to every customer (admins).")
    async def custom_field_definition_create(
        self, info: Info, input: CustomFieldDefinitionInput
    ) -> CustomFieldDefinitionPayload:
        viewer_of(info)
        try:
            did = await q.create_definition(
                info.context,
                input.key,
                input.label,
                input.type,
                input.options,
                input.required,
                input.position,
                input.help_text,
            )
        except Refused as refused:
            return refused_payload(CustomFieldDefinitionPayload, refused)
        return await _definition(info, did)

    @strawberry.mutation(
        description="Change a field's label, help text, options, required or position."
    )
    async def custom_field_definition_update(
        self, info: Info, input: CustomFieldDefinitionUpdateInput
    ) -> CustomFieldDefinitionPayload:
        viewer_of(info)
        try:
            did = decode_id(input.id, "CustomFieldDefinition", "id")
            changes = {
                k: getattr(input, k)
                for k in ("label", "help_text", "options", "required", "position")
                if getattr(input, k) is not UNSET
            }
            await q.update_definition(info.context, did, changes)
        except Refused as refused:
            return refused_payload(CustomFieldDefinitionPayload, refused)
        return await _definition(info, did)

    @strawberry.mutation(description="Hide a field; stored values are kept.")
    async def custom_field_definition_archive(
        self, info: Info, input: CustomFieldDefinitionIdInput
    ) -> CustomFieldDefinitionPayload:
        viewer_of(info)
        try:
            did = decode_id(input.id, "CustomFieldDefinition", "id")
            await q.update_definition(info.context, did, {"archived": True})
        except Refused as refused:
            return refused_payload(CustomFieldDefinitionPayload, refused)
        return await _definition(info, did)

    @strawberry.mutation(description="Set a customer's value for a field (typed).")
    async def custom_field_value_set(
        self, info: Info, input: CustomFieldValueInput
    ) -> CustomFieldValuePayload:
        viewer_of(info)
        try:
            cid = decode_id(input.customer_id, "Customer", "customerId")
            await q.set_value(info.context, cid, input.key, input.value)
        except Refused as refused:
            return refused_payload(CustomFieldValuePayload, refused)
        return await _customer(info, cid)

    @strawberry.mutation(
        description="Set several values at once, validated against their definitions (type, "
        "options, required); all or nothing."
    )
    async def customer_set_custom_fields(
        self, info: Info, input: CustomerSetCustomFieldsInput
    ) -> CustomFieldValuePayload:
        viewer_of(info)
        try:
            cid = decode_id(input.customer_id, "Customer", "customerId")
            await q.set_many(info.context, cid, [(v.key, v.value) for v in input.values])
        except Refused as refused:
            return refused_payload(CustomFieldValuePayload, refused)
        return await _customer(info, cid)

    @strawberry.mutation(description="Remove a customer's value for a field.")
    async def custom_field_value_clear(
        self, info: Info, input: CustomFieldClearInput
    ) -> CustomFieldValuePayload:
        viewer_of(info)
        try:
            cid = decode_id(input.customer_id, "Customer", "customerId")
            await q.clear_value(info.context, cid, input.key)
        except Refused as refused:
            return refused_payload(CustomFieldValuePayload, refused)
        return await _customer(info, cid)
