"""Relations declared once: a plain list of child rows under a parent object.

A `ChildList` names the child table, the column holding the parent's id, the ordering,
the scope, extra conditions and an optional cap. The dataloader batch function (`batch`)
and the compiled SQL (resolvers/compiled/fields.child_list) are both derived from it, so the
two read paths cannot drift apart, and the cost limit counts a capped list at its cap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Table

from resolvers.children import child_counts, child_pages
from resolvers.context import Context
from resolvers.loading import many_per_key
from resolvers.pagination import Ordering, Page, PageArgs, paginate_per_parent
from resolvers.scope import ScopeKind


@dataclass(frozen=True, eq=False)
class ChildList:
    table: Table
    fk: str  # the child's column holding the parent's id
    order: tuple[ColumnElement, ...]  # ORDER BY, the last column unique
    # The viewer's rows of the table (the loader's scoped select), and the same scope's
    # name for the compiled path (resolvers/compiled/builder._scope_template).
    visible: Callable[[Context], Select]
    scope: ScopeKind = ScopeKind.CHILD
    where: tuple[ColumnElement[bool], ...] = ()
    limit: int | None = None  # the first `limit` rows only, on both paths

    async def batch(self, ctx: Context, keys: Sequence[int]) -> list[list[Any]]:
        """The children of each parent id in `keys`, in order: one statement."""
        stmt = self.visible(ctx).where(*self.where)
        column = self.table.c[self.fk]
        if self.limit is None:
            return await many_per_key(ctx, stmt.order_by(*self.order), column, keys)
        # A capped list orders by plain ascending columns: a keyset page per parent.
        ordering = Ordering(self.order)  # type: ignore[arg-type]
        paged, split = paginate_per_parent(stmt, column, keys, ordering, PageArgs(first=self.limit))
        return [page.rows for page in split(await ctx.rows(paged))]


@dataclass(frozen=True, eq=False)
class ChildConnection:
    """A customer's child rows as a keyset-paginated connection, declared once: the
    loader's batched pages and counts, and the compiled connection, come from it."""

    table: Table  # a child table (its customer_id is the parent's id; child scope)
    ordering: Ordering

    async def pages(self, ctx: Context, args: PageArgs, keys: Sequence[int]) -> list[Page]:
        return await child_pages(ctx, self.table, self.ordering, args, keys)

    async def counts(self, ctx: Context, keys: Sequence[int]) -> list[int]:
        return await child_counts(ctx, self.table, keys)
