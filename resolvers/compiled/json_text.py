"""JSON text in SQL: each encoder turns a SQL expression into the SQL expression of its JSON
text, printed exactly as the field-by-field path's orjson prints it (compact, decimals as
strings, PostgreSQL's JSON timestamps)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import literal_column
from sqlalchemy.dialects import postgresql

from models.types import jsonb_text

# ---------------------------------------------------------------------------------------
# JSON text encoders: SQL expression -> SQL expression of its JSON text (never NULL)
#
# A value is SQL text; a `Json` value also keeps its pieces (literal JSON text and SQL
# expressions), so an object inlines its fields' pieces, nested objects included, into
# one `format()` call: a page of 14,000 fields then costs a quarter less than chains of
# `||`, each of which copies the string built so far.

Piece = tuple[bool, str]  # (True, literal JSON text) or (False, SQL expression of JSON text)
_FORMAT_ARGS = 90  # format() takes at most 99 arguments after its format string


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Json(str):
    """The SQL text of a JSON value, built from pieces a parent can inline."""

    pieces: tuple[Piece, ...]

    def __new__(cls, pieces: list[Piece]) -> Json:
        merged: list[Piece] = []
        for piece in pieces:
            if piece[0] and merged and merged[-1][0]:
                merged[-1] = (True, merged[-1][1] + piece[1])
            else:
                merged.append(piece)
        self = super().__new__(cls, _render(merged))
        self.pieces = tuple(merged)
        return self


def _render(pieces: list[Piece]) -> str:
    if len(pieces) == 1:
        literal, text = pieces[0]
        return lit(text) if literal else text
    calls, fmt, args = [], "", []
    for literal, text in pieces:
        if literal:
            fmt += text.replace("%", "%%")
            continue
        if len(args) == _FORMAT_ARGS:
            calls.append(f"format({lit(fmt)}, {', '.join(args)})")
            fmt, args = "", []
        fmt += "%s"
        args.append(f"({text})")
    calls.append(f"format({lit(fmt)}, {', '.join(args)})" if args else lit(fmt))
    return " || ".join(calls)


def pieces_of(value: str) -> tuple[Piece, ...]:
    return value.pieces if isinstance(value, Json) else ((False, value),)


def jlit(text: str) -> Json:
    return Json([(True, text)])


def quoted(e: str) -> Json:
    """A JSON string around an expression whose text needs no escaping (numbers, enums,
    base64)."""
    return Json([(True, '"'), (False, e), (True, '"')])


def _or_null(text: str, nullable: bool) -> str:
    return f"coalesce({text}, 'null')" if nullable else text


def j_str(e: str, nullable: bool = True) -> str:
    return _or_null(f"to_json({e})::text", nullable)


def j_raw(e: str, nullable: bool = True) -> str:  # int, bool: their text is their JSON
    return _or_null(f"({e})::text", nullable)


def j_dec(e: str, nullable: bool = True) -> str:
    # Decimal scalars are JSON strings: str(Decimal) == numeric text
    if nullable:
        return f"coalesce('\"' || ({e})::text || '\"', 'null')"
    return quoted(f"({e})::text")


def j_enum(e: str, nullable: bool = True) -> str:
    # Enum labels are upper-case identifiers: nothing to escape.
    return j_str(e) if nullable else quoted(f"({e})::text")


def j_float(e: str, nullable: bool = True) -> str:
    """A numeric column as the Float scalar prints it on the other path (`float(value)`,
    then orjson): PostgreSQL's shortest float8 text, which has the same digits, with
    orjson's `.0` on whole numbers. For values orjson prints without an exponent."""
    text = (
        f"CASE WHEN ({e}) = trunc({e}) THEN trunc({e})::text || '.0' ELSE ({e})::float8::text END"
    )
    return _or_null(text, nullable)


def j_dt(e: str, nullable: bool = True) -> str:
    """PostgreSQL's own JSON timestamp (ISO 8601, session TimeZone UTC), which
    `resolvers.datetimes.iso_datetime` prints on the field-by-field path too."""
    return j_str(e, nullable)


def j_json(e: str, nullable: bool = True) -> str:
    """A jsonb column as both paths print it (`models.types.jsonb_text`: PostgreSQL's own
    jsonb text, compact), which the field-by-field path reads and sends as it is."""
    sql = jsonb_text(literal_column(e)).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    return _or_null(str(sql), nullable)


def b64(e: str) -> str:
    return f"translate(encode(convert_to({e}, 'UTF8'), 'base64'), E'\\n', '')"


def j_gid(type_name: str, e: str) -> str:
    return quoted(b64(lit(type_name + ":") + f" || ({e})::text"))


SCALAR_ENCODERS: dict[str, Callable[[str], str]] = {
    "String": j_str,
    "Int": j_raw,
    "Boolean": j_raw,
    "Float": j_raw,
    "Decimal": j_dec,
    "DateTime": j_dt,
    "Date": j_str,
    "UUID": j_str,
    "JSON": j_json,
}


def obj_sql(parts: list[tuple[str, str]]) -> Json:
    """{"k":v,"k2":v2} as one format() call, nested objects inlined."""
    pieces: list[Piece] = [(True, "{")]
    for i, (key, value) in enumerate(parts):
        pieces.append((True, ("," if i else "") + f'"{key}":'))
        pieces.extend(pieces_of(value))
    pieces.append((True, "}"))
    return Json(pieces)


def array_sql(agg: str) -> Json:
    """[…] around a string_agg of items (NULL when there are none)."""
    return Json([(True, "["), (False, f"coalesce({agg}, '')"), (True, "]")])


def list_sql(item: str, from_where: str, order: str) -> str:
    agg = f"string_agg({item}, ',' ORDER BY {order})"
    return f"(SELECT {array_sql(agg)} {from_where})"


def nullable_sql(item: str, from_where: str) -> str:
    return f"coalesce((SELECT {item} {from_where} LIMIT 1), 'null')"
