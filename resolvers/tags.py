"""Tags: a customer's labels. Rules, filter clauses and counts (the writes are in
resolvers/tag_mutations.py).

A tag is trimmed, 1-40 characters, without control characters; a customer has at most 50,
unique without regard to case and kept sorted that way. `customer.tag_keys` (generated: the
tags in lower case) is what filters and counts compare, through its GIN index, so "VIP"
and "vip" are one tag; a new spelling of a tag that exists takes the existing one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Select, Text, bindparam, func, select, text, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers import validate
from resolvers.context import Context
from resolvers.customers import LIVE, customer, visible_customers
from resolvers.errors import BadUserInput, UserErrorCode
from resolvers.mutations import Problem, Refused

MAX_LENGTH = 40
MAX_PER_CUSTOMER = 50
MAX_LISTED = 1000  # the most `tags` answers at once


def key(tag: str) -> str:
    """For checking input only: stored keys are the database's lower() (tag_keys)."""
    return tag.lower()


def sort(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """Tags from (key, tag) pairs, in the order SQL's `ORDER BY key COLLATE "C", tag
    COLLATE "C"` gives (code point order)."""
    return [t for _, t in sorted(pairs)]


def problem(tag: str) -> str | None:
    """Why `tag` (already trimmed) is not a tag, or None."""
    if not tag:
        return "A tag cannot be empty."
    if len(tag) > MAX_LENGTH:
        return f"A tag has at most {MAX_LENGTH} characters."
    if any(ord(c) < 32 or ord(c) == 127 for c in tag):
        return "A tag cannot contain control characters."
    return None


def clean(raw: Iterable[str], path: list[str]) -> list[str]:
    """Trimmed, checked and de-duplicated (first spelling wins) tags, in input order."""
    out: dict[str, str] = {}
    for i, value in enumerate(raw):
        tag = value.strip()
        why = problem(tag)
        if why is not None:
            raise Refused(Problem([*path, str(i)], UserErrorCode.INVALID, why))
        validate.refuse_card_numbers(tag)
        out.setdefault(key(tag), tag)
    return list(out.values())


# Each tag's key as the database computes it (the one `tag_keys` holds, whatever the
# server's locale), and one customer's spelling of it: the GIN index finds a carrier.
_SPELLINGS = text(
    "SELECT k, coalesce((SELECT t FROM customer, unnest(customer.tags) AS t"
    " WHERE customer.tag_keys @> ARRAY[k] AND lower(t) = k LIMIT 1), given)"
    " FROM unnest(CAST(:tags AS text[])) WITH ORDINALITY AS g(given, n),"
    " LATERAL (SELECT lower(given) AS k) AS keyed ORDER BY n"
)


async def keyed(conn: AsyncConnection, tags: list[str]) -> list[tuple[str, str]]:
    """(key, tag) for each tag, spelled as customers already spell it: one statement."""
    if not tags:
        return []
    return [(k, t) for k, t in await conn.execute(_SPELLINGS, {"tags": tags})]


def merged(
    current: dict[str, str], add: dict[str, str], remove: set[str]
) -> tuple[list[str], list[str], list[str]]:
    """A customer's tags after adding and removing ({key: tag} maps, keys as the database
    computes them): (the new sorted tags, those added, those removed)."""
    added = [t for k, t in add.items() if k not in current and k not in remove]
    removed = [t for k, t in current.items() if k in remove]
    kept = {k: t for k, t in current.items() if k not in remove}
    new = {**kept, **{k: t for k, t in add.items() if k not in kept and k not in remove}}
    return sort(new.items()), added, removed


def too_many(number: str, tags: list[str]) -> str:
    return f"{number} would have {len(tags)} tags; a customer has at most {MAX_PER_CUSTOMER}."


@dataclass
class TagFilter:
    any: list[str] = field(default_factory=list)
    all: list[str] = field(default_factory=list)
    none: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.any or self.all or self.none)


def _trimmed(tags: list[str], argument: str) -> list[str]:
    out = []
    for raw in tags:
        tag = raw.strip()
        why = problem(tag)
        if why is not None:
            raise BadUserInput(f"{why} ({raw!r})", argument=argument)
        out.append(tag)
    return sorted(set(out))


def _db_keys(tags: list[str], argument: str) -> ColumnElement:
    # Keys computed by the same SQL function as the column, so they always agree; a
    # function of a parameter only, so the GIN index still serves `&&` and `@>`.
    return func.cg_tag_keys(bindparam(None, _trimmed(tags, argument), type_=ARRAY(Text)))


def conditions(f: TagFilter) -> list[ColumnElement[bool]]:
    """Clauses on the customer table: `any` and `all` walk the GIN index of tag_keys."""
    where: list[ColumnElement[bool]] = []
    if f.any:
        where.append(customer.c.tag_keys.overlap(_db_keys(f.any, "filter.tags.any")))
    if f.all:
        where.append(customer.c.tag_keys.contains(_db_keys(f.all, "filter.tags.all")))
    if f.none:  # an unknown tag excludes nothing
        where.append(~customer.c.tag_keys.overlap(_db_keys(f.none, "filter.tags.none")))
    return where


def _grouped(stmt: Select, prefix: str | None = None) -> tuple[Select, tuple[ColumnElement, ...]]:
    """(tag, n): each tag of the customers `stmt` selects and how many carry it; and the
    order by tag (key, then spelling, in code point order as resolvers.tags.sort)."""
    rows = stmt.with_only_columns(customer.c.tags).order_by(None).subquery("tagged")
    tag = func.unnest(rows.c.tags).table_valued("t").render_derived()
    k = func.lower(tag.c.t)
    label = func.min(tag.c.t.collate("C"))
    grouped = (
        select(label.label("tag"), func.count().label("n"))
        .select_from(rows.join(tag, true()))
        .group_by(k)
    )
    if prefix:
        grouped = grouped.where(k.startswith(key(prefix), autoescape=True))
    return grouped, (k.collate("C"), label)


async def tag_counts(ctx: Context, prefix: str | None, first: int) -> list[tuple[str, int]]:
    """Tags of the viewer's live customers, by tag, with how many carry each."""
    grouped, by_tag = _grouped(visible_customers(ctx).where(LIVE), (prefix or "").strip() or None)
    rows = await ctx.rows(grouped.order_by(*by_tag).limit(first))
    return [(r.tag, r.n) for r in rows]


def facet_select(sample: ColumnElement, size: int) -> Select:
    """(value, n, rank): the `size` tags most used among a search's sample of matches (an
    id array), most used first, ties by tag (resolvers/search.py runs and compiles it)."""
    grouped, by_tag = _grouped(select(customer).where(customer.c.id == func.any(sample)))
    rank = func.row_number().over(order_by=(func.count().desc(), *by_tag)).label("rank")
    return grouped.add_columns(rank).order_by(rank).limit(size)
