"""Custom field definitions (global) and each customer's typed values."""

from collections.abc import Sequence

from sqlalchemy import select

from models import CustomFieldDefinition, CustomFieldValue
from resolvers.children import visible
from resolvers.context import Context
from resolvers.loading import many_per_key, one_per_key

definition = CustomFieldDefinition.__table__
value = CustomFieldValue.__table__


async def definitions(ctx: Context, include_archived: bool) -> list:
    stmt = select(definition).order_by(definition.c.position, definition.c.key)
    if not include_archived:
        stmt = stmt.where(~definition.c.archived)
    return list(await ctx.rows(stmt))


async def definitions_by_id(ctx: Context, keys: Sequence[int]) -> list:
    return await one_per_key(ctx, select(definition), definition.c.id, keys)


async def values_by_customer(ctx: Context, keys: Sequence[int]) -> list:
    """Values joined to their definitions (archived ones stay readable, listed last)."""
    stmt = (
        visible(ctx, value)
        .add_columns(
            definition.c.key,
            definition.c.label,
            definition.c.type,
            definition.c.position,
            definition.c.archived,
        )
        .join(definition, definition.c.id == value.c.definition_id)
        .order_by(definition.c.archived, definition.c.position, definition.c.key)
    )
    return await many_per_key(ctx, stmt, value.c.customer_id, keys)
