"""Scalar overrides: DateTime prints as PostgreSQL's JSON prints a timestamptz, Decimal
as PostgreSQL prints a numeric, JSON read from a jsonb column as PostgreSQL prints it
(what the compiled read path sends)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal

import orjson
from strawberry.scalars import JSON as JSONType
from strawberry.schema.types.base_scalars import DateTimeDefinition, DecimalDefinition
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY

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


def json_value(value: object) -> object:
    """A jsonb column's value (models.types.JsonbDocument) is sent as the compact text
    PostgreSQL printed, numbers and key order included; anything else as it is."""
    text = getattr(value, "jsonb", None)
    return value if text is None else orjson.Fragment(text)


JSON = dataclasses.replace(
    DEFAULT_SCALAR_REGISTRY[JSONType],
    description="A JSON value. Read from the database it prints as PostgreSQL's jsonb "
    "prints it, without blanks: keys in jsonb's order (shorter keys first, then bytewise; "
    "not the order they were written in), numbers as stored (`1.10`, `0.0000001`).",
    serialize=json_value,
)

SCALAR_OVERRIDES = {datetime.datetime: DateTime, decimal.Decimal: Decimal, JSONType: JSON}
