"""The compiled read path: a validated query becomes ONE SQL statement that prints the JSON.

The planner walks the operation's selection (fragments, aliases, @include/@skip and
variables resolved there); every field it meets must be declared compilable, or the whole
operation falls back to Strawberry (`NotCompilable`). Argument errors (page sizes,
cursors, global IDs) also fall back, so error responses are Strawberry's own.

- `json_text`: SQL that prints JSON exactly as the dataloader path's orjson does
  (compact, `"20.00"` decimals, PostgreSQL's JSON timestamps, base64url cursors), each
  object one `format()` call.
- `builder`: the planner (`Builder`), connections, cursors, and the viewer's scope
  (`resolvers/scope.py`) compiled into every sub-select.
- `fields`: which fields compile per type: the `schema.base.columns_of` map `from_row`
  uses (found through Strawberry's definition of each GraphQL type), plus `RELATIONS`,
  compiled from the relations the loaders use (`DECLARED`, resolvers/relations.py).
- `roots`: the root fields that compile.
"""

from __future__ import annotations

import sys

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    NameNode,
    OperationDefinitionNode,
    OperationType,
)

from resolvers.compiled.builder import Builder
from resolvers.compiled.fields import COMPUTED, RELATIONS, scalar_columns
from resolvers.compiled.json_text import SCALAR_ENCODERS, Json, jlit, obj_sql, pieces_of
from resolvers.compiled.roots import ROOTS
from resolvers.compiled.statement import NotCompilable, Statement
from resolvers.compiled.variables import Trace
from resolvers.pagination import PAGE_ARGS
from resolvers.viewer import Viewer


def compile_operation(
    schema,
    document,
    operation: OperationDefinitionNode,
    variables,
    viewer: Viewer,
    *,
    search_cap: int = 400,
    trace: Trace | None = None,
) -> Statement:
    """The one statement returning the response's JSON (`{"data":…}`) as bytes; or, when
    some root fields compile and others do not (and every root selection is a plain
    field), a statement returning the compiled root fields' JSON, one column each."""
    if operation.operation is not OperationType.QUERY:
        raise NotCompilable("not a query")
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    b = Builder(
        schema, fragments, variables, viewer, RELATIONS, scalar_columns, search_cap, COMPUTED, trace
    )
    query_type = schema.query_type
    fake = FieldNode(name=NameNode(value="query"), selection_set=operation.selection_set)
    parts: list[tuple[str, str]] = []
    rest: list[str] = []
    order: list[str] = []
    typenames = 0
    for key, fnodes in b.collect(query_type, [fake]).items():
        order.append(key)
        name = fnodes[0].name.value
        if name == "__typename":
            parts.append((key, jlit('"Query"')))
            typenames += 1
            continue
        checkpoint = b.checkpoint()
        try:
            root = ROOTS.get(name)
            if root is None:
                raise NotCompilable(f"Query.{name}")
            parts.append((key, root(b, query_type, fnodes)))
        except NotCompilable:
            b.rollback(checkpoint)
            rest.append(key)
    if not parts:
        raise NotCompilable("empty")
    if rest:
        if len(parts) == typenames:
            raise NotCompilable("no root field compiles")
        if not all(isinstance(s, FieldNode) for s in operation.selection_set.selections):
            raise NotCompilable("fragments at the root of a mixed operation")
        columns = ", ".join(_guarded(b, f"convert_to({sql}, 'UTF8')") for _, sql in parts)
        return Statement(
            sys.intern(f"SELECT {columns}"),
            tuple(b.params),
            b.viewer_slot,
            b.today_slot,
            tuple(b.viewer_slots),
            keys=tuple(k for k, _ in parts),
            rest=tuple(rest),
            order=tuple(order),
            segments=tuple(b.segments),
        )
    # The whole response, as UTF-8 bytes that server/compiled.py sends as they are (no
    # decoding into a str and encoding back: a page is hundreds of kilobytes).
    data = Json([(True, '{"data":'), *pieces_of(obj_sql(parts)), (True, "}")])
    response = f"convert_to({data}, 'UTF8')"
    # Interned: statements compiled for values that differ only in parameters (one per
    # variable shape, or per value where a value shapes the SQL) share one SQL text.
    sql = sys.intern(f"SELECT {_guarded(b, response)}")
    return Statement(
        sql,
        tuple(b.params),
        b.viewer_slot,
        b.today_slot,
        tuple(b.viewer_slots),
        segments=tuple(b.segments),
    )


def _guarded(b: Builder, value: str) -> str:
    """The value, or NULL (Strawberry answers) when one of the builder's guards fails."""
    if not b.guards:
        return value
    return f"CASE WHEN {' AND '.join(b.guards)} THEN {value} END"


__all__ = [
    "PAGE_ARGS",
    "RELATIONS",
    "ROOTS",
    "SCALAR_ENCODERS",
    "NotCompilable",
    "Statement",
    "compile_operation",
    "scalar_columns",
]
