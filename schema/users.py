"""Users: staff and site users. A sales rep is a user with role SALES_REP."""

from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers import users as q
from resolvers.context import viewer_of
from schema.base import from_row, node_resolver, registered
from schema.enums import Role


@registered
@strawberry.type(description="A person who signs in: an admin, a sales rep or a site user.")
class User(relay.Node):
    id: relay.NodeID[int]
    email: str
    role: Role
    first_name: str | None
    last_name: str | None
    is_active: bool
    created_at: datetime

    @strawberry.field
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.email

    resolve_nodes = node_resolver(q.users_by_id)


@strawberry.type
class UserQueries:
    @strawberry.field(description="Active sales reps, by name.")
    async def sales_reps(self, info: Info) -> list[User]:
        viewer_of(info)
        return [from_row(User, r) for r in await q.sales_reps(info.context)]
