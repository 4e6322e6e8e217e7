"""Keyset (cursor) pagination for root lists and per-parent child lists. Never OFFSET.

A cursor is the sort key of a row, JSON-encoded and base64'd: stable under inserts and
deletes. Every ordering ends with the primary key, so keys are unique.
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    Select,
    SmallInteger,
    bindparam,
    func,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY

from resolvers.datetimes import iso_datetime
from resolvers.errors import BadUserInput

MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class PageArgs:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    @property
    def backward(self) -> bool:
        return self.last is not None or (self.before is not None and self.first is None)

    @property
    def size(self) -> int:
        return (self.last if self.backward else self.first) or 0


def page_args(
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
    *,
    default: int = 20,
) -> PageArgs:
    """Validate Relay arguments: sizes within 0..100, one direction at a time."""
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE:
            raise BadUserInput(
                f"'{name}' must be between 0 and {MAX_PAGE}, got {value}.", argument=name
            )
    if first is not None and last is not None:
        raise BadUserInput("Pass 'first' or 'last', not both.", argument="last")
    if first is None and last is None:
        if before is not None:
            last = default
        else:
            first = default
    return PageArgs(first=first, after=after, last=last, before=before)


@dataclass(frozen=True, slots=True)
class Ordering:
    """Sort columns (the last one unique, usually the id) and a direction."""

    columns: tuple[Column, ...]
    descending: bool = False

    def reversed(self) -> Ordering:
        return Ordering(self.columns, not self.descending)

    def order_by(self) -> list[ColumnElement]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        key = tuple_(*self.columns)
        bound = tuple_(
            *[bindparam(None, v, type_=c.type) for c, v in zip(self.columns, values, strict=True)]
        )
        return key < bound if self.descending else key > bound


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "value"):  # enums
        return value.value
    return value


def _int_bits(column: Column) -> int:
    """Bits of a signed integer column (BigInteger and SmallInteger are Integers too)."""
    if isinstance(column.type, BigInteger):
        return 64
    if isinstance(column.type, SmallInteger):
        return 16
    return 32 if isinstance(column.type, Integer) else 64


def _instant(raw: str) -> datetime:
    """A timestamp with an offset that is an instant Python can hold in UTC: our cursors
    always print an offset, and asyncpg converts to UTC (year 0 or 10000 overflow)."""
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        raise ValueError(raw)
    value.astimezone(UTC)  # OverflowError when UTC falls outside years 1..9999
    return value


def _decimal(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise ValueError(raw) from exc
    if not value.is_finite() or abs(value.adjusted()) > 1000 or value.as_tuple().exponent < -1000:
        raise ValueError(raw)  # NaN, infinities, and what numeric cannot hold
    return value


def _typed(column: Column, raw: Any) -> Any:
    """A cursor's JSON value as the column's Python value. Anything no cursor of ours
    holds is refused here, not by PostgreSQL mid-query: NUL in text, integers past the
    column's range, timestamps without offset or outside Python's years, nulls in NOT
    NULL columns."""
    if raw is None:
        if getattr(column, "nullable", None) is True:  # declared nullable, not a label
            return None
        raise ValueError(raw)
    kind = column.type.python_type
    if isinstance(raw, str):
        if "\x00" in raw:
            raise ValueError(raw)
        if kind is datetime:
            return _instant(raw)
        if kind is date:
            return date.fromisoformat(raw)
        if kind is Decimal:
            return _decimal(raw)
        if issubclass(kind, str):  # text, and enums by value
            return raw if kind is str else kind(raw)
    if kind is int and isinstance(raw, int) and not isinstance(raw, bool):
        bits = _int_bits(column)
        if -(2 ** (bits - 1)) <= raw < 2 ** (bits - 1):
            return raw
    raise ValueError(raw)


def encode_cursor(ordering: Ordering, row: Any) -> str:
    values = [_plain(getattr(row, c.name)) for c in ordering.columns]
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(ordering: Ordering, cursor: str, argument: str) -> list[Any]:
    """The sort key in a cursor, typed by the ordering's columns; BadUserInput for
    anything else. Both read paths decode with this (the compiled one steps aside)."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(ordering.columns):
            raise ValueError(raw)
        return [_typed(c, v) for c, v in zip(ordering.columns, raw, strict=True)]
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise BadUserInput(
            f"'{argument}' is not a valid cursor for this list and order.", argument=argument
        ) from exc


def check_cursors(ordering: Ordering, args: PageArgs) -> None:
    """Decode a page's cursors up front, for a list that may never be read (customerSearch
    reads its matches only when they are selected and under the cap): a bad cursor is bad
    input whatever the selection."""
    for argument, cursor in (("after", args.after), ("before", args.before)):
        if cursor is not None:
            decode_cursor(ordering, cursor, argument)


@dataclass(slots=True)
class Page:
    rows: list[Any]
    has_next: bool
    has_previous: bool
    ordering: Ordering

    def cursor(self, row: Any) -> str:
        return encode_cursor(self.ordering, row)


def _bounds(stmt: Select, ordering: Ordering, args: PageArgs) -> tuple[Select, Ordering]:
    """Apply after/before and return the statement with the ordering to fetch in."""
    if args.after is not None:
        stmt = stmt.where(ordering.after(decode_cursor(ordering, args.after, "after")))
    if args.before is not None:
        values = decode_cursor(ordering, args.before, "before")
        stmt = stmt.where(ordering.reversed().after(values))
    fetch = ordering.reversed() if args.backward else ordering
    return stmt.order_by(*fetch.order_by()), fetch


def _page(rows: list[Any], ordering: Ordering, args: PageArgs) -> Page:
    more = len(rows) > args.size
    rows = rows[: args.size]
    if args.backward:
        rows.reverse()
        return Page(rows, args.before is not None, more, ordering)
    return Page(rows, more, args.after is not None, ordering)


def paginate(stmt: Select, ordering: Ordering, args: PageArgs) -> tuple[Select, Any]:
    """Keyset-paginate a root list: returns the statement and a function rows -> Page."""
    stmt, _ = _bounds(stmt, ordering, args)
    stmt = stmt.limit(args.size + 1)
    return stmt, lambda rows: _page(list(rows), ordering, args)


def paginate_per_parent(
    table_stmt: Select,
    parent_column: Column,
    parent_ids: Sequence[int],
    ordering: Ordering,
    args: PageArgs,
) -> tuple[Select, Any]:
    """One statement for the first N children of each of many parents (LATERAL + LIMIT).

    A plain IN (...) LIMIT N would limit the whole batch, not each parent; LATERAL walks
    each parent's index range separately and stops after N+1 rows.
    """
    keys = select(
        func.unnest(bindparam("parent_ids", list(parent_ids), type_=ARRAY(BigInteger))).label(
            "parent_id"
        )
    ).subquery("keys")
    inner, _ = _bounds(table_stmt.where(parent_column == keys.c.parent_id), ordering, args)
    inner = inner.limit(args.size + 1).lateral("child")
    stmt = select(inner).select_from(keys.join(inner, true()))

    def split(rows: Sequence[Any]) -> list[Page]:
        grouped: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            grouped[getattr(row, parent_column.name)].append(row)
        return [_page(grouped.get(pid, []), ordering, args) for pid in parent_ids]

    return stmt, split
