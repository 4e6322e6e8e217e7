"""Users: staff and site users. A sales rep is a user with role SALES_REP."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import users as q
from resolvers.context import viewer_of
from resolvers.mutations import Refused
from resolvers.tokens import viewer_for_token
from schema.base import build, from_row, node_resolver, registered
from schema.errors import UserError, refused_payload

if TYPE_CHECKING:
    from schema.customers import Customer
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

    # A computed column (resolvers.users.DISPLAY_NAME): one SQL expression for both paths.
    display_name: str = strawberry.field(description="First and last name, else the email.")

    resolve_nodes = node_resolver(q.users_by_id)


@strawberry.type
class UserQueries:
    @strawberry.field(description="Active sales reps, by name.")
    async def sales_reps(self, info: Info) -> list[User]:
        viewer_of(info)
        return [from_row(User, r) for r in await q.sales_reps(info.context)]


@strawberry.input
class RegisterUserInput:
    email: str
    password: str = strawberry.field(description="At least 10 characters; stored as argon2.")
    first_name: str
    last_name: str


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.type
class AuthPayload:
    user: User | None
    customer: Annotated["Customer", strawberry.lazy("schema.customers")] | None = None
    token: str | None = strawberry.field(
        default=None, description="Send as 'Authorization: Bearer <token>'. Shown once."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UserMutations:
    @strawberry.mutation(
        description="Sign up on the site: a CUSTOMER user and their customer record."
    )
    async def register_user(self, info: Info, input: RegisterUserInput) -> AuthPayload:
        ctx = info.context
        try:
            user_id, _customer_id, token = await q.register(
                ctx,
                email=input.email,
                password=input.password,
                first=input.first_name,
                last=input.last_name,
            )
        except Refused as refused:
            return refused_payload(AuthPayload, refused)
        return await _signed_in(ctx, user_id, token)

    @strawberry.mutation(description="Exchange email and password for a bearer token.")
    async def login(self, info: Info, input: LoginInput) -> AuthPayload:
        ctx = info.context
        try:
            user_id, token = await q.login(ctx, email=input.email, password=input.password)
        except Refused as refused:
            return refused_payload(AuthPayload, refused)
        return await _signed_in(ctx, user_id, token)


async def _signed_in(ctx, user_id: int, token: str) -> AuthPayload:
    # Read back as the new user: the same scoping as any later request.
    as_user = ctx.fresh()
    viewer = await viewer_for_token(ctx.engine, token)
    as_user.viewer = viewer
    user = build("User", await as_user.loader(q.users_by_id).load(user_id))
    row = await customer_q.customer_of_user(as_user, user_id)
    return AuthPayload(user=user, customer=build("Customer", row), token=token)
