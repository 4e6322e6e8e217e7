"""Column types of our own: JSONB read back exactly as PostgreSQL prints it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Text, cast, func, literal_column
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# jsonb's text output without its blanks: a space outside a string is one of the ", " and
# ": " separators PostgreSQL prints; a string (escapes included) is kept as it is.
_STRING_OR_BLANK = literal_column("""'("(?:[^"\\\\]|\\\\.)*")| '""")
_KEEP_STRING = literal_column("""'\\1'""")
_EVERYWHERE = literal_column("'g'")


def jsonb_text(expr, type_: Any = Text) -> Any:
    """The SQL text of a jsonb value as both read paths print it: PostgreSQL's own jsonb
    text, compact. Keys come in jsonb's order (shorter keys first, then bytewise, not the
    order they were written in) and numbers as PostgreSQL stores them (`1.10`, `0.0000001`,
    integers of any size), which a round trip through Python floats would change."""
    return func.regexp_replace(
        cast(expr, Text), _STRING_OR_BLANK, _KEEP_STRING, _EVERYWHERE, type_=type_
    )


class JsonbDict(dict):
    """A jsonb object as Python reads it, keeping the compact text it was read from
    (`jsonb`), which the GraphQL JSON scalar sends as it is."""

    __slots__ = ("jsonb",)


class JsonbList(list):
    __slots__ = ("jsonb",)


class JsonbDocument(TypeDecorator):
    """JSONB whose reads select `jsonb_text(column)`: Python gets the usual dict or list,
    which also remembers that text, so the field-by-field path answers the very bytes the
    compiled path prints. Writes are plain JSONB."""

    impl = JSONB
    cache_ok = True

    def column_expression(self, column):
        return jsonb_text(column, self)  # typed as this type: process_result_value reads it

    def process_result_value(self, value: Any, dialect) -> Any:
        if not isinstance(value, str):  # decoded by the driver (not selected as text)
            return value
        parsed = json.loads(value)
        wrapper = {dict: JsonbDict, list: JsonbList}.get(type(parsed))
        if wrapper is None:
            return parsed
        out = wrapper(parsed)
        out.jsonb = value
        return out
