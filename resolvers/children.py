"""Per-customer child lists shared by orders, ledger, timeline, addresses, tax certificates.

Each child table carries customer_id, so one scoped select serves every loader.
"""

from collections.abc import Sequence

from sqlalchemy import Select, Table, select

from resolvers.context import Context
from resolvers.loading import count_children, one_per_key
from resolvers.pagination import Ordering, PageArgs, paginate, paginate_per_parent
from resolvers.scope import scope_children


def visible(ctx: Context, table: Table) -> Select:
    return scope_children(select(table), ctx.viewer, table.c.customer_id)


async def child_by_id(ctx: Context, table: Table, keys: Sequence[int]) -> list:
    return await one_per_key(ctx, visible(ctx, table), table.c.id, keys)


async def child_pages(
    ctx: Context, table: Table, ordering: Ordering, args: PageArgs, keys: Sequence[int]
) -> list:
    """A keyset page of children for each customer id in `keys`: one statement."""
    stmt, split = paginate_per_parent(
        visible(ctx, table), table.c.customer_id, keys, ordering, args
    )
    return split(await ctx.rows(stmt))


async def child_counts(ctx: Context, table: Table, keys: Sequence[int]) -> list:
    return await count_children(ctx, visible(ctx, table), table.c.customer_id, keys)


async def root_page(ctx: Context, table: Table, ordering: Ordering, args: PageArgs):
    base = visible(ctx, table)
    stmt, to_page = paginate(base, ordering, args)
    return to_page(await ctx.rows(stmt)), base
