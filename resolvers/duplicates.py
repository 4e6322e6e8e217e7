"""Duplicate report: customers sharing a normalised email, phone or name.

Criteria combine with AND (each extra criterion narrows). Exact groups come out of one
GROUP BY over the live customers the viewer may see, in key order, so a page streams from
the key's expression index. Fuzzy NAME pairs customers whose names are pg_trgm-similar
(above a threshold) and who match the other criteria exactly. A dismissed pair never
counts again: a group shows while it still holds a pair nobody dismissed.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import (
    ColumnElement,
    Numeric,
    Select,
    Text,
    and_,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert

from models import Customer, DuplicateDismissal
from models.customers import EMAIL_KEY, NAME_KEY
from models.enums import CustomerStatus, Role
from resolvers.context import Context
from resolvers.errors import UserErrorCode
from resolvers.mutations import Refused, transaction
from resolvers.pagination import Ordering, Page, PageArgs, paginate
from resolvers.scope import scope_customers
from resolvers.timeline import record

customer = Customer.__table__
dismissal = DuplicateDismissal.__table__


class Criterion(enum.Enum):
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    NAME = "NAME"


KEYS = {
    Criterion.EMAIL: literal_column(EMAIL_KEY, Text),
    Criterion.PHONE: customer.c.phone_digits,
    Criterion.NAME: literal_column(NAME_KEY, Text),
}
# How strongly a shared value suggests one person; combined as independent evidence.
WEIGHTS = {Criterion.EMAIL: 0.9, Criterion.PHONE: 0.8, Criterion.NAME: 0.6}
MIN_FUZZY_THRESHOLD = 0.3  # pg_trgm's `%` (index-assisted) pre-filters at 0.3


def score(weights: Sequence[float]) -> float:
    return round(1 - math.prod(1 - w for w in weights), 4)


@dataclass(frozen=True, slots=True)
class Report:
    criteria: tuple[Criterion, ...]
    fuzzy: bool = False
    threshold: float = 0.6


def fuzzy_score(report: Report, similarity) -> ColumnElement:
    """A fuzzy pair's score, as `score` combines it (the name's weight times the
    similarity), in PostgreSQL's exact decimals rounded to 4 places: both read paths print
    this one value."""
    others = math.prod(
        (1 - Decimal(str(WEIGHTS[c])) for c in report.criteria if c is not Criterion.NAME),
        start=Decimal(1),
    )
    name = literal(Decimal(str(WEIGHTS[Criterion.NAME])), Numeric)
    kept = (literal(1, Numeric) - name * similarity) * literal(others, Numeric)
    return func.round(literal(1, Numeric) - kept, 4, type_=Numeric)


def _candidates(ctx: Context, criteria: Sequence[Criterion]) -> Select:
    """Live, visible customers with every requested key present, as columns k0, k1, …"""
    keys = [KEYS[c].label(f"k{i}") for i, c in enumerate(criteria)]
    stmt = scope_customers(select(customer.c.id, *keys), ctx.viewer).where(
        customer.c.status != CustomerStatus.MERGED
    )
    for c in criteria:
        stmt = stmt.where(KEYS[c].is_not(None), KEYS[c] != "")
    return stmt


def _undismissed(ids) -> Select:
    """Dismissed pairs inside a group of ids."""
    return (
        select(func.count())
        .select_from(dismissal)
        .where(
            dismissal.c.customer_a_id == func.any(ids), dismissal.c.customer_b_id == func.any(ids)
        )
        .scalar_subquery()
    )


def exact_groups(ctx: Context, report: Report) -> tuple[Select, Ordering]:
    base = _candidates(ctx, report.criteria).subquery("candidates")
    keys = [base.c[f"k{i}"] for i in range(len(report.criteria))]
    grouped = (
        select(
            *keys,
            func.array_agg(aggregate_order_by(base.c.id, base.c.id)).label("ids"),
            func.count().label("size"),
        )
        .group_by(*keys)
        .having(func.count() > 1)
        .subquery("groups")
    )
    size = grouped.c.size
    stmt = select(grouped).where(size * (size - 1) / 2 > _undismissed(grouped.c.ids))
    # The keys identify a group, so they alone make a unique keyset ordering.
    ordering = Ordering(tuple(grouped.c[f"k{i}"] for i in range(len(keys))))
    return stmt, ordering


def fuzzy_pairs(ctx: Context, report: Report) -> tuple[Select, Ordering]:
    exact = [c for c in report.criteria if c is not Criterion.NAME]
    a = _candidates(ctx, report.criteria).subquery("a")
    b = _candidates(ctx, report.criteria).subquery("b")
    name = f"k{report.criteria.index(Criterion.NAME)}"
    similarity = func.similarity(a.c[name], b.c[name])
    joined = [a.c.id < b.c.id, a.c[name].op("%")(b.c[name]), similarity >= report.threshold]
    joined += [
        a.c[f"k{report.criteria.index(c)}"] == b.c[f"k{report.criteria.index(c)}"] for c in exact
    ]
    not_dismissed = ~(
        select(literal(1))
        .where(dismissal.c.customer_a_id == a.c.id, dismissal.c.customer_b_id == b.c.id)
        .exists()
    )
    rounded = func.round(similarity.cast(Numeric), 4, type_=Numeric)
    pairs = (
        select(
            rounded.label("similarity"),
            fuzzy_score(report, rounded).label("score"),
            a.c.id.label("a_id"),
            b.c.id.label("b_id"),
            a.c[name].label("k0"),
            b.c[name].label("k1"),
        )
        .where(and_(*joined), not_dismissed)
        .subquery("pairs")
    )
    stmt = select(pairs)
    ordering = Ordering((pairs.c.similarity, pairs.c.a_id, pairs.c.b_id), descending=True)
    return stmt, ordering


def report_query(ctx: Context, report: Report) -> tuple[Select, Ordering]:
    return fuzzy_pairs(ctx, report) if report.fuzzy else exact_groups(ctx, report)


async def report_page(ctx: Context, report: Report, args: PageArgs) -> tuple[Page, Select]:
    stmt, ordering = report_query(ctx, report)
    paged, to_page = paginate(stmt, ordering, args)
    return to_page(await ctx.rows(paged)), stmt


def group_score(report: Report, row) -> float:
    if report.fuzzy:
        return float(row.score)  # fuzzy_score, computed by PostgreSQL
    return score([WEIGHTS[c] for c in report.criteria])


async def dismiss(conn, customer_ids: Sequence[int], actor_id: int | None) -> int:
    """Record every pair among `customer_ids` as distinct people; returns new pairs stored."""
    ids = sorted(set(customer_ids))
    pairs = [
        {"customer_a_id": x, "customer_b_id": y, "dismissed_by": actor_id}
        for i, x in enumerate(ids)
        for y in ids[i + 1 :]
    ]
    result = await conn.execute(
        insert(dismissal)
        .values(pairs)
        .on_conflict_do_nothing()
        .returning(dismissal.c.customer_a_id)
    )
    return len(result.all())


async def dismiss_use_case(ctx: Context, customer_ids: Sequence[int]) -> int:
    """Staff only; every customer must be visible to the viewer; one transaction."""
    ids = sorted(set(customer_ids))
    if ctx.viewer.role is Role.CUSTOMER:
        raise Refused.one(None, UserErrorCode.FORBIDDEN, "Only staff review duplicates.")
    if len(ids) < 2:
        raise Refused.one(
            ["input", "customerIds"], UserErrorCode.INVALID, "Give at least two customers."
        )
    async with transaction(ctx) as conn:
        visible = scope_customers(select(customer.c.id), ctx.viewer).where(customer.c.id.in_(ids))
        found = {row.id for row in await conn.execute(visible)}
        if found != set(ids):
            raise Refused.one(
                ["input", "customerIds"], UserErrorCode.NOT_FOUND, "Unknown customer."
            )
        stored = await dismiss(conn, ids, ctx.viewer.user_id)
        for cid in ids:
            others = [i for i in ids if i != cid]
            await record(
                conn,
                cid,
                "DUPLICATE_DISMISSED",
                f"Marked as distinct from {len(others)} customer(s)",
                actor_id=ctx.viewer.user_id,
                data={"customerIds": others},
            )
    return stored
