"""Keyset (cursor) pagination for root lists and per-parent child lists. Never OFFSET.

A cursor is the sort key of a row, JSON-encoded and base64'd: stable under inserts and
deletes. Every ordering ends with the primary key, so keys are unique.
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    Select,
    SmallInteger,
    Text,
    bindparam,
    cast,
    func,
    literal_column,
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
class Paging:
    """A connection field's page arguments, declared once: the schema adds them to the
    field (schema.pagination.PageArguments) and both read paths read the declaration (the
    compiled builder through Strawberry's definition of the field, `Builder.page`)."""

    default: int = 20  # the page when neither first nor last is given
    backward: bool = True  # last/before too, not only first/after

    @property
    def names(self) -> tuple[str, ...]:
        return ("first", "after", "last", "before") if self.backward else ("first", "after")

    def page(self, given: Mapping[str, Any]) -> PageArgs:
        return page_args(*(given.get(name) for name in self.names), default=self.default)


ROOT_PAGING = Paging()
NESTED_PAGING = Paging(default=10)  # Customer.orders, ledgerTransactions, timeline
FORWARD_PAGING = Paging(backward=False)
PAGE_ARGS = frozenset(ROOT_PAGING.names)


def paging_of(fdef: Any) -> Paging | None:
    """The page arguments a GraphQL field declares (schema.pagination.PageArguments),
    read from Strawberry's definition of the field: the compiled builder and the cost
    limit (server/limits.py) read the same declaration the resolver gets its page from."""
    definition = (fdef.extensions or {}).get("strawberry-definition")
    for extension in getattr(definition, "extensions", None) or ():
        paging = getattr(extension, "paging", None)
        if isinstance(paging, Paging):
            return paging
    return None


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


def _json_text(column: ColumnElement) -> ColumnElement[str]:
    """A sort key's JSON text in SQL, as `_plain` + orjson print it: integers bare,
    decimals as strings, the rest (text, enums, PostgreSQL's ISO timestamps in the
    session's UTC, which `iso_datetime` matches) through to_json."""
    kind = column.type.python_type
    if kind is int:
        value = cast(column, Text)
    elif kind is Decimal:
        value = cast(func.to_json(cast(column, Text)), Text)
    else:
        value = cast(func.to_json(column), Text)
    if getattr(column, "nullable", True) is False:
        return value
    return func.coalesce(value, literal_column("'null'"))


def cursor_sql(ordering: Ordering) -> ColumnElement[str]:
    """A row's cursor, computed by PostgreSQL on both read paths (the loaders select it as
    `_cursor`, the compiled builder prints it): base64url of the JSON array of its sort
    key, without padding."""
    body: ColumnElement[str] = literal_column("'['", Text)
    for i, column in enumerate(ordering.columns):
        if i:
            body = body + literal_column("','", Text)  # text || text
        body = body + _json_text(column)
    body = body + literal_column("']'", Text)
    encoded = func.encode(
        func.convert_to(body, literal_column("'UTF8'")), literal_column("'base64'")
    )
    urlsafe = func.translate(encoded, literal_column("E'+/\\n'"), literal_column("'-_'"))
    return func.rtrim(urlsafe, literal_column("'='"), type_=Text)


def encode_cursor(ordering: Ordering, row: Any) -> str:
    """A cursor built in Python, for an object that is no row of a page (the timeline
    subscription's events); pages take theirs from `cursor_sql`."""
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


CURSOR = "_cursor"  # the column a page's rows carry their cursor in (`cursor_sql`)
T = TypeVar("T")


@dataclass(slots=True)
class Page:
    rows: list[Any]
    has_next: bool
    has_previous: bool

    def cursor(self, row: Any) -> str:
        return getattr(row, CURSOR)


def fetch_ordering(ordering: Ordering, args: PageArgs) -> Ordering:
    """The order rows are fetched in: reversed for `last`/`before`, so LIMIT keeps the
    rows nearest the cursor; the page shows them in `ordering`'s order again."""
    return ordering.reversed() if args.backward else ordering


def keyset(stmt: Select, ordering: Ordering, args: PageArgs) -> Select:
    """The page's keyset predicates (after/before) and its fetch order. Never OFFSET."""
    if args.after is not None:
        stmt = stmt.where(ordering.after(decode_cursor(ordering, args.after, "after")))
    if args.before is not None:
        values = decode_cursor(ordering, args.before, "before")
        stmt = stmt.where(ordering.reversed().after(values))
    return stmt.order_by(*fetch_ordering(ordering, args).order_by())


def window(stmt: Select, ordering: Ordering, args: PageArgs, *, look_ahead: bool = True) -> Select:
    """The rows of a page: keyset bounds, fetch order and LIMIT n+1, the extra row telling
    whether there is more (`look_ahead=False`: just n, when nobody asks). The limit is a
    literal, part of the statement's shape, on both paths."""
    limit = args.size + 1 if look_ahead else args.size
    return keyset(stmt, ordering, args).limit(bindparam(None, limit, Integer, literal_execute=True))


def page_flags(args: PageArgs, more: T) -> tuple[T | bool, T | bool]:
    """(hasNextPage, hasPreviousPage), given whether rows lie beyond the page in the fetch
    direction (`more`: a bool here, an SQL expression in the compiled builder)."""
    if args.backward:
        return args.before is not None, more
    return more, args.after is not None


def _page(rows: list[Any], args: PageArgs) -> Page:
    more = len(rows) > args.size
    rows = rows[: args.size]
    if args.backward:
        rows.reverse()  # fetched in reverse (fetch_ordering)
    has_next, has_previous = page_flags(args, more)
    return Page(rows, has_next, has_previous)


def with_cursor(stmt: Select, ordering: Ordering) -> Select:
    return stmt.add_columns(cursor_sql(ordering).label(CURSOR))


def paginate(stmt: Select, ordering: Ordering, args: PageArgs) -> tuple[Select, Any]:
    """Keyset-paginate a root list: returns the statement and a function rows -> Page."""
    stmt = window(with_cursor(stmt, ordering), ordering, args)
    return stmt, lambda rows: _page(list(rows), args)


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
    children = with_cursor(table_stmt.where(parent_column == keys.c.parent_id), ordering)
    inner = window(children, ordering, args).lateral("child")
    stmt = select(inner).select_from(keys.join(inner, true()))

    def split(rows: Sequence[Any]) -> list[Page]:
        grouped: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            grouped[getattr(row, parent_column.name)].append(row)
        return [_page(grouped.get(pid, []), args) for pid in parent_ids]

    return stmt, split
