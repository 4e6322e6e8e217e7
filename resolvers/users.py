"""Users: staff (admins, sales reps) and site users."""

from collections.abc import Sequence

from sqlalchemy import select

from models import AppUser
from models.enums import Role
from resolvers.context import Context
from resolvers.loading import one_per_key
from resolvers.scope import scope_users

user = AppUser.__table__
PUBLIC = [c for c in user.c if c.name != "password_hash"]


def visible_users(ctx: Context):
    return scope_users(select(*PUBLIC), ctx.viewer)


async def users_by_id(ctx: Context, keys: Sequence[int]) -> list:
    return await one_per_key(ctx, visible_users(ctx), user.c.id, keys)


async def sales_reps(ctx: Context) -> list:
    stmt = visible_users(ctx).where(user.c.role == Role.SALES_REP, user.c.is_active)
    return list(await ctx.rows(stmt.order_by(user.c.last_name, user.c.first_name, user.c.id)))
