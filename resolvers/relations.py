"""Relations declared once: the dataloader batch function and the compiled SQL
(resolvers/compiled/fields.py) are both derived from each declaration, so the two read
paths cannot drift apart, and the cost limit (server/limits.py) reads a list's cap here.

- `ById`: the viewer's rows of a table by primary key (one loader per table, shared by
  every relation to it and by `node`).
- `ForeignObject`: the row a parent's foreign key points to (`Order.customer`).
- `ChildList`: a plain list of rows whose key column holds the parent's id, optionally
  through joined tables (`Customer.salesChannels`), capped in SQL.
- `LatestPer`: the newest child row per value of some columns (`Customer.balances`).
- `ChildConnection`: a customer's child rows as a keyset-paginated connection.
- `Embedded`: a value object made of the parent row's own columns (`Account.billingAddress`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    ColumnElement,
    Select,
    Table,
    bindparam,
    func,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import distinct_on

from resolvers.children import child_counts, child_pages
from resolvers.context import Context
from resolvers.loading import many_per_key, one_per_key
from resolvers.pagination import Ordering, Page, PageArgs
from resolvers.scope import ScopeKind

Visible = Callable[[Context], Select]


@dataclass(frozen=True, eq=False)
class ById:
    """The viewer's rows of `table` by id: `visible` is the loader's scoped select, and
    `scope` the same rule's name for the compiled path (None: every signed-in user may
    read every row, as sales channels)."""

    table: Table
    visible: Visible
    scope: ScopeKind | None

    async def batch(self, ctx: Context, keys: Sequence[int]) -> list:
        """One row (or None: missing or out of scope) per id, one statement."""
        return await one_per_key(ctx, self.visible(ctx), self.table.c.id, keys)


@dataclass(frozen=True, eq=False)
class ForeignObject:
    """The row of `target` whose id the parent's `fk` column holds; null when there is
    none or the viewer may not see it."""

    target: ById
    fk: str  # the parent row's column

    async def load(self, ctx: Context, key: int | None) -> Any:
        if key is None:
            return None
        return await ctx.loader(self.target.batch).load(key)


@dataclass(frozen=True, eq=False)
class ChildList:
    """The rows of `table` whose `key` column holds the parent's id, in `order` (the last
    column unique), at most `limit` per parent on both paths when given."""

    table: Table
    key: Column  # the parent's id: a column of `table` or of a joined table
    order: tuple[ColumnElement, ...]
    # The viewer's rows of the table (the loader's scoped select), and the same rule's
    # name for the compiled path (resolvers/compiled/scope.scope_template).
    visible: Visible
    scope: ScopeKind | None = ScopeKind.CHILD
    where: tuple[ColumnElement[bool], ...] = ()
    limit: int | None = None
    # Tables joined in (a link table, definitions), and columns read from them by name.
    joins: tuple[tuple[Table, ColumnElement[bool]], ...] = ()
    columns: Mapping[str, ColumnElement] = field(default_factory=dict)
    # Columns the children take from their parent row (an order line's currency is its
    # order's): the loader joins the parent's table, the compiled path reads the parent.
    inherit: Mapping[str, Column] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The compiled cap (a LIMIT under the aggregate) keeps only `table`'s columns.
        if self.limit is not None and (self.joins or self.columns):
            raise ValueError("a capped ChildList reads one table")

    def rows(self, ctx: Context) -> Select:
        """Every visible child row with its extra columns and its parent's id."""
        stmt = self.visible(ctx)
        extra: list[ColumnElement] = [e.label(name) for name, e in self.columns.items()]
        for table, on in self.joins:
            stmt = stmt.join(table, on)
        for name, column in self.inherit.items():
            stmt = stmt.join(column.table, column.table.c.id == self.key)
            extra.append(column.label(name))
        if self.key.table is not self.table:
            extra.append(self.key)
        return stmt.add_columns(*extra).where(*self.where)

    async def batch(self, ctx: Context, keys: Sequence[int]) -> list[list[Any]]:
        """The children of each parent id in `keys`, in order: one statement."""
        stmt = self.rows(ctx)
        if self.limit is None:
            return await many_per_key(ctx, stmt.order_by(*self.order), self.key, keys)
        # LATERAL over the parent ids: each parent's first `limit` rows (the limit applies
        # per parent, and each parent's index range is walked separately).
        ids = select(
            func.unnest(bindparam("parent_ids", list(keys), type_=ARRAY(BigInteger))).label(
                "parent_id"
            )
        ).subquery("keys")
        child = stmt.where(self.key == ids.c.parent_id).order_by(*self.order).limit(self.limit)
        lateral = child.lateral("child")
        rows = await ctx.rows(select(lateral).select_from(ids.join(lateral, true())))
        grouped: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            grouped[getattr(row, self.key.name)].append(row)
        return [grouped.get(k, []) for k in keys]


@dataclass(frozen=True, eq=False)
class LatestPer:
    """Per parent, the newest row of `table` for each value of `per` (DISTINCT ON, which
    walks the index): its `per` and `columns`, ordered by `per`."""

    table: Table
    key: Column  # the parent's id
    per: tuple[Column, ...]
    newest: tuple[ColumnElement, ...]  # within a group, the first row in this order wins
    columns: Mapping[str, ColumnElement]  # named as the GraphQL type's fields
    visible: Visible
    scope: ScopeKind = ScopeKind.CHILD
    bound: int | None = None  # at most this many groups (a bound the data enforces)

    async def batch(self, ctx: Context, keys: Sequence[int]) -> list[list[Any]]:
        stmt = (
            self.visible(ctx)
            .with_only_columns(
                self.key, *self.per, *(e.label(name) for name, e in self.columns.items())
            )
            .ext(distinct_on(self.key, *self.per))
            .order_by(self.key, *self.per, *self.newest)
        )
        return await many_per_key(ctx, stmt, self.key, keys)


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


@dataclass(frozen=True, eq=False)
class Embedded:
    """A value object made of its parent row's columns (no statement of its own), null when
    the `present` column is NULL: the loader path builds it from the parent object, the
    compiled path prints it from the parent row."""

    fields: Mapping[str, str]  # the value object's field -> the parent's column
    present: str | None = None

    def values(self, parent: Any) -> dict[str, Any] | None:
        """The value object's fields from the parent object: its attributes are its columns
        (but those its type's `__columns__` renames, schema.base.columns_of)."""
        attrs = {c: a for a, c in getattr(type(parent), "__columns__", {}).items()}

        def value(column: str) -> Any:
            return getattr(parent, attrs.get(column, column))

        if self.present is not None and value(self.present) is None:
            return None
        return {name: value(column) for name, column in self.fields.items()}


def cap_of(relation: object) -> int | None:
    """The most items a plain list relation returns (its SQL cap, or the data's bound)."""
    if isinstance(relation, ChildList):
        return relation.limit
    if isinstance(relation, LatestPer):
        return relation.bound
    return None
