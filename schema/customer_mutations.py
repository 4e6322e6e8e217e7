"""Customer and address mutations: inputs, payloads, and the mutation fields."""

from typing import Any

import strawberry
from strawberry.types import Info

from resolvers import customer_mutations as q
from resolvers import customers as customer_q
from resolvers.addresses import address
from resolvers.children import child_by_id
from resolvers.context import viewer_of
from resolvers.customer_mutations import ADDRESS_FIELDS
from resolvers.global_ids import decode_id
from resolvers.mutations import Refused
from resolvers.timeline import timeline_event
from schema.addresses import Address
from schema.base import build
from schema.custom_field_mutations import CustomFieldEntry
from schema.customers import Customer
from schema.enums import AddressKind, CustomerKind, TaxStatusKind
from schema.errors import UserError, refused_payload
from schema.timeline import TimelineEvent

UNSET: Any = strawberry.UNSET


@strawberry.input(
    description="Everything is optional but something that identifies the "
    "customer: a first or last name, a company, or an email."
)
class CustomerCreateInput:
    kind: CustomerKind = CustomerKind.INDIVIDUAL
    first_name: str | None = None
    last_name: str | None = None
    company_name: str | None = None
    email: str | None = None
    phone: str | None = strawberry.field(default=None, description="Any format; stored E.164.")
    phone_region: str | None = strawberry.field(
        default=None, description="Where a national phone number is from (default US)."
    )
    reference_id: str | None = None
    note: str | None = None
    sales_rep_id: strawberry.ID | None = None
    account_id: strawberry.ID | None = None
    sales_channel_ids: list[strawberry.ID] | None = None
    tax_status: TaxStatusKind | None = None
    tax_code: str | None = None
    custom_fields: list[CustomFieldEntry] | None = strawberry.field(
        default=None,
        description="Optional. When given, validated like customerSetCustomFields: types, "
        "options, and every required field must be among them.",
    )


@strawberry.input(description="Only the fields you send change; send null to clear one.")
class CustomerUpdateInput:
    id: strawberry.ID
    expected_version: int | None = strawberry.field(
        default=None, description="The version you read; a newer one answers CONFLICT."
    )
    kind: CustomerKind | None = UNSET
    first_name: str | None = UNSET
    last_name: str | None = UNSET
    company_name: str | None = UNSET
    email: str | None = UNSET
    phone: str | None = UNSET
    phone_region: str | None = strawberry.field(
        default=None,
        description="Where a national phone number is from (default: the country of the "
        "customer's default address, else US).",
    )
    reference_id: str | None = UNSET
    note: str | None = UNSET
    sales_rep_id: strawberry.ID | None = UNSET
    account_id: strawberry.ID | None = UNSET
    sales_channel_ids: list[strawberry.ID] | None = UNSET
    tax_status: TaxStatusKind | None = UNSET
    tax_code: str | None = UNSET


SIMPLE = (
    "kind",
    "first_name",
    "last_name",
    "company_name",
    "email",
    "phone",
    "reference_id",
    "note",
    "tax_status",
    "tax_code",
)


def _changes(input: Any) -> q.CustomerChanges:
    values = {k: getattr(input, k) for k in SIMPLE if getattr(input, k) is not UNSET}
    values = {k: v for k, v in values.items() if not (k in ("kind", "tax_status") and v is None)}
    for name, type_name in (("sales_rep_id", "User"), ("account_id", "Account")):
        raw = getattr(input, name)
        if raw is not UNSET:
            values[name] = decode_id(raw, type_name, name) if raw is not None else None
    channels = input.sales_channel_ids
    ids = (
        None
        if channels in (UNSET, None)
        else [decode_id(c, "SalesChannel", "salesChannelIds") for c in channels]
    )
    if channels is None and isinstance(input, CustomerUpdateInput):
        ids = []
    fields = getattr(input, "custom_fields", None)
    pairs = None if fields is None else [(f.key, f.value) for f in fields]
    return q.CustomerChanges(values, ids, input.phone_region, pairs)


@strawberry.type
class CustomerPayload:
    customer: Customer | None
    user_errors: list[UserError]


@strawberry.input
class CustomerIdInput:
    id: strawberry.ID


@strawberry.input
class CustomerAddNoteInput:
    customer_id: strawberry.ID
    note: str


@strawberry.type
class NotePayload:
    event: TimelineEvent | None
    user_errors: list[UserError]


@strawberry.input
class AddressInput:
    customer_id: strawberry.ID
    kind: AddressKind = AddressKind.SHIPPING
    is_default: bool = False
    name: str | None = None
    company: str | None = None
    line1: str
    line2: str | None = None
    city: str | None = None
    region: str | None = strawberry.field(default=None, description="ISO 3166-2, e.g. CA.")
    postal_code: str | None = None
    country: str = strawberry.field(description="ISO 3166-1 alpha-2, e.g. US.")
    phone: str | None = None


@strawberry.input
class AddressUpdateInput:
    id: strawberry.ID
    kind: AddressKind | None = UNSET
    is_default: bool | None = None
    name: str | None = UNSET
    company: str | None = UNSET
    line1: str | None = UNSET
    line2: str | None = UNSET
    city: str | None = UNSET
    region: str | None = UNSET
    postal_code: str | None = UNSET
    country: str | None = UNSET
    phone: str | None = UNSET


@strawberry.input
class AddressIdInput:
    id: strawberry.ID


@strawberry.type
class AddressPayload:
    address: Address | None
    customer: Customer | None
    user_errors: list[UserError]


async def _customer(info: Info, cid: int) -> Customer | None:
    return build(
        "Customer", await info.context.fresh().loader(customer_q.customers_by_id).load(cid)
    )


async def _address(info: Info, aid: int | None, cid: int) -> AddressPayload:
    ctx = info.context.fresh()
    row = await ctx.loader(child_by_id, address).load(aid) if aid is not None else None
    return AddressPayload(
        address=build("Address", row), customer=await _customer(info, cid), user_errors=[]
    )


@strawberry.type
class CustomerMutations:
    @strawberry.mutation(description="A new customer; no order needed.")
    async def customer_create(self, info: Info, input: CustomerCreateInput) -> CustomerPayload:
        viewer_of(info)
        try:
            row = await q.create(info.context, _changes(input))
        except Refused as refused:
            return refused_payload(CustomerPayload, refused)
        return CustomerPayload(customer=build("Customer", row), user_errors=[])

    @strawberry.mutation(description="Change a customer; pass expectedVersion to detect races.")
    async def customer_update(self, info: Info, input: CustomerUpdateInput) -> CustomerPayload:
        viewer_of(info)
        try:
            cid = decode_id(input.id, "Customer", "id")
            await q.update_customer(info.context, cid, input.expected_version, _changes(input))
        except Refused as refused:
            return refused_payload(CustomerPayload, refused)
        return CustomerPayload(customer=await _customer(info, cid), user_errors=[])

    @strawberry.mutation(description="Hide from default lists and searches; history is kept.")
    async def customer_archive(self, info: Info, input: CustomerIdInput) -> CustomerPayload:
        return await _status(info, input, archived=True)

    @strawberry.mutation(description="Bring an archived customer back.")
    async def customer_restore(self, info: Info, input: CustomerIdInput) -> CustomerPayload:
        return await _status(info, input, archived=False)

    @strawberry.mutation(description="Add a note to the customer's timeline.")
    async def customer_add_note(self, info: Info, input: CustomerAddNoteInput) -> NotePayload:
        viewer_of(info)
        try:
            cid = decode_id(input.customer_id, "Customer", "customerId")
            event_id = await q.add_note(info.context, cid, input.note)
        except Refused as refused:
            return refused_payload(NotePayload, refused)
        row = await info.context.fresh().loader(child_by_id, timeline_event).load(event_id)
        return NotePayload(event=build("TimelineEvent", row), user_errors=[])

    @strawberry.mutation(description="Add an address; isDefault replaces the kind's default.")
    async def address_create(self, info: Info, input: AddressInput) -> AddressPayload:
        viewer_of(info)
        try:
            cid = decode_id(input.customer_id, "Customer", "customerId")
            values = {k: getattr(input, k) for k in ADDRESS_FIELDS}
            aid = await q.add_address(info.context, cid, values, input.is_default)
        except Refused as refused:
            return refused_payload(AddressPayload, refused)
        return await _address(info, aid, cid)

    @strawberry.mutation(description="Change an address (only the fields you send).")
    async def address_update(self, info: Info, input: AddressUpdateInput) -> AddressPayload:
        return await _update_address(info, input)

    @strawberry.mutation(description="Make this address the default of its kind.")
    async def address_set_default(self, info: Info, input: AddressIdInput) -> AddressPayload:
        return await _update_address(info, AddressUpdateInput(id=input.id, is_default=True))

    @strawberry.mutation(description="Delete an address.")
    async def address_delete(self, info: Info, input: AddressIdInput) -> AddressPayload:
        viewer_of(info)
        try:
            aid = decode_id(input.id, "Address", "id")
            cid = await q.remove_address(info.context, aid)
        except Refused as refused:
            return refused_payload(AddressPayload, refused)
        return await _address(info, None, cid)


async def _status(info: Info, input: CustomerIdInput, archived: bool) -> CustomerPayload:
    viewer_of(info)
    try:
        cid = decode_id(input.id, "Customer", "id")
        await q.set_status(info.context, cid, archived)
    except Refused as refused:
        return refused_payload(CustomerPayload, refused)
    return CustomerPayload(customer=await _customer(info, cid), user_errors=[])


async def _update_address(info: Info, input: AddressUpdateInput) -> AddressPayload:
    viewer_of(info)
    try:
        aid = decode_id(input.id, "Address", "id")
        values = {k: getattr(input, k) for k in ADDRESS_FIELDS if getattr(input, k) is not UNSET}
        await q.change_address(info.context, aid, values, input.is_default)
    except Refused as refused:
        return refused_payload(AddressPayload, refused)
    row = await info.context.fresh().loader(child_by_id, address).load(aid)
    return await _address(info, aid, row.customer_id)
