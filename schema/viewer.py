"""`me`: who the request is signed in as."""

import strawberry
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import users as user_q
from resolvers.context import viewer_of
from schema.base import build
from schema.customers import Customer
from schema.users import User


@strawberry.type
class Me:
    user: User
    customer: Customer | None = strawberry.field(
        description="For a site user: their own customer record."
    )


@strawberry.type
class ViewerQueries:
    @strawberry.field(description="The signed-in user and, for a site user, their customer.")
    async def me(self, info: Info) -> Me:
        viewer = viewer_of(info)
        ctx = info.context
        user = build("User", await ctx.loader(user_q.users_by_id).load(viewer.user_id))
        row = await customer_q.customer_of_user(ctx, viewer.user_id)
        return Me(user=user, customer=build("Customer", row))
