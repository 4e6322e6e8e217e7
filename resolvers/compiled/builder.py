"""The planner: walks a selection (fragments, aliases, @include/@skip, variables) and
builds the SQL of objects and connections, with the viewer's scope in every sub-select
(its predicates compiled by resolvers/compiled/scope.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSkipDirective,
    InlineFragmentNode,
    get_named_type,
    is_abstract_type,
)
from graphql.execution.values import get_argument_values, get_directive_values
from sqlalchemy import BindParameter, Boolean, Date, func, literal_column, select
from sqlalchemy.sql.visitors import replacement_traverse

from models import metadata
from resolvers.compiled.json_text import (
    SCALAR_ENCODERS,
    array_sql,
    j_enum,
    j_gid,
    jlit,
    obj_sql,
    quoted,
)
from resolvers.compiled.scope import SENTINEL, Ctx, ViewerId, scope_template
from resolvers.compiled.sql_text import clause_sql, computed_sql
from resolvers.compiled.statement import (
    NotCompilable,
    Params,
    cursors_checked,
    keyset_of,
    param_of,
)
from resolvers.compiled.variables import Segment, Trace, Var, unwrap
from resolvers.datetimes import TODAY
from resolvers.errors import CodedError
from resolvers.pagination import (
    Ordering,
    PageArgs,
    cursor_sql,
    fetch_ordering,
    page_flags,
    paging_of,
    window,
)
from resolvers.scope import ScopeKind
from resolvers.viewer import Viewer

# ---------------------------------------------------------------------------------------
# The builder


@dataclass
class Source:
    """The row a selection reads from: its SQL alias and column overrides."""

    alias: str
    columns: dict[str, str] = field(default_factory=dict)  # column -> SQL expression

    def col(self, name: str) -> str:
        return self.columns.get(name) or f"{self.alias}.{name}"

    def nullable(self, name: str) -> bool:
        return _nullable(self.col(name))


@functools.cache
def _nullable(expr: str) -> bool:
    """Whether an expression may be NULL: all but a plain reference to a NOT NULL column.

    Compiled SQL has no outer joins, so a NOT NULL column is never NULL in it; skipping
    `coalesce(…, 'null')` there is a tenth of the statement's time.
    """
    from models import metadata

    match = re.fullmatch(r"(\w+)\.(\w+)", expr)
    table = metadata.tables.get(match[1]) if match else None
    column = table.c.get(match[2]) if table is not None else None
    return column is None or column.nullable


class Builder(Params):
    def __init__(
        self,
        schema,
        fragments,
        variables: dict[str, Any],
        viewer: Viewer,
        relations: dict[str, dict[str, Callable[..., str]]],
        scalars: Callable[[GraphQLObjectType], dict[str, str]],
        search_cap: int = 400,
        computed: dict[str, tuple[Any, dict[str, Any]]] | None = None,
        trace: Trace | None = None,
    ) -> None:
        # GraphQL type -> (table, {column: SQLAlchemy expression}): computed fields, the
        # loaders' own declarations, printed inline.
        self.computed = computed or {}
        self.schema = schema
        self.search_cap = search_cap  # settings.search_cap: customerSearch's limit
        # SQL conditions the answer stands on; when one is false the statement returns
        # NULL and Strawberry answers instead (customerSearch over the cap: RefineSearch).
        self.guards: list[str] = []
        self.relations = relations  # fields.RELATIONS
        self.scalars = scalars  # fields.scalar_columns
        self.fragments: dict[str, FragmentDefinitionNode] = fragments
        self.variables = variables  # a graphql-core VariableValues
        self.viewer = viewer
        super().__init__()
        # Producers run on traced variable values (`recorded`); the variable paths read by
        # producers that did not end up in the statement (their root field fell back, or
        # the producer refused the value): those key the statement by value.
        self.segments: list[Segment] = []
        self.trace = trace if trace is not None else Trace()
        self._uid: str | None = None
        self._today: str | None = None
        self.viewer_slot: int | None = None
        self.today_slot: int | None = None
        self._aliases = 0

    # -- parameters
    def checkpoint(self) -> tuple:
        state = (self._uid, self._today, self.viewer_slot, self.today_slot)
        sizes = (len(self.params), len(self.guards), len(self.viewer_slots), len(self.segments))
        return (*sizes, *state)

    def rollback(self, checkpoint: tuple) -> None:
        """Forget the parameters of a root field that turned out not to compile."""
        size, guards, slots, segments, *state = checkpoint
        self._uid, self._today, self.viewer_slot, self.today_slot = state
        del self.params[size:]
        del self.guards[guards:]
        del self.viewer_slots[slots:]
        for seg in self.segments[segments:]:
            self.trace.dropped |= seg.paths
        del self.segments[segments:]

    def param(self, value: Any, cast: str) -> str:
        if type(value) is Var:  # a variable's value: bound per request
            return self.recorded(param_of(cast), value)
        return super().param(value, cast)

    def recorded(self, produce: Callable[..., Any], *inputs: Any) -> Any:
        """`produce(params, *inputs)` run on the real values of the Vars in `inputs` (traced
        variable leaves): it appends its parameters to `params` and returns what the
        planner builds on (SQL text, a type name: hashable, compared on replay). Recorded
        as a Segment, so a later request with other values replays it, not the planner."""
        paths: set = set()
        real = unwrap(inputs, paths)
        if not paths:  # no variable in it: a constant of the statement
            return produce(self, *real)
        self.trace.read |= paths
        start, slots = len(self.params), len(self.viewer_slots)
        try:
            result = produce(self, *real)
        except BaseException:
            self.trace.dropped |= paths  # the value decided the outcome: read by value
            raise
        self.segments.append(
            Segment(
                start,
                len(self.params),
                produce,
                inputs,
                result,
                frozenset(paths),
                tuple(self.viewer_slots[slots:]),
            )
        )
        return result

    def today(self) -> str:
        if self._today is None:
            self._today = self.param(dt.date.today(), "date")
            self.today_slot = len(self.params) - 1
        return self._today

    def dated(self, expr):
        """`expr` with today's date (resolvers.datetimes.TODAY, which the loaders bind when
        they run) as this statement's date parameter, bound per request."""

        def swap(element):
            if isinstance(element, BindParameter) and element.key == TODAY.key:
                return literal_column(self.today(), Date)
            return None

        return replacement_traverse(expr, {}, swap)

    def viewer_param(self) -> str:
        """The viewer's id, a parameter bound per request (Statement.bind)."""
        if self._uid is None:
            self._uid = self.param(self.viewer.user_id, "bigint")
            self.viewer_slot = len(self.params) - 1
        return self._uid

    def scope(self, kind: ScopeKind, table: str, alias: str | None = None) -> str:
        """The viewer's scope over `table` (named `alias` in the FROM clause, if given)."""
        template = scope_template(kind, table, self.viewer.role, alias)
        if template is None:
            return "true"
        if str(SENTINEL) in template:
            template = template.replace(str(SENTINEL), self.viewer_param())
        return f"({template})"

    def alias(self, table: str) -> str:
        """A fresh name for `table` where an outer query already uses its own name."""
        self._aliases += 1
        return f"_{table}{self._aliases}"

    def context(self) -> Ctx:
        """A stand-in for the resolvers' context (`ctx.viewer`), so their own select builders
        (with `resolvers/scope.py` inside) serve here; the viewer's id in them becomes a
        parameter bound per request, so the cached statement serves every viewer of the role."""
        return Ctx(Viewer(ViewerId(self.viewer.user_id), self.viewer.role, self.viewer.email))

    # -- selections
    def _include(self, node) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if"):
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include is not None and not include.get("if"))

    def collect(self, gtype: GraphQLObjectType, nodes: list[FieldNode]) -> dict[str, list]:
        out: dict[str, list[FieldNode]] = {}

        def walk(selection_set, seen: set[str]) -> None:
            for sel in selection_set.selections:
                if not self._include(sel):
                    continue
                if isinstance(sel, FieldNode):
                    key = sel.alias.value if sel.alias else sel.name.value
                    out.setdefault(key, []).append(sel)
                elif isinstance(sel, InlineFragmentNode):
                    if sel.type_condition is None or self._applies(sel.type_condition, gtype):
                        walk(sel.selection_set, seen)
                elif isinstance(sel, FragmentSpreadNode):
                    name = sel.name.value
                    if name in seen:
                        continue
                    seen.add(name)
                    frag = self.fragments[name]
                    if self._applies(frag.type_condition, gtype):
                        walk(frag.selection_set, seen)

        seen: set[str] = set()
        for node in nodes:
            if node.selection_set is not None:
                walk(node.selection_set, seen)
        return out

    def _applies(self, condition, gtype: GraphQLObjectType) -> bool:
        """A fragment on the type itself, or on an interface or union it belongs to
        (`node { ... on Customer { … } ... on Order { … } }`); others select nothing here."""
        named = self.schema.get_type(condition.name.value)
        if named is gtype:
            return True
        return is_abstract_type(named) and self.schema.is_sub_type(named, gtype)

    def args(self, gtype: GraphQLObjectType, nodes: list[FieldNode]) -> dict[str, Any]:
        fdef = gtype.fields[nodes[0].name.value]
        return get_argument_values(fdef, nodes[0], self.variables)

    def page(
        self, gtype: GraphQLObjectType, nodes: list[FieldNode], others: frozenset[str] = frozenset()
    ) -> PageArgs:
        """A connection field's page, read as the field declares its page arguments
        (`paging_of`); arguments other than those and `others`, or bad ones, fall back."""
        paging = paging_of(gtype.fields[nodes[0].name.value])
        if paging is None:
            raise NotCompilable("no page arguments declared")
        given = self.args(gtype, nodes)
        if not given.keys() <= {*paging.names, *others}:
            raise NotCompilable("unknown arguments")
        try:
            return paging.page(given)
        except CodedError as exc:
            raise NotCompilable("bad page arguments") from exc

    def window(self, stmt, ordering: Ordering, args: PageArgs, *, look_ahead: bool):
        """pagination.window (the keyset, fetch order and limit the loaders use), its
        cursors' keyset predicate a recorded segment: decoded per request."""
        if args.after is None and args.before is None:
            return window(stmt, ordering, args, look_ahead=look_ahead)
        bare = dataclasses.replace(args, after=None, before=None)
        if bare.backward != args.backward:  # pragma: no cover - page_args sets a size
            raise NotCompilable("page direction depends on the cursor")
        keyset_sql = self.recorded(keyset_of(ordering), args.after, args.before)
        stmt = stmt.where(literal_column(keyset_sql, Boolean))
        return window(stmt, ordering, bare, look_ahead=look_ahead)

    def check_cursors(self, ordering: Ordering, args: PageArgs) -> None:
        """pagination.check_cursors for a list that may never be read (customerSearch):
        bad cursors fall back whatever is selected; recorded, so checked per request."""
        self.recorded(cursors_checked(ordering), args.after, args.before)

    def object(self, gtype: GraphQLObjectType, nodes: list[FieldNode], src: Source) -> str:
        parts = []
        for key, fnodes in self.collect(gtype, nodes).items():
            name = fnodes[0].name.value
            if name == "__typename":
                parts.append((key, jlit(f'"{gtype.name}"')))
                continue
            parts.append((key, self.field(gtype, name, fnodes, src)))
        return obj_sql(parts)

    def field(self, gtype: GraphQLObjectType, name: str, nodes: list[FieldNode], src: Source):
        relation = self.relations.get(gtype.name, {}).get(name)
        if relation is not None:
            return relation(self, gtype, nodes, src)
        column = self.scalars(gtype).get(name)
        if column is None:
            raise NotCompilable(f"{gtype.name}.{name}")
        fdef = gtype.fields[name]
        if fdef.args and nodes[0].arguments:
            raise NotCompilable("arguments on a scalar")
        named = get_named_type(fdef.type)
        table, exprs = self.computed.get(gtype.name, (None, {}))
        if column in exprs:
            encoder = SCALAR_ENCODERS[named.name]
            nullable = not isinstance(fdef.type, GraphQLNonNull)
            return encoder(computed_sql(self.dated(exprs[column]), table, src.alias), nullable)
        if name == "id" and named.name == "ID":
            return j_gid(gtype.name, src.col(column))
        nullable = src.nullable(column)
        if getattr(named, "values", None) is not None:  # enum
            return j_enum(src.col(column), nullable)
        encoder = SCALAR_ENCODERS.get(named.name)
        if encoder is None:
            raise NotCompilable(f"scalar {named.name}")
        return encoder(src.col(column), nullable)

    def child_type(self, gtype: GraphQLObjectType, name: str) -> GraphQLObjectType:
        t = get_named_type(gtype.fields[name].type)
        if not isinstance(t, GraphQLObjectType):
            raise NotCompilable("abstract type")
        return t

    # -- connections
    def connection(
        self,
        conn_type: GraphQLObjectType,
        nodes: list[FieldNode],
        *,
        table: str,
        node_type: GraphQLObjectType,
        where: list[str],
        ordering: Ordering,
        args: PageArgs,
        src: Source | None = None,
        rows: Any = None,
        node: Callable[[list[FieldNode]], str] | None = None,
    ) -> str:
        """A connection over `table`'s rows matching `where`; or over `rows`, a resolver's
        own select from a sub-select named `table` (`ordering` over its columns), whose
        nodes `node` prints from the selected field nodes."""
        src = src or Source(table)
        n = args.size
        selected = self.collect(conn_type, nodes)
        page_info = any(f[0].name.value == "pageInfo" for f in selected.values())
        fetch = fetch_ordering(ordering, args).order_by()
        if rows is None:
            columns = [literal_column(f"{table}.*")]
            if page_info:  # rows numbered in fetch order, to leave the look-ahead row out
                columns.append(func.row_number().over(order_by=fetch).label("_rn"))
            stmt = select(*columns).select_from(metadata.tables[table])
            stmt = stmt.where(*(literal_column(w, Boolean) for w in where))
            base = " AND ".join(where) or "true"

            def count_sql() -> str:
                return f"SELECT count(*) FROM {table} WHERE {base}"

            cursor = quoted(computed_sql(cursor_sql(ordering), metadata.tables[table], src.alias))
        else:
            stmt = rows.add_columns(func.row_number().over(order_by=fetch).label("_rn"))
            stmt = stmt if page_info else rows

            def count_sql() -> str:  # its parameters only if it is selected
                return f"SELECT count(*) FROM ({self.sql(rows)}) AS _all"

            cursor = quoted(clause_sql(cursor_sql(ordering)))
        windowed = self.window(stmt, ordering, args, look_ahead=page_info)
        # Shown in the ordering's own order, whichever way the rows were fetched.
        shown = clause_sql(*ordering.order_by())
        page = f" FILTER (WHERE _rn <= {n})" if page_info else ""

        aggs: dict[str, str] = {}
        parts: list[tuple[str, str]] = []
        for key, fnodes in selected.items():
            name = fnodes[0].name.value
            if name == "__typename":
                parts.append((key, jlit(f'"{conn_type.name}"')))
            elif name == "totalCount":
                parts.append((key, f"({count_sql()})::text"))
            elif name in ("edges", "nodes"):
                if name == "edges":
                    edge_type = self.child_type(conn_type, "edges")
                    item = self.edge(edge_type, fnodes, node_type, src, cursor, node)
                elif node is not None:
                    item = node(fnodes)
                else:
                    item = self.object(node_type, fnodes, src)
                agg = f"_a{len(aggs)}"
                aggs[agg] = f"string_agg({item}, ',' ORDER BY {shown}){page}"
                parts.append((key, array_sql(agg)))
            elif name == "pageInfo":
                aggs.setdefault("_cnt", "count(*)")
                aggs.setdefault("_cur", f"array_agg({cursor} ORDER BY {shown}){page}")
                has_next, has_previous = (
                    jlit("true" if flag else "false") if isinstance(flag, bool) else flag
                    for flag in page_flags(args, f"(_cnt > {n})::text")
                )
                info_type = self.child_type(conn_type, "pageInfo")
                info = []
                for ikey, inodes in self.collect(info_type, fnodes).items():
                    iname = inodes[0].name.value
                    value = {
                        "__typename": jlit('"PageInfo"'),
                        "hasNextPage": has_next,
                        "hasPreviousPage": has_previous,
                        "startCursor": "coalesce(_cur[1], 'null')",
                        "endCursor": "coalesce(_cur[cardinality(_cur)], 'null')",
                    }.get(iname)
                    if value is None:
                        raise NotCompilable(f"PageInfo.{iname}")
                    info.append((ikey, value))
                parts.append((key, obj_sql(info)))
            else:
                raise NotCompilable(f"{conn_type.name}.{name}")
        if not aggs:
            return obj_sql(parts)
        inner = self.sql(windowed)  # its parameters only if its rows are read
        agg_list = ", ".join(f"{expr} AS {name}" for name, expr in aggs.items())
        return f"(SELECT {obj_sql(parts)} FROM (SELECT {agg_list} FROM ({inner}) AS {table}) _p)"

    def edge(self, edge_type, nodes, node_type, src: Source, cursor: str, node=None) -> str:
        parts = []
        for key, fnodes in self.collect(edge_type, nodes).items():
            name = fnodes[0].name.value
            if name == "__typename":
                parts.append((key, jlit(f'"{edge_type.name}"')))
            elif name == "cursor":
                parts.append((key, cursor))
            elif name == "node":
                item = node(fnodes) if node is not None else self.object(node_type, fnodes, src)
                parts.append((key, item))
            else:
                raise NotCompilable(f"{edge_type.name}.{name}")
        return obj_sql(parts)
