"""Row scoping for the compiled read path: the predicates of resolvers/scope.py compiled
once per (table, role) to SQL text, the viewer's id in them a placeholder (`SENTINEL`)
that `Builder.scope` binds per request; and the stand-in context (`Ctx`, `ViewerId`)
through which the resolvers' own select builders serve the builder (`Builder.context`)."""

from __future__ import annotations

import functools

from sqlalchemy import select

from models import enums
from resolvers import accounts as account_q
from resolvers.compiled.sql_text import computed_sql
from resolvers.scope import (
    ScopeKind,
    scope_accounts,
    scope_children,
    scope_customers,
    scope_users,
)
from resolvers.viewer import Viewer

SENTINEL = 987654321987  # stands for the viewer's id while a scope predicate is compiled


class Ctx:
    """A stand-in for the resolvers' context: the viewer, all their select builders read."""

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer


class ViewerId(int):
    """The viewer's id where a resolver's own clauses put it (`Builder.context`): `Builder.sql`
    finds it among the bound values and binds it per request, like the scope's."""


def _where_text(stmt, table, alias: str | None) -> str | None:
    clause = stmt.whereclause
    return None if clause is None else computed_sql(clause, table, alias or table.name)


@functools.cache
def scope_template(
    kind: ScopeKind, table_name: str, role: enums.Role, alias: str | None = None
) -> str | None:
    from models import metadata

    kind = ScopeKind(kind)  # a plain string names the same rule
    viewer = Viewer(user_id=SENTINEL, role=role)
    table = metadata.tables[table_name]
    if kind is ScopeKind.CUSTOMER:
        stmt = scope_customers(select(table), viewer)
    elif kind is ScopeKind.CHILD:
        stmt = scope_children(select(table), viewer, table.c.customer_id)
    elif kind is ScopeKind.ACCOUNT:
        stmt = scope_accounts(select(table), viewer)
    elif kind is ScopeKind.PAYMENT_METHOD:
        stmt = account_q.visible_payment_methods(Ctx(viewer))
    elif kind is ScopeKind.USER:
        stmt = scope_users(select(table), viewer)
    else:  # pragma: no cover
        raise ValueError(kind)
    return _where_text(stmt, table, alias)
