"""The compiled read path: a validated query becomes ONE SQL statement that prints the JSON.

The planner walks the operation's selection (fragments, aliases, @include/@skip and
variables resolved here); every field it meets must be declared compilable below, or
the whole operation falls back to Strawberry (`NotCompilable`). Argument errors (page
sizes, cursors, global IDs) also fall back, so error responses are Strawberry's own.

The SQL builds the response text by concatenation, in selection order, exactly as the
dataloader path's orjson prints it (compact, `"20.00"` decimals, PostgreSQL's JSON
timestamps (`resolvers.datetimes`), base64url cursors). jsonb / json_build_object are
not used: they print spaces or reorder keys.

Which column backs a field is read from `schema.base.columns_of` (the same map
`from_row` uses); relations are declared in `RELATIONS`; scoping is
`resolvers/scope.py`, compiled into each sub-select.
"""

from __future__ import annotations

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
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSkipDirective,
    InlineFragmentNode,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    is_abstract_type,
)
from graphql.execution.values import get_argument_values, get_directive_values
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from strawberry import relay
from strawberry.utils.str_converters import to_camel_case

from models import enums
from resolvers import accounts as account_q
from resolvers import customers as customer_q
from resolvers import ledger as ledger_q
from resolvers import orders as order_q
from resolvers import search as search_q
from resolvers import timeline as timeline_q
from resolvers.errors import CodedError
from resolvers.pagination import Ordering, PageArgs, decode_cursor, page_args
from resolvers.scope import scope_accounts, scope_children, scope_customers, scope_users
from resolvers.viewer import Viewer
from schema.base import _TYPES, columns_of, decode_id

NESTED_PAGE = 10
_DIALECT = postgresql.dialect()
_ASYNCPG = asyncpg_dialect.dialect()
_SENTINEL = 987654321987  # stands for the viewer's id while a scope predicate is compiled


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

    def bind(self, viewer: Viewer) -> list[Any]:
        params = list(self.params)
        if self.viewer_slot is not None:
            params[self.viewer_slot] = viewer.user_id
        if self.today_slot is not None:
            params[self.today_slot] = dt.date.today()
        return params


# ---------------------------------------------------------------------------------------
# JSON text encoders: SQL expression -> SQL expression of its JSON text (never NULL)
#
# A value is SQL text; a `Json` value also keeps its pieces (literal JSON text and SQL
# expressions), so an object inlines its fields' pieces, nested objects included, into
# one `format()` call: a page of 14,000 fields then costs a quarter less than chains of
# `||`, each of which copies the string built so far.

Piece = tuple[bool, str]  # (True, literal JSON text) or (False, SQL expression of JSON text)
_FORMAT_ARGS = 90  # format() takes at most 99 arguments after its format string


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Json(str):
    """The SQL text of a JSON value, built from pieces a parent can inline."""

    pieces: tuple[Piece, ...]

    def __new__(cls, pieces: list[Piece]) -> Json:
        merged: list[Piece] = []
        for piece in pieces:
            if piece[0] and merged and merged[-1][0]:
                merged[-1] = (True, merged[-1][1] + piece[1])
            else:
                merged.append(piece)
        self = super().__new__(cls, _render(merged))
        self.pieces = tuple(merged)
        return self


def _render(pieces: list[Piece]) -> str:
    if len(pieces) == 1:
        literal, text = pieces[0]
        return lit(text) if literal else text
    calls, fmt, args = [], "", []
    for literal, text in pieces:
        if literal:
            fmt += text.replace("%", "%%")
            continue
        if len(args) == _FORMAT_ARGS:
            calls.append(f"format({lit(fmt)}, {', '.join(args)})")
            fmt, args = "", []
        fmt += "%s"
        args.append(f"({text})")
    calls.append(f"format({lit(fmt)}, {', '.join(args)})" if args else lit(fmt))
    return " || ".join(calls)


def pieces_of(value: str) -> tuple[Piece, ...]:
    return value.pieces if isinstance(value, Json) else ((False, value),)


def jlit(text: str) -> Json:
    return Json([(True, text)])


def quoted(e: str) -> Json:
    """A JSON string around an expression whose text needs no escaping (numbers, enums,
    base64)."""
    return Json([(True, '"'), (False, e), (True, '"')])


def _or_null(text: str, nullable: bool) -> str:
    return f"coalesce({text}, 'null')" if nullable else text


def j_str(e: str, nullable: bool = True) -> str:
    return _or_null(f"to_json({e})::text", nullable)


def j_raw(e: str, nullable: bool = True) -> str:  # int, bool: their text is their JSON
    return _or_null(f"({e})::text", nullable)


def j_dec(e: str, nullable: bool = True) -> str:
    # Decimal scalars are JSON strings: str(Decimal) == numeric text
    if nullable:
        return f"coalesce('\"' || ({e})::text || '\"', 'null')"
    return quoted(f"({e})::text")


def j_enum(e: str, nullable: bool = True) -> str:
    # Enum labels are upper-case identifiers: nothing to escape.
    return j_str(e) if nullable else quoted(f"({e})::text")


def j_dt(e: str, nullable: bool = True) -> str:
    """PostgreSQL's own JSON timestamp (ISO 8601, session TimeZone UTC), which
    `resolvers.datetimes.iso_datetime` prints on the field-by-field path too."""
    return j_str(e, nullable)


def b64(e: str) -> str:
    return f"translate(encode(convert_to({e}, 'UTF8'), 'base64'), E'\\n', '')"


def j_gid(type_name: str, e: str) -> str:
    return quoted(b64(lit(type_name + ":") + f" || ({e})::text"))


SCALAR_ENCODERS: dict[str, Callable[[str], str]] = {
    "String": j_str,
    "Int": j_raw,
    "Boolean": j_raw,
    "Float": j_raw,
    "Decimal": j_dec,
    "DateTime": j_dt,
    "Date": j_str,
    "UUID": j_str,
}


def obj_sql(parts: list[tuple[str, str]]) -> Json:
    """{"k":v,"k2":v2} as one format() call, nested objects inlined."""
    pieces: list[Piece] = [(True, "{")]
    for i, (key, value) in enumerate(parts):
        pieces.append((True, ("," if i else "") + f'"{key}":'))
        pieces.extend(pieces_of(value))
    pieces.append((True, "}"))
    return Json(pieces)


def array_sql(agg: str) -> Json:
    """[…] around a string_agg of items (NULL when there are none)."""
    return Json([(True, "["), (False, f"coalesce({agg}, '')"), (True, "]")])


def list_sql(item: str, from_where: str, order: str) -> str:
    agg = f"string_agg({item}, ',' ORDER BY {order})"
    return f"(SELECT {array_sql(agg)} {from_where})"


def nullable_sql(item: str, from_where: str) -> str:
    return f"coalesce((SELECT {item} {from_where} LIMIT 1), 'null')"


# ---------------------------------------------------------------------------------------
# Scoping: the predicates of resolvers/scope.py, compiled once per (table, role)


class _Ctx:
    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer


def _where_text(stmt) -> str | None:
    clause = stmt.whereclause
    if clause is None:
        return None
    return str(clause.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}))


@functools.cache
def _scope_template(kind: str, table_name: str, role: enums.Role) -> str | None:
    from models import metadata

    viewer = Viewer(user_id=_SENTINEL, role=role)
    table = metadata.tables[table_name]
    if kind == "customer":
        stmt = scope_customers(select(table), viewer)
    elif kind == "child":
        stmt = scope_children(select(table), viewer, table.c.customer_id)
    elif kind == "account":
        stmt = scope_accounts(select(table), viewer)
    elif kind == "payment_method":
        stmt = account_q.visible_payment_methods(_Ctx(viewer))
    elif kind == "user":
        stmt = scope_users(select(table), viewer)
    else:  # pragma: no cover
        raise ValueError(kind)
    return _where_text(stmt)


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


class Builder:
    def __init__(self, schema, fragments, variables: dict[str, Any], viewer: Viewer) -> None:
        self.schema = schema
        self.fragments: dict[str, FragmentDefinitionNode] = fragments
        self.variables = variables  # a graphql-core VariableValues
        self.viewer = viewer
        self.params: list[Any] = []
        self._uid: str | None = None
        self._today: str | None = None
        self.viewer_slot: int | None = None
        self.today_slot: int | None = None

    # -- parameters
    def param(self, value: Any, cast: str) -> str:
        self.params.append(value)
        return f"${len(self.params)}::{cast}"

    def today(self) -> str:
        if self._today is None:
            self._today = self.param(dt.date.today(), "date")
            self.today_slot = len(self.params) - 1
        return self._today

    def viewer_param(self) -> str:
        """The viewer's id, a parameter bound per request (Statement.bind)."""
        if self._uid is None:
            self._uid = self.param(self.viewer.user_id, "bigint")
            self.viewer_slot = len(self.params) - 1
        return self._uid

    def scope(self, kind: str, table: str) -> str:
        template = _scope_template(kind, table, self.viewer.role)
        if template is None:
            return "true"
        if str(_SENTINEL) in template:
            template = template.replace(str(_SENTINEL), self.viewer_param())
        return f"({template})"

    def customer_clauses(self, clauses: list) -> str:
        """SQLAlchemy clauses over `customer` as SQL text, their binds renumbered as this
        statement's parameters (enums through their bind processors)."""
        compiled = (
            select(customer_q.customer.c.id)
            .where(*clauses)
            .compile(dialect=_ASYNCPG, compile_kwargs={"render_postcompile": True})
        )
        head = "SELECT customer.id \nFROM customer \nWHERE "
        if not compiled.string.startswith(head):  # pragma: no cover - SQLAlchemy changed
            raise NotCompilable("unexpected clause SQL")
        names = compiled.positiontup or []
        values = compiled.params
        processors = compiled._bind_processors

        def renumber(match: re.Match) -> str:
            name = names[int(match[1]) - 1]
            process = processors.get(name) or processors.get(re.sub(r"_\d+$", "", name))
            value = values[name]
            self.params.append(process(value) if process else value)
            return f"${len(self.params)}"

        return "(" + re.sub(r"\$(\d+)", renumber, compiled.string[len(head) :]) + ")"

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
        relation = RELATIONS.get(gtype.name, {}).get(name)
        if relation is not None:
            return relation(self, gtype, nodes, src)
        column = scalar_columns(gtype.name).get(name)
        if column is None:
            raise NotCompilable(f"{gtype.name}.{name}")
        fdef = gtype.fields[name]
        if fdef.args and nodes[0].arguments:
            raise NotCompilable("arguments on a scalar")
        named = get_named_type(fdef.type)
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
    ) -> str:
        src = src or Source(table)
        n = args.size
        backward = args.backward
        conds = list(where)
        cols = [f"{table}.{c.name}" for c in ordering.columns]
        casts = [c.type.compile(dialect=_DIALECT) for c in ordering.columns]

        def keyset(values: list[Any], descending: bool) -> str:
            bound = ", ".join(self.param(v, t) for v, t in zip(values, casts, strict=True))
            return f"({', '.join(cols)}) {'<' if descending else '>'} ({bound})"

        try:
            if args.after is not None:
                conds.append(
                    keyset(decode_cursor(ordering, args.after, "after"), ordering.descending)
                )
            if args.before is not None:
                values = decode_cursor(ordering, args.before, "before")
                conds.append(keyset(values, not ordering.descending))
        except CodedError as exc:
            raise NotCompilable("bad cursor") from exc
        fetch_desc = ordering.descending != backward
        order = ", ".join(f"{c} {'DESC' if fetch_desc else 'ASC'}" for c in cols)
        inner = (
            f"SELECT {table}.*, row_number() OVER (ORDER BY {order}) AS _rn FROM {table}"
            f" WHERE {' AND '.join(conds) or 'true'} ORDER BY {order} LIMIT {n + 1}"
        )
        shown = f"_rn {'DESC' if backward else 'ASC'}"
        cursor = self.cursor(ordering, src)

        aggs: dict[str, str] = {}
        parts: list[tuple[str, str]] = []
        for key, fnodes in self.collect(conn_type, nodes).items():
            name = fnodes[0].name.value
            if name == "__typename":
                parts.append((key, jlit(f'"{conn_type.name}"')))
            elif name == "totalCount":
                base = " AND ".join(where) or "true"
                parts.append((key, f"(SELECT count(*) FROM {table} WHERE {base})::text"))
            elif name in ("edges", "nodes"):
                if name == "edges":
                    edge_type = self.child_type(conn_type, "edges")
                    item = self.edge(edge_type, fnodes, node_type, src, cursor)
                else:
                    item = self.object(node_type, fnodes, src)
                agg = f"_a{len(aggs)}"
                aggs[agg] = f"string_agg({item}, ',' ORDER BY {shown}) FILTER (WHERE _rn <= {n})"
                parts.append((key, array_sql(agg)))
            elif name == "pageInfo":
                aggs.setdefault("_cnt", "count(*)")
                aggs.setdefault(
                    "_cur", f"array_agg({cursor} ORDER BY {shown}) FILTER (WHERE _rn <= {n})"
                )
                more = f"(_cnt > {n})::text"
                given_after = jlit("true" if args.after is not None else "false")
                given_before = jlit("true" if args.before is not None else "false")
                info_type = self.child_type(conn_type, "pageInfo")
                info = []
                for ikey, inodes in self.collect(info_type, fnodes).items():
                    iname = inodes[0].name.value
                    value = {
                        "__typename": jlit('"PageInfo"'),
                        "hasNextPage": given_before if backward else more,
                        "hasPreviousPage": more if backward else given_after,
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
        agg_list = ", ".join(f"{expr} AS {name}" for name, expr in aggs.items())
        return f"(SELECT {obj_sql(parts)} FROM (SELECT {agg_list} FROM ({inner}) AS {table}) _p)"

    def edge(self, edge_type, nodes, node_type, src: Source, cursor: str) -> str:
        parts = []
        for key, fnodes in self.collect(edge_type, nodes).items():
            name = fnodes[0].name.value
            if name == "__typename":
                parts.append((key, jlit(f'"{edge_type.name}"')))
            elif name == "cursor":
                parts.append((key, cursor))
            elif name == "node":
                parts.append((key, self.object(node_type, fnodes, src)))
            else:
                raise NotCompilable(f"{edge_type.name}.{name}")
        return obj_sql(parts)

    def cursor(self, ordering: Ordering, src: Source) -> str:
        """pagination.encode_cursor in SQL: base64url(orjson.dumps([values])), no padding."""
        values = []
        for c in ordering.columns:
            kind = c.type.python_type
            ref, nullable = src.col(c.name), src.nullable(c.name)
            if kind is dt.datetime:
                values.append(j_dt(ref, nullable))
            elif kind is int:
                values.append(j_raw(ref, nullable))
            else:
                values.append(j_str(ref, nullable))
        body = " || ',' || ".join(values)
        encoded = (
            f"translate(encode(convert_to('[' || {body} || ']', 'UTF8'), 'base64'), E'+/\\n', '-_')"
        )
        return quoted(f"rtrim({encoded}, '=')")


@functools.cache
def scalar_columns(type_name: str) -> dict[str, str]:
    """GraphQL field name -> column, for the plain (resolver-less) fields of a type."""
    cls = _TYPES.get(type_name) or _EXTRA_TYPES().get(type_name)
    if cls is None:
        return {}
    columns = dict(columns_of(cls))
    out = {"id": "id"} if issubclass(cls, relay.Node) else {}
    for f in cls.__strawberry_definition__.fields:
        if f.python_name not in columns:
            continue
        if f.base_resolver is not None:
            continue
        out[f.graphql_name or to_camel_case(f.python_name)] = columns[f.python_name]
    return out


@functools.cache
def _EXTRA_TYPES() -> dict[str, type]:
    from schema.accounts import BillingAddress, BillingContact
    from schema.base import Money
    from schema.tax import TaxStatus

    return {
        "BillingContact": BillingContact,
        "BillingAddress": BillingAddress,
        "Money": Money,
        "TaxStatus": TaxStatus,
    }


# ---------------------------------------------------------------------------------------
# Relations: field -> SQL, per type


PAGE_ARGS = frozenset(("first", "after", "last", "before"))


def _page(b: Builder, gtype, nodes, default: int) -> PageArgs:
    a = b.args(gtype, nodes)
    if not a.keys() <= PAGE_ARGS:
        raise NotCompilable("unknown arguments")
    try:
        return page_args(
            a.get("first"), a.get("after"), a.get("last"), a.get("before"), default=default
        )
    except CodedError as exc:
        raise NotCompilable("bad page arguments") from exc


def _money(amount: str, currency: str = "currency"):
    def build(b: Builder, gtype, nodes, src: Source) -> str:
        money = b.child_type(gtype, nodes[0].name.value)
        inner = Source(src.alias, {"amount": src.col(amount), "currency": src.col(currency)})
        return b.object(money, nodes, inner)

    return build


def _child_list(table: str, order: str):
    def build(b: Builder, gtype, nodes, src: Source) -> str:
        t = b.child_type(gtype, nodes[0].name.value)
        where = f"{table}.customer_id = {src.col('id')} AND {b.scope('child', table)}"
        item = b.object(t, nodes, Source(table))
        return list_sql(item, f"FROM {table} WHERE {where}", order)

    return build


def _child_connection(table: str, ordering: Ordering):
    def build(b: Builder, gtype, nodes, src: Source) -> str:
        conn = b.child_type(gtype, nodes[0].name.value)
        node_type = b.child_type(conn, "nodes")
        args = _page(b, gtype, nodes, NESTED_PAGE)
        where = [f"{table}.customer_id = {src.col('id')}", b.scope("child", table)]
        return b.connection(
            conn, nodes, table=table, node_type=node_type, where=where, ordering=ordering, args=args
        )

    return build


def _user(fk: str):
    def build(b: Builder, gtype, nodes, src: Source) -> str:
        t = b.child_type(gtype, nodes[0].name.value)
        where = f"FROM app_user WHERE app_user.id = {src.col(fk)} AND {b.scope('user', 'app_user')}"
        return nullable_sql(b.object(t, nodes, Source("app_user")), where)

    return build


def _display_name_customer(b, gtype, nodes, src: Source) -> str:
    c = src.col
    person = (
        f"nullif(concat_ws(' ', nullif({c('first_name')}, ''), nullif({c('last_name')}, '')), '')"
    )
    company = f"nullif({c('company_name')}, '')"
    return j_str(
        f"CASE WHEN {c('kind')} = 'BUSINESS' AND {company} IS NOT NULL THEN {company}"
        f" ELSE coalesce({person}, {company}, nullif({c('email')}::text, ''), {c('number')}) END"
    )


def _display_name_user(b, gtype, nodes, src: Source) -> str:
    c = src.col
    person = (
        f"nullif(concat_ws(' ', nullif({c('first_name')}, ''), nullif({c('last_name')}, '')), '')"
    )
    return j_str(f"coalesce({person}, {c('email')}::text)")


def _account(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "account")
    scope = b.scope("account", "account")
    where = f"FROM account WHERE account.id = {src.col('account_id')} AND {scope}"
    return nullable_sql(b.object(t, nodes, Source("account")), where)


def _billing_contact(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "billingContact")
    cols = {"name": "billing_contact_name", "email": "billing_email", "phone": "billing_phone"}
    return b.object(t, nodes, Source(src.alias, {k: src.col(v) for k, v in cols.items()}))


def _billing_address(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "billingAddress")
    names = ("line1", "line2", "city", "region", "postal_code", "country")
    inner = Source(src.alias, {k: src.col(f"billing_{k}") for k in names})
    value = b.object(t, nodes, inner)
    return f"CASE WHEN {src.col('billing_line1')} IS NULL THEN 'null' ELSE {value} END"


def _payment_methods(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "paymentMethods")
    where = (
        f"FROM payment_method WHERE payment_method.account_id = {src.col('id')}"
        f" AND {b.scope('payment_method', 'payment_method')}"
    )
    item = b.object(t, nodes, Source("payment_method"))
    return list_sql(item, where, "payment_method.is_default DESC, payment_method.id")


def _sales_channels(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "salesChannels")
    where = (
        "FROM sales_channel JOIN customer_sales_channel"
        " ON customer_sales_channel.sales_channel_id = sales_channel.id"
        f" WHERE customer_sales_channel.customer_id = {src.col('id')}"
    )
    item = b.object(t, nodes, Source("sales_channel"))
    return list_sql(item, where, "sales_channel.name, sales_channel.id")


def _balances(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "balances")
    latest = (
        "SELECT DISTINCT ON (ledger_transaction.currency) ledger_transaction.currency,"
        " ledger_transaction.balance_after FROM ledger_transaction"
        f" WHERE ledger_transaction.customer_id = {src.col('id')}"
        f" AND {b.scope('child', 'ledger_transaction')}"
        " ORDER BY ledger_transaction.currency, ledger_transaction.id DESC"
    )
    item = b.object(t, nodes, Source("_bal", {"amount": "_bal.balance_after"}))
    return list_sql(item, f"FROM ({latest}) AS _bal", "_bal.currency")


def _custom_fields(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "customFields")
    where = (
        "FROM custom_field_value JOIN custom_field_definition"
        " ON custom_field_definition.id = custom_field_value.definition_id"
        f" WHERE custom_field_value.customer_id = {src.col('id')}"
        f" AND {b.scope('child', 'custom_field_value')}"
    )
    d = "custom_field_definition"
    inner = Source(
        "custom_field_value", {k: f"{d}.{k}" for k in ("key", "label", "type", "archived")}
    )
    return list_sql(b.object(t, nodes, inner), where, f"{d}.archived, {d}.position, {d}.key")


def _custom_value(b, gtype, nodes, src: Source) -> str:
    c = src.col
    return j_str(
        f"coalesce({c('text_value')}, ({c('number_value')})::text,"
        f" to_json({c('date_value')}) #>> '{{}}',"
        f" CASE WHEN {c('boolean_value')} THEN 'true' ELSE 'false' END)"
    )


def _tax_status(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "taxStatus")
    return b.object(t, nodes, Source(src.alias, {"status": src.col("tax_status")}))


def _certificates(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "exemptionCertificates")
    table = "tax_exemption_certificate"
    where = (
        f"FROM {table} WHERE {table}.customer_id = {src.col('id')} AND {b.scope('child', table)}"
    )
    item = b.object(t, nodes, Source(table))
    return list_sql(item, where, f"{table}.valid_from DESC, {table}.id")


def _is_valid(b: Builder, gtype, nodes, src: Source) -> str:
    c, today = src.col, b.today()
    return (
        f"({c('revoked_at')} IS NULL AND {c('valid_from')} <= {today}"
        f" AND ({c('valid_to')} IS NULL OR {today} <= {c('valid_to')}))::text"
    )


def _lines(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "lines")
    where = (
        f"FROM order_line WHERE order_line.order_id = {src.col('id')}"
        f" AND {b.scope('child', 'order_line')}"
    )
    item = b.object(t, nodes, Source("order_line", {"currency": src.col("currency")}))
    return list_sql(item, where, "order_line.position, order_line.id")


def _sales_channel(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "salesChannel")
    where = f"FROM sales_channel WHERE sales_channel.id = {src.col('sales_channel_id')}"
    return nullable_sql(b.object(t, nodes, Source("sales_channel")), where)


def _ledger_order(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "order")
    where = f"FROM orders WHERE orders.id = {src.col('order_id')} AND {b.scope('child', 'orders')}"
    return nullable_sql(b.object(t, nodes, Source("orders")), where)


RELATIONS: dict[str, dict[str, Callable[..., str]]] = {
    "Customer": {
        "displayName": _display_name_customer,
        "account": _account,
        "salesRep": _user("sales_rep_id"),
        "salesChannels": _sales_channels,
        "addresses": _child_list("address", "address.is_default DESC, address.kind, address.id"),
        "orders": _child_connection("orders", order_q.NEWEST_FIRST),
        "ledgerTransactions": _child_connection("ledger_transaction", ledger_q.NEWEST_FIRST),
        "timeline": _child_connection("timeline_event", timeline_q.NEWEST_FIRST),
        "balances": _balances,
        "customFields": _custom_fields,
        "taxStatus": _tax_status,
    },
    "Account": {
        "billingContact": _billing_contact,
        "billingAddress": _billing_address,
        "paymentMethods": _payment_methods,
    },
    "User": {"displayName": _display_name_user},
    "Order": {
        **{
            to_camel_case(m): _money(m)
            for m in (
                "subtotal",
                "tax_total",
                "shipping_total",
                "total",
                "amount_paid",
                "amount_refunded",
            )
        },
        "lines": _lines,
        "salesChannel": _sales_channel,
    },
    "OrderLine": {"unitPrice": _money("unit_price"), "lineTotal": _money("line_total")},
    "LedgerTransaction": {
        "amount": _money("amount"),
        "balanceAfter": _money("balance_after"),
        "order": _ledger_order,
    },
    "CustomFieldValue": {"value": _custom_value},
    "TaxStatus": {"exemptionCertificates": _certificates},
    "TaxExemptionCertificate": {"isValid": _is_valid},
    "TimelineEvent": {"actor": _user("actor_id")},
}


# ---------------------------------------------------------------------------------------
# Root fields


def _filter_criteria(raw: dict[str, Any]) -> search_q.Criteria:
    """The field-by-field path's own `CustomerFilter.criteria()`, from graphql-core's
    argument dict (so a new filter field can never be silently ignored here)."""
    from schema.search import CustomerFilter

    kwargs = {}
    for f in CustomerFilter.__strawberry_definition__.fields:
        name = f.graphql_name or to_camel_case(f.python_name)
        if name in raw:
            kwargs[f.python_name] = raw[name]
    if kwargs.get("custom_fields"):
        raise NotCompilable("custom-field criteria look their definitions up first")
    try:
        return CustomerFilter(**kwargs).criteria()
    except CodedError as exc:
        raise NotCompilable("bad filter") from exc


def _root_customers(b: Builder, gtype, nodes) -> str:
    a = b.args(gtype, nodes)
    raw_filter = a.pop("filter", None)
    if not a.keys() <= PAGE_ARGS | {"orderBy"}:
        raise NotCompilable("unknown arguments")
    order_by = a.get("orderBy") or {}
    if not order_by.keys() <= {"field", "direction"}:
        raise NotCompilable("unknown orderBy fields")
    field_ = getattr(order_by.get("field"), "value", order_by.get("field")) or "NAME"
    direction = getattr(order_by.get("direction"), "value", order_by.get("direction")) or "ASC"
    try:
        columns = customer_q.SORT_COLUMNS[customer_q.CustomerOrderField(field_)]
    except (KeyError, ValueError) as exc:
        raise NotCompilable("unknown order") from exc
    ordering = Ordering(columns, direction == "DESC")
    try:
        args = page_args(a.get("first"), a.get("after"), a.get("last"), a.get("before"))
    except CodedError as exc:
        raise NotCompilable("bad page arguments") from exc
    conn = b.child_type(gtype, nodes[0].name.value)
    if raw_filter is None:
        where = ["customer.status <> 'MERGED'"]
    else:  # the search screen's own clauses (resolvers/search.py), as this statement's SQL
        try:
            clauses = search_q.plain_conditions(_filter_criteria(raw_filter))
        except CodedError as exc:
            raise NotCompilable("bad filter") from exc
        where = [b.customer_clauses(clauses)]
    where.append(b.scope("customer", "customer"))
    return b.connection(
        conn,
        nodes,
        table="customer",
        node_type=b.child_type(conn, "nodes"),
        where=where,
        ordering=ordering,
        args=args,
    )


def _root_customer(b: Builder, gtype, nodes) -> str:
    a = b.args(gtype, nodes)
    if not a.keys() <= {"id", "number", "email"}:
        raise NotCompilable("unknown arguments")
    given = {k: v for k, v in a.items() if v is not None}
    if len(given) != 1:
        raise NotCompilable("exactly one of id/number/email")
    scope = b.scope("customer", "customer")
    if "id" in given:
        try:
            pk = decode_id(given["id"], "Customer", "id")
        except CodedError as exc:
            raise NotCompilable("bad id") from exc
        if not -(2**63) <= pk < 2**63:
            raise NotCompilable("id out of range")
        first = f"customer.id = {b.param(pk, 'bigint')}"
        pick = ""
    elif "number" in given:
        first = f"customer.number = {b.param(given['number'], 'text')}"
        pick = ""
    else:  # a live owner of the email first, else the newest merged one that had it
        first = f"customer.email = ({b.param(given['email'], 'text')})::citext"
        pick = " ORDER BY customer.status = 'MERGED', customer.id DESC LIMIT 1"
    # A merged customer leads to its survivor (at most 10 hops, each through the scope).
    chain = (
        "WITH RECURSIVE chain(id, next, depth) AS ("
        f"(SELECT customer.id, customer.merged_into_id, 0 FROM customer WHERE {first}"
        f" AND {scope}{pick})"
        " UNION ALL SELECT customer.id, customer.merged_into_id, chain.depth + 1"
        " FROM customer JOIN chain ON customer.id = chain.next"
        f" WHERE chain.depth < 10 AND {scope})"
        " SELECT id FROM chain WHERE next IS NULL OR depth = 10 ORDER BY depth DESC LIMIT 1"
    )
    t = b.child_type(gtype, "customer")
    return nullable_sql(
        b.object(t, nodes, Source("customer")),
        f"FROM customer WHERE customer.id = ({chain}) AND {scope}",
    )


# Node types readable by id straight from their table: (table, scope kind or None). Each
# mirrors its `resolve_nodes` loader (schema/*.py): the table's rows through the scope.
NODE_TABLES: dict[str, tuple[str, str | None]] = {
    "Customer": ("customer", "customer"),
    "Account": ("account", "account"),
    "PaymentMethod": ("payment_method", "payment_method"),
    "Address": ("address", "child"),
    "Order": ("orders", "child"),
    "LedgerTransaction": ("ledger_transaction", "child"),
    "TimelineEvent": ("timeline_event", "child"),
    "TaxExemptionCertificate": ("tax_exemption_certificate", "child"),
    "SalesChannel": ("sales_channel", None),
    "User": ("app_user", "user"),
}
MAX_NODES = 100  # `nodes(ids:)` with more ids takes the field-by-field path


def _by_id(b: Builder, type_name: str, pk_sql: str, nodes) -> str:
    """One object of a node type by primary key through its scope, or null."""
    spec = NODE_TABLES.get(type_name)
    if spec is None:
        raise NotCompilable(f"node of type {type_name}")
    table, scope = spec
    t = b.schema.get_type(type_name)
    where = f"{table}.id = {pk_sql}" + (f" AND {b.scope(scope, table)}" if scope else "")
    return nullable_sql(b.object(t, nodes, Source(table)), f"FROM {table} WHERE {where}")


def _global_id(value: Any) -> tuple[str, int]:
    try:
        gid = relay.GlobalID.from_id(value)
        pk = int(gid.node_id)
    except Exception as exc:
        raise NotCompilable("bad global id") from exc
    if not -(2**63) <= pk < 2**63:
        raise NotCompilable("id out of range")
    return gid.type_name, pk


def _root_node(b: Builder, gtype, nodes) -> str:
    type_name, pk = _global_id(b.args(gtype, nodes)["id"])
    return _by_id(b, type_name, b.param(pk, "bigint"), nodes)


def _root_nodes(b: Builder, gtype, nodes) -> str:
    ids = b.args(gtype, nodes)["ids"]
    if len(ids) > MAX_NODES:
        raise NotCompilable("too many ids")
    pieces: list[Piece] = [(True, "[")]
    for i, value in enumerate(ids):
        type_name, pk = _global_id(value)
        pieces += [
            (True, "," if i else ""),
            (False, _by_id(b, type_name, b.param(pk, "bigint"), nodes)),
        ]
    return Json([*pieces, (True, "]")])


def _root_order(b: Builder, gtype, nodes) -> str:
    given = {k: v for k, v in b.args(gtype, nodes).items() if v is not None}
    if len(given) != 1 or not given.keys() <= {"id", "number"}:
        raise NotCompilable("exactly one of id/number")
    if "id" not in given:
        number = b.param(given["number"], "text")
        pk = f"(SELECT orders.id FROM orders WHERE orders.number = {number})"
        return _by_id(b, "Order", pk, nodes)
    type_name, pk = _global_id(given["id"])
    if type_name != "Order":
        raise NotCompilable("not an Order id")
    return _by_id(b, "Order", b.param(pk, "bigint"), nodes)


def _root_me(b: Builder, gtype, nodes) -> str:
    me = b.child_type(gtype, "me")
    parts = []
    for key, fnodes in b.collect(me, nodes).items():
        name = fnodes[0].name.value
        if name == "__typename":
            parts.append((key, jlit('"Me"')))
            continue
        uid = b.viewer_param()
        if name == "user":
            parts.append((key, _by_id(b, "User", uid, fnodes)))
        elif name == "customer":
            t = b.child_type(me, "customer")
            where = f"customer.user_id = {uid} AND {b.scope('customer', 'customer')}"
            item = b.object(t, fnodes, Source("customer"))
            parts.append((key, nullable_sql(item, f"FROM customer WHERE {where}")))
        else:
            raise NotCompilable(f"Me.{name}")
    return obj_sql(parts)


ROOTS: dict[str, Callable[[Builder, GraphQLObjectType, list[FieldNode]], str]] = {
    "customers": _root_customers,
    "customer": _root_customer,
    "node": _root_node,
    "nodes": _root_nodes,
    "order": _root_order,
    "me": _root_me,
}


def compile_operation(
    schema, document, operation: OperationDefinitionNode, variables, viewer: Viewer
) -> Statement:
    """The one statement returning the response's JSON (`{"data":…}`) as bytes."""
    if operation.operation is not OperationType.QUERY:
        raise NotCompilable("not a query")
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    b = Builder(schema, fragments, variables, viewer)
    query_type = schema.query_type
    fake = FieldNode(name=NameNode(value="query"), selection_set=operation.selection_set)
    parts = []
    for key, fnodes in b.collect(query_type, [fake]).items():
        name = fnodes[0].name.value
        if name == "__typename":
            parts.append((key, jlit('"Query"')))
            continue
        root = ROOTS.get(name)
        if root is None:
            raise NotCompilable(f"Query.{name}")
        parts.append((key, root(b, query_type, fnodes)))
    if not parts:
        raise NotCompilable("empty")
    # The whole response, as UTF-8 bytes that server/compiled.py sends as they are (no
    # decoding into a str and encoding back: a page is hundreds of kilobytes).
    data = Json([(True, '{"data":'), *pieces_of(obj_sql(parts)), (True, "}")])
    sql = f"SELECT convert_to({data}, 'UTF8')"
    return Statement(sql, tuple(b.params), b.viewer_slot, b.today_slot)


__all__ = [
    "GraphQLList",
    "GraphQLNonNull",
    "NotCompilable",
    "compile_operation",
]
