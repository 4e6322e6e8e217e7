"""Saved searches (segments): storing, listing, checking and running a named filter.

A viewer sees their own searches and the shared ones; only staff have them. Running one
goes through the viewer's own customer scope, so a rep running a shared search sees their
own customers only. The filter is re-validated on every run (`criteria_of` then
`search.conditions`, plus the ids it names): what was deleted since makes the search
`Stale`, a clear error, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from models import AppUser, SalesChannel, SavedSearch
from models.enums import Role
from resolvers import search as search_q
from resolvers.context import Context
from resolvers.customers import customer, visible_customers
from resolvers.errors import BadUserInput, CodedError, UserErrorCode
from resolvers.loading import one_per_key
from resolvers.mutations import Problem, Refused, transaction

saved_search = SavedSearch.__table__
channel = SalesChannel.__table__
app_user = AppUser.__table__
MAX_NAME = 100

# The schema layer turns stored GraphQL JSON into Criteria (its CustomerFilter input);
# resolvers take that function rather than import schema/.
CriteriaOf = Callable[[dict[str, Any]], search_q.Criteria]


class Stale(BadUserInput):
    """A saved search that no longer applies: what it names was deleted, or it no longer
    validates."""


def _staff(ctx: Context) -> None:
    if ctx.viewer.role is Role.CUSTOMER:
        raise Refused(Problem(None, UserErrorCode.FORBIDDEN, "Saved searches are for staff."))


def visible(ctx: Context) -> Select:
    """The viewer's own searches and the shared ones (none for a site user)."""
    if ctx.viewer.role is Role.CUSTOMER:
        return select(saved_search).where(false())
    return select(saved_search).where(
        or_(saved_search.c.owner_id == ctx.viewer.user_id, saved_search.c.shared)
    )


async def saved_searches(ctx: Context) -> list[Any]:
    stmt = visible(ctx).order_by(func.lower(saved_search.c.name), saved_search.c.id)
    return list(await ctx.rows(stmt))


async def saved_searches_by_id(ctx: Context, keys: Sequence[int]) -> list:
    return await one_per_key(ctx, visible(ctx), saved_search.c.id, keys)


async def _missing_references(ctx: Context, c: search_q.Criteria) -> str | None:
    """What the criteria name that no longer exists, or None."""
    channels = set(c.sales_channels) | set(c.exclude_sales_channels)
    if channels:
        found = {
            r.id for r in await ctx.rows(select(channel.c.id).where(channel.c.id.in_(channels)))
        }
        if channels - found:
            return "a sales channel it names was deleted"
    if c.sales_rep is not None:
        rows = await ctx.rows(select(app_user.c.id).where(app_user.c.id == c.sales_rep))
        if not rows:
            return "the sales rep it names no longer exists"
    return None


async def check(ctx: Context, c: search_q.Criteria) -> list[ColumnElement[bool]]:
    """The criteria's WHERE clauses, after checking every value and every id they name."""
    where = await search_q.conditions(ctx, c)
    missing = await _missing_references(ctx, c)
    if missing is not None:
        raise BadUserInput(f"The filter no longer applies: {missing}.", argument="filter")
    return where


@dataclass
class Run:
    """A saved search ready to run: its row, and its clauses or why it cannot run."""

    row: Any
    where: list[ColumnElement[bool]] | None
    problem: str | None


async def prepare(ctx: Context, row: Any, criteria_of: CriteriaOf) -> Run:
    try:
        return Run(row, await check(ctx, criteria_of(row.filter)), None)
    except (CodedError, ValueError, KeyError) as exc:
        return Run(row, None, _reason(exc))


def _reason(exc: Exception) -> str:
    message = exc.message if isinstance(exc, CodedError) else f"unreadable filter ({exc})"
    return message.removeprefix("The filter no longer applies: ").rstrip(".")


async def run_where(
    ctx: Context, saved_id: int, criteria_of: CriteriaOf
) -> list[ColumnElement[bool]]:
    """The clauses of a visible saved search, or a GraphQL error saying why not."""
    row = await ctx.loader(saved_searches_by_id).load(saved_id)
    if row is None:
        raise BadUserInput("No such saved search.", argument="savedSearch")
    run = await prepare(ctx, row, criteria_of)
    if run.where is None:
        raise Stale(
            f"Saved search {row.name!r} no longer applies: {run.problem}. Edit or delete it.",
            argument="savedSearch",
        )
    return run.where


async def counts(ctx: Context, runs: Sequence[Run]) -> list[int | None]:
    """Customers the viewer sees matching each runnable search: one statement for all."""
    live = [r for r in runs if r.where is not None]
    if not live:
        return [None] * len(runs)
    columns = [func.count().filter(and_(*r.where)) for r in live]  # type: ignore[arg-type]
    row = (await ctx.rows(visible_customers(ctx).with_only_columns(*columns)))[0]
    by_id = {r.row.id: n for r, n in zip(live, row, strict=True)}
    return [by_id.get(r.row.id) for r in runs]


async def memberships(ctx: Context, runs: Sequence[Run], keys: Sequence[int]) -> list[list[Any]]:
    """For each customer id, the runnable searches it matches: one statement per page."""
    live = [r for r in runs if r.where is not None]
    if not live or not keys:
        return [[] for _ in keys]
    flags = [and_(*r.where).label(f"s{i}") for i, r in enumerate(live)]  # type: ignore[arg-type]
    rows = await ctx.rows(select(customer.c.id, *flags).where(customer.c.id.in_(list(keys))))
    matched = {row[0]: [live[i].row for i, hit in enumerate(row[1:]) if hit] for row in rows}
    return [matched.get(k, []) for k in keys]


async def runs_by_id(ctx: Context, criteria_of: CriteriaOf, keys: Sequence[int]) -> list:
    """Each visible search ready to run (None when not visible), checked once a request."""
    rows = await ctx.loader(saved_searches_by_id).load_many(list(keys))
    return [None if row is None else await prepare(ctx, row, criteria_of) for row in rows]


async def counts_by_id(ctx: Context, criteria_of: CriteriaOf, keys: Sequence[int]) -> list:
    runs = await ctx.loader(runs_by_id, criteria_of).load_many(list(keys))
    present = [r for r in runs if r is not None]
    by_id = dict(zip([r.row.id for r in present], await counts(ctx, present), strict=True))
    return [by_id.get(k) for k in keys]


async def searches_of_customers(
    ctx: Context, criteria_of: CriteriaOf, keys: Sequence[int]
) -> list[list[Any]]:
    """Customer.savedSearches for a page of customers: the viewer's searches are listed and
    checked once, then one statement tells which customer each one matches."""
    rows = await saved_searches(ctx)
    runs = await ctx.loader(runs_by_id, criteria_of).load_many([r.id for r in rows])
    return await memberships(ctx, [r for r in runs if r is not None], keys)


# -- writes --------------------------------------------------------------------------------


def _name(raw: str | None) -> str:
    name = (raw or "").strip()
    if not name:
        raise Refused(Problem(["input", "name"], UserErrorCode.REQUIRED, "Name the search."))
    if len(name) > MAX_NAME:
        raise Refused(
            Problem(["input", "name"], UserErrorCode.INVALID, f"At most {MAX_NAME} characters.")
        )
    return name


async def _validated(ctx: Context, criteria: search_q.Criteria) -> None:
    try:
        await check(ctx, criteria)
    except BadUserInput as exc:
        raise Refused(Problem(["input", "filter"], UserErrorCode.INVALID, exc.message)) from exc


def _refuse_duplicate(exc: IntegrityError) -> None:
    if "uq_saved_search_owner_name" in str(exc.orig):
        raise Refused(
            Problem(
                ["input", "name"],
                UserErrorCode.DUPLICATE,
                "You already have a search with this name.",
            )
        ) from exc


async def create(
    ctx: Context, name: str, filter_json: dict, criteria: search_q.Criteria, shared: bool
) -> int:
    _staff(ctx)
    name = _name(name)
    await _validated(ctx, criteria)
    try:
        async with transaction(ctx) as conn:
            stmt = insert(saved_search).values(
                owner_id=ctx.viewer.user_id, name=name, filter=filter_json, shared=shared
            )
            return (await conn.execute(stmt.returning(saved_search.c.id))).scalar_one()
    except IntegrityError as exc:
        _refuse_duplicate(exc)
        raise


async def _editable(conn: Any, ctx: Context, saved_id: int) -> Any:
    """Lock a search its owner (or an admin, for a shared one) may change."""
    _staff(ctx)
    row = (
        await conn.execute(visible(ctx).where(saved_search.c.id == saved_id).with_for_update())
    ).first()
    if row is None:
        raise Refused(Problem(["input", "id"], UserErrorCode.NOT_FOUND, "No such saved search."))
    if row.owner_id != ctx.viewer.user_id and ctx.viewer.role is not Role.ADMIN:
        raise Refused(
            Problem(
                ["input", "id"],
                UserErrorCode.FORBIDDEN,
                "Only its owner or an admin may change it.",
            )
        )
    return row


async def change(
    ctx: Context,
    saved_id: int,
    *,
    name: str | None,
    filter_json: dict | None,
    criteria: search_q.Criteria | None,
    shared: bool | None,
) -> int:
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = _name(name)
    if criteria is not None:
        await _validated(ctx, criteria)
        values["filter"] = filter_json
    if shared is not None:
        values["shared"] = shared
    try:
        async with transaction(ctx) as conn:
            await _editable(conn, ctx, saved_id)
            if values:
                await conn.execute(
                    update(saved_search)
                    .where(saved_search.c.id == saved_id)
                    .values(**values, updated_at=func.now())
                )
    except IntegrityError as exc:
        _refuse_duplicate(exc)
        raise
    return saved_id


async def remove(ctx: Context, saved_id: int) -> int:
    async with transaction(ctx) as conn:
        await _editable(conn, ctx, saved_id)
        await conn.execute(delete(saved_search).where(saved_search.c.id == saved_id))
    return saved_id
