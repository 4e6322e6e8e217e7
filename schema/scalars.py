"""Scalar overrides: DateTime prints as PostgreSQL's JSON prints a timestamptz, Decimal
as PostgreSQL prints a numeric (what the compiled read path sends)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal

from strawberry.schema.types.base_scalars import DateTimeDefinition, DecimalDefinition

from resolvers.datetimes import iso_datetime

DateTime = dataclasses.replace(
    DateTimeDefinition,
    description="Date with time, ISO 8601 in UTC (`2026-11-23T10:00:00.12+00:00`).",
    serialize=iso_datetime,
)


def numeric_text(value: decimal.Decimal) -> str:
    """PostgreSQL's numeric text: positional with the value's scale, never an exponent
    (asyncpg hands 5E+20 and 1E-7 over in exponent form, which str() keeps), and no
    negative zero."""
    text = format(value, "f")
    return text[1:] if value.is_zero() and value.is_signed() else text


Decimal = dataclasses.replace(DecimalDefinition, serialize=numeric_text)

SCALAR_OVERRIDES = {datetime.datetime: DateTime, decimal.Decimal: Decimal}
