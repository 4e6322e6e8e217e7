"""Saved searches (segments): the type, the queries, and create/update/delete."""

from datetime import datetime
from typing import Any

import strawberry
from strawberry import Private
from strawberry.scalars import JSON
from strawberry.types import Info

from models.enums import Role
from resolvers import saved_searches as q
from resolvers import search as search_q
from resolvers import users as user_q
from resolvers.context import viewer_of
from resolvers.errors import BadUserInput, UserErrorCode
from resolvers.global_ids import decode_id
from resolvers.mutations import Refused
from schema.base import build, encode_id
from schema.errors import UserError, refused_payload
from schema.inputs import to_json
from schema.search import CustomerFilter, criteria_of
from schema.users import User

UNSET: Any = strawberry.UNSET


@strawberry.type(
    description="A named customer filter: yours, or shared with all staff. Run it with "
    "customers(savedSearch:) or customerSearch(savedSearch:); it shows your own customers."
)
class SavedSearch:
    pk: Private[int]
    owner_id: Private[int]
    name: str
    filter: JSON = strawberry.field(description="The CustomerFilter, as it was saved.")
    shared: bool
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    def id(self) -> strawberry.ID:
        return encode_id("SavedSearch", self.pk)

    @strawberry.field
    async def owner(self, info: Info) -> User | None:
        return build("User", await info.context.loader(user_q.users_by_id).load(self.owner_id))

    @strawberry.field(description="Whether you may change or delete it (owner, or an admin).")
    def editable(self, info: Info) -> bool:
        viewer = info.context.viewer
        return viewer.user_id == self.owner_id or viewer.role is Role.ADMIN

    @strawberry.field(
        description="How many of your customers match now; null when it no longer applies."
    )
    async def customer_count(self, info: Info) -> int | None:
        return await info.context.loader(q.counts_by_id, criteria_of).load(self.pk)

    @strawberry.field(
        description="Why it no longer applies (e.g. a sales channel it names was deleted)."
    )
    async def problem(self, info: Info) -> str | None:
        run = await info.context.loader(q.runs_by_id, criteria_of).load(self.pk)
        return run.problem if run is not None else None


def saved_search_of(row: Any) -> SavedSearch:
    return SavedSearch(
        pk=row.id,
        owner_id=row.owner_id,
        name=row.name,
        filter=row.filter,
        shared=row.shared,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@strawberry.type
class SavedSearchQueries:
    @strawberry.field(description="Your saved searches and the shared ones, by name.")
    async def saved_searches(self, info: Info) -> list[SavedSearch]:
        viewer_of(info)
        return [saved_search_of(r) for r in await q.saved_searches(info.context)]

    @strawberry.field
    async def saved_search(self, info: Info, id: strawberry.ID) -> SavedSearch | None:
        viewer_of(info)
        row = await info.context.loader(q.saved_searches_by_id).load(
            decode_id(id, "SavedSearch", "id")
        )
        return saved_search_of(row) if row is not None else None


@strawberry.input
class SavedSearchCreateInput:
    name: str
    filter: CustomerFilter
    shared: bool = strawberry.field(default=False, description="Visible to all staff.")


@strawberry.input(description="Only the fields you send change.")
class SavedSearchUpdateInput:
    id: strawberry.ID
    name: str | None = UNSET
    filter: CustomerFilter | None = UNSET
    shared: bool | None = UNSET


@strawberry.input
class SavedSearchDeleteInput:
    id: strawberry.ID


@strawberry.type
class SavedSearchPayload:
    saved_search: SavedSearch | None
    user_errors: list[UserError]


@strawberry.type
class SavedSearchDeletePayload:
    deleted_id: strawberry.ID | None
    user_errors: list[UserError]


def _criteria(given: CustomerFilter) -> search_q.Criteria:
    try:
        return given.criteria()
    except BadUserInput as exc:
        raise Refused.one(["input", "filter"], UserErrorCode.INVALID, exc.message) from exc


async def _payload(info: Info, saved_id: int) -> SavedSearchPayload:
    row = await info.context.fresh().loader(q.saved_searches_by_id).load(saved_id)
    return SavedSearchPayload(saved_search=saved_search_of(row), user_errors=[])


def _set(value: Any) -> Any:
    return None if value is UNSET else value


@strawberry.type
class SavedSearchMutations:
    @strawberry.mutation(description="Save a customer filter under a name (staff).")
    async def saved_search_create(
        self, info: Info, input: SavedSearchCreateInput
    ) -> SavedSearchPayload:
        viewer_of(info)
        try:
            criteria = _criteria(input.filter)
            saved_id = await q.create(
                info.context, input.name, to_json(input.filter), criteria, input.shared
            )
        except Refused as refused:
            return refused_payload(SavedSearchPayload, refused)
        return await _payload(info, saved_id)

    @strawberry.mutation(description="Rename, re-filter or (un)share a search you own.")
    async def saved_search_update(
        self, info: Info, input: SavedSearchUpdateInput
    ) -> SavedSearchPayload:
        viewer_of(info)
        try:
            saved_id = decode_id(input.id, "SavedSearch", "id")
            given = _set(input.filter)
            if None in (input.name, input.filter, input.shared):
                raise Refused.one(
                    ["input"], UserErrorCode.INVALID, "name, filter and shared cannot be null."
                )
            await q.change(
                info.context,
                saved_id,
                name=_set(input.name),
                filter_json=to_json(given) if given is not None else None,
                criteria=_criteria(given) if given is not None else None,
                shared=_set(input.shared),
            )
        except Refused as refused:
            return refused_payload(SavedSearchPayload, refused)
        return await _payload(info, saved_id)

    @strawberry.mutation(description="Delete a search you own (an admin: any shared one).")
    async def saved_search_delete(
        self, info: Info, input: SavedSearchDeleteInput
    ) -> SavedSearchDeletePayload:
        viewer_of(info)
        try:
            saved_id = decode_id(input.id, "SavedSearch", "id")
            await q.remove(info.context, saved_id)
        except Refused as refused:
            return refused_payload(SavedSearchDeletePayload, refused)
        return SavedSearchDeletePayload(deleted_id=input.id, user_errors=[])
