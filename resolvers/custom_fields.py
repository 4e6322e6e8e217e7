"""Custom field definitions (global) and each customer's typed values."""

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from sqlalchemy import Text, case, cast, func, select

from models import CustomFieldDefinition, CustomFieldValue
from resolvers.children import visible
from resolvers.context import Context
from resolvers.loading import one_per_key
from resolvers.relations import ChildList

definition = CustomFieldDefinition.__table__
value = CustomFieldValue.__table__

MAX_EXPONENT = 30  # a NUMBER's adjusted exponent: 1E-30 .. 9.99E+30 in magnitude (or 0)
MAX_DECIMALS = 60  # digits after the point: full precision even at 1E-30


def number(raw: str) -> Decimal:
    """A NUMBER value, or a filter's bound on one, from text; ValueError unless finite and
    within MAX_EXPONENT and MAX_DECIMALS. One rule for values and bounds: `1e999999`
    would overflow numeric mid-query, and a bound no stored value can reach is a typo."""
    try:
        parsed = Decimal(raw)
    except InvalidOperation as exc:
        raise ValueError(raw) from exc
    if (
        not parsed.is_finite()
        or abs(parsed.adjusted()) > MAX_EXPONENT
        or parsed.as_tuple().exponent < -MAX_DECIMALS
    ):
        raise ValueError(raw)
    return parsed


async def definitions(ctx: Context, include_archived: bool) -> list:
    stmt = select(definition).order_by(definition.c.position, definition.c.key)
    if not include_archived:
        stmt = stmt.where(~definition.c.archived)
    return list(await ctx.rows(stmt))


async def definitions_by_id(ctx: Context, keys: Sequence[int]) -> list:
    return await one_per_key(ctx, select(definition), definition.c.id, keys)


# CustomFieldValue.value, the one declaration: the value as text whatever its type (numbers
# as PostgreSQL's numeric text, dates ISO 8601), selected by the loader, inlined by the
# compiled read path.
VALUE_TEXT = func.coalesce(
    value.c.text_value,
    cast(value.c.number_value, Text),
    func.to_char(value.c.date_value, "YYYY-MM-DD"),
    case((value.c.boolean_value, "true"), else_="false"),
)
COMPUTED = {"value": VALUE_TEXT}

# Live fields first, in display order: the one ordering of Customer.customFields.
VALUE_ORDER = (definition.c.archived, definition.c.position, definition.c.key)


# Customer.customFields, declared once (resolvers/relations.py): values joined to their
# definitions (archived ones stay readable, listed last).
VALUES = ChildList(
    value,
    value.c.customer_id,
    VALUE_ORDER,
    lambda ctx: visible(ctx, value),
    joins=((definition, definition.c.id == value.c.definition_id),),
    columns={
        **{name: definition.c[name] for name in ("key", "label", "type", "archived")},
        **COMPUTED,
    },
)
