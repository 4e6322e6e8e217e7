"""A compiled read's statement and its parameters: `Statement` (SQL text, parameters,
where the viewer and today go, the segments a later request's variables replay), `Params`
(parameters as the planner or a replayed segment appends them) and the producers the
planner records so a segment can replay them (resolvers/compiled/variables.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, literal_column, select

from models.enums import Role
from resolvers import customers as customer_q
from resolvers.compiled.scope import ViewerId
from resolvers.compiled.sql_text import bound_sql
from resolvers.compiled.variables import Segment
from resolvers.errors import CodedError
from resolvers.pagination import Ordering, PageArgs, check_cursors, keyset
from resolvers.search import BOUNDED_PREFIX
from resolvers.viewer import Viewer


class NotCompilable(Exception):
    """This selection (or these arguments) must take the field-by-field path."""


@dataclass(frozen=True, slots=True)
class Statement:
    """A compiled read: SQL text and parameters. The viewer's id and today's date sit at
    known positions, so the statement serves every request with the same document,
    variables and role (server/compiled.py caches it)."""

    sql: str
    params: tuple[Any, ...]
    viewer_slot: int | None = None
    today_slot: int | None = None
    # More places of the viewer's id: resolvers' own clauses (`Builder.context`).
    viewer_slots: tuple[int, ...] = ()
    # A mixed operation: the statement returns one JSON text per key in `keys` (as bytes);
    # the root fields under `rest` are answered by Strawberry; `order` is the response's.
    keys: tuple[str, ...] = ()
    rest: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    # Parameters computed from variable values (resolvers/compiled/variables.py), and the
    # variable paths whose values the statement does not depend on beyond its segments:
    # server/compiled.py keys it by the other variables' values only.
    segments: tuple[Segment, ...] = ()
    generic: frozenset = frozenset()

    @property
    def plans_once(self) -> bool:
        """Whether one generic plan should serve every value: a search by a name prefix
        bounded as a range, which PostgreSQL would plan again on every request."""
        return BOUNDED_PREFIX in self.sql

    def rebound(self, variables: dict[str, Any]) -> Statement:
        """This statement with its segments' parameters computed from `variables` (the
        request's JSON); Mismatch when they do not fit (compile for them instead)."""
        if not self.segments:
            return self
        params = list(self.params)
        for seg in self.segments:
            params[seg.start : seg.end] = seg.replay(Params, variables)
        return dataclasses.replace(self, params=tuple(params))

    def bind(self, viewer: Viewer) -> list[Any]:
        params = list(self.params)
        if self.viewer_slot is not None:
            params[self.viewer_slot] = viewer.user_id
        for slot in self.viewer_slots:
            params[slot] = viewer.user_id
        if self.today_slot is not None:
            params[self.today_slot] = dt.date.today()
        return params

    def on_session(self, viewer: Viewer) -> tuple[str, list[Any]]:
        """The statement for a session that keeps its viewer (server/database.py), and
        its parameters: it answers no row unless the session's viewer is `viewer`, so a
        session that lost it (a transaction pooler nobody declared hands each statement
        to any server connection) never answers as someone else."""
        viewer_id = "" if viewer.user_id is None else str(viewer.user_id)
        params = [*self.bind(viewer), viewer_id, Role(viewer.role).value]
        return session_guarded(self.sql, len(self.params)), params


@functools.lru_cache(maxsize=4096)
def session_guarded(sql: str, count: int) -> str:
    """`sql` (with `count` parameters) gated on the session's viewer settings. A compiled
    statement is `SELECT <values>` with no FROM (resolvers/compiled/__init__.py), so a WHERE
    is a one-time filter: checked before any value is computed, in the same statement and
    so on the same server connection, and no planning beyond the two comparisons (a
    subquery around it cost a search 7% of its throughput)."""
    if not sql.startswith("SELECT "):  # pragma: no cover - compiled statements all do
        raise ValueError("not a compiled statement")
    return (
        f"{sql} WHERE current_setting('cg.viewer_id', true) = ${count + 1}::text"
        f" AND current_setting('cg.viewer_role', true) = ${count + 2}::text"
    )


@functools.cache
def param_of(cast: str) -> Callable[[Params, Any], str]:
    def produce(b: Params, value: Any) -> str:
        return Params.param(b, value, cast)

    return produce


def keyset_of(ordering: Ordering) -> Callable[[Params, Any, Any], str]:
    """The keyset predicate of a page's cursors (`pagination.keyset`'s own conditions)."""

    def produce(b: Params, after: str | None, before: str | None) -> str:
        try:
            page = PageArgs(first=0, after=after, before=before)
            clause = keyset(select(literal_column("1")), ordering, page).whereclause
        except CodedError as exc:
            raise NotCompilable("bad cursor") from exc
        return f"({b.sql(clause)})"

    return produce


def cursors_checked(ordering: Ordering) -> Callable[[Params, Any, Any], None]:
    def produce(b: Params, after: str | None, before: str | None) -> None:
        try:
            check_cursors(ordering, PageArgs(first=0, after=after, before=before))
        except CodedError as exc:
            raise NotCompilable("bad cursor") from exc

    return produce


class Params:
    """A statement's parameters as they are appended: the planner's (`Builder`), or a
    segment's replayed for a later request (`Segment.replay`, from the segment's slot)."""

    def __init__(self, start: int = 0) -> None:
        self.params: list[Any] = [None] * start
        self.viewer_slots: list[int] = []  # places of the viewer's id (`Builder.context`)

    def param(self, value: Any, cast: str) -> str:
        self.params.append(value)
        return f"${len(self.params)}::{cast}"

    def sql(self, clause) -> str:
        """A SQLAlchemy clause as SQL text whose values are this statement's parameters
        (numbered by SQLAlchemy's own rendering, see `bound_sql`)."""
        start = len(self.params)
        text = bound_sql(clause, self.params)
        self.viewer_slots += [
            i for i in range(start, len(self.params)) if type(self.params[i]) is ViewerId
        ]
        return text

    def customer_clauses(self, clauses: list) -> str:
        """SQLAlchemy clauses over `customer` as SQL text, their values this statement's
        parameters. Compiled as the WHERE of a select from `customer`, so sub-selects
        correlate with the outer customer row as they do on the other path."""
        text = self.sql(select(customer_q.customer.c.id).where(*clauses))
        head = "SELECT customer.id \nFROM customer \nWHERE "
        if not text.startswith(head):  # pragma: no cover - SQLAlchemy changed its layout
            raise NotCompilable("unexpected clause SQL")
        return f"({text[len(head) :]})"

    def bound(self, value: Any, type_: Any) -> str:
        """A value as a parameter of SQLAlchemy type `type_`, cast as the other path's
        driver binds it, for a clause built around it (`literal_column(text, type_)`)."""
        return self.sql(bindparam(None, value, type_=type_))
