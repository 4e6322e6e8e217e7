"""Scalar overrides: DateTime prints as PostgreSQL's JSON prints a timestamptz."""

from __future__ import annotations

import dataclasses
import datetime

from strawberry.schema.types.base_scalars import DateTimeDefinition

from resolvers.datetimes import iso_datetime

DateTime = dataclasses.replace(
    DateTimeDefinition,
    description="Date with time, ISO 8601 in UTC (`2026-11-23T10:00:00.12+00:00`).",
    serialize=iso_datetime,
)

SCALAR_OVERRIDES = {datetime.datetime: DateTime}
