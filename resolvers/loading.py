"""Small helpers that turn one batched SELECT into per-key results, in key order."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Select, func, select

from resolvers.context import Context


async def one_per_key(ctx: Context, stmt: Select, column: Column, keys: Sequence[Any]) -> list:
    """`stmt` filtered by `column IN keys`; one row (or None) per key."""
    rows = await ctx.rows(stmt.where(column.in_(list(keys))))
    by_key = {getattr(row, column.name): row for row in rows}
    return [by_key.get(k) for k in keys]


async def many_per_key(ctx: Context, stmt: Select, column: Column, keys: Sequence[Any]) -> list:
    """`stmt` filtered by `column IN keys`; a list of rows per key (stmt's order kept)."""
    rows = await ctx.rows(stmt.where(column.in_(list(keys))))
    grouped: dict[Any, list] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, column.name)].append(row)
    return [grouped.get(k, []) for k in keys]


async def count_children(ctx: Context, stmt: Select, column: Column, keys: Sequence[Any]) -> list:
    """Per-parent COUNT(*) for a nested connection's totalCount: one GROUP BY for all parents."""
    sub = stmt.where(column.in_(list(keys))).subquery()
    parent = sub.c[column.name]
    rows = await ctx.rows(select(parent, func.count()).group_by(parent))
    counts = {row[0]: row[1] for row in rows}
    return [counts.get(k, 0) for k in keys]


async def count(ctx: Context, stmt: Select) -> int:
    """COUNT(*) of a list's unpaged select (a root connection's totalCount)."""
    rows = await ctx.rows(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return rows[0][0]
