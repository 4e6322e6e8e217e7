"""SQLAlchemy clauses as the compiled statement's SQL text: constant clauses with their
values inline (orderings, computed fields, scope predicates: the field-by-field path's own
declarations, so both paths order and filter alike), and clauses whose values become the
statement's numbered parameters (`bound_sql`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql.util import ClauseAdapter

from resolvers.compiled.variables import RawRead, Var

_DIALECT = postgresql.dialect()
_ASYNCPG = asyncpg_dialect.dialect()


def clause_sql(*clauses) -> str:
    """SQLAlchemy clauses (an ordering, a condition) as this statement's SQL text, joined
    by commas: the dataloader path's own declarations, so both paths order and filter
    alike. Only constant clauses (no user values: those are parameters)."""
    return ", ".join(
        str(c.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True})) for c in clauses
    )


def computed_sql(expr, table, alias: str) -> str:
    """A computed field's SQLAlchemy expression over `table`, for the row named `alias`
    (SQLAlchemy's ClauseAdapter re-points its columns: no text is rewritten)."""
    if alias != table.name:
        expr = ClauseAdapter(table.alias(alias)).traverse(expr)
    return str(expr.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}))


class _ParamCompiler(_ASYNCPG.statement_compiler):  # type: ignore[name-defined]
    """The asyncpg dialect's compiler rendering every bound value as the next parameter of
    an outer statement: SQLAlchemy itself walks the clause (IN lists, sub-selects,
    type casts) and hands each value to `render_literal_value`, so no SQL text is searched
    or rewritten. Values marked `literal_execute` (a page's LIMIT) stay literals."""

    def __init__(self, dialect, statement, sink: list[Any], **kw: Any) -> None:
        self._sink = sink
        self._literal = False
        super().__init__(dialect, statement, **kw)

    def render_literal_bindparam(self, bindparam, **kw: Any) -> str:
        self._literal = bool(bindparam.literal_execute)
        try:
            return super().render_literal_bindparam(bindparam, **kw)
        finally:
            self._literal = False

    def render_literal_value(self, value: Any, type_) -> str:
        if type(value) is Var:  # a variable's value outside Builder.recorded
            raise RawRead(value.path)
        if self._literal:
            return super().render_literal_value(value, type_)
        impl = type_.dialect_impl(self.dialect)
        process = impl.bind_processor(self.dialect)  # public API: enums become labels
        self._sink.append(process(value) if process else value)
        placeholder = f"${len(self._sink)}"
        if impl.render_bind_cast:  # the cast the asyncpg dialect renders on the other path
            return self.render_bind_cast(type_, impl, placeholder)
        return placeholder


def bound_sql(clause, params: list[Any]) -> str:
    """`clause` as SQL text, each bound value appended to `params` as `$n` (n its
    position there): the SQL the field-by-field path runs, numbered for this statement."""
    return _ParamCompiler(_ASYNCPG, clause, params, compile_kwargs={"literal_binds": True}).string
