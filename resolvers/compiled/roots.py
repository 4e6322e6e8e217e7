"""Root fields that compile: `ROOTS` (at the end) names each with its builder; any other
root field is answered by Strawberry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLObjectType,
)
from sqlalchemy import Boolean, literal_column, select

from models.enums import TaxStatus
from resolvers import accounts as account_q
from resolvers import customers as customer_q
from resolvers import duplicates as dup_q
from resolvers import search as search_q
from resolvers import tax as tax_q
from resolvers.compiled.builder import Builder, Source
from resolvers.compiled.json_text import (
    Json,
    Piece,
    j_float,
    j_str,
    jlit,
    list_sql,
    nullable_sql,
    obj_sql,
    quoted,
)
from resolvers.compiled.sql_text import clause_sql
from resolvers.compiled.statement import NotCompilable, Params
from resolvers.errors import CodedError
from resolvers.global_ids import decode_global_id, decode_id
from resolvers.pagination import Ordering
from resolvers.scope import ScopeKind

# ---------------------------------------------------------------------------------------
# Root fields


def _filter_criteria(raw: dict[str, Any]) -> search_q.Criteria:
    """The field-by-field path's own `CustomerFilter.criteria()`, from graphql-core's
    argument dict (so a new filter field can never be silently ignored here)."""
    from schema.inputs import from_json
    from schema.search import CustomerFilter

    if raw.get("customFields"):
        raise NotCompilable("custom-field criteria look their definitions up first")
    try:
        return from_json(CustomerFilter, raw).criteria()
    except (CodedError, ValueError, KeyError) as exc:
        raise NotCompilable("bad filter") from exc


def _filter_sql(b: Builder, raw: dict[str, Any]) -> str:
    """The search screen's own clauses (resolvers/search.py) over `customer`, as this
    statement's SQL; bad input falls back so Strawberry answers with its error. Recorded:
    another prefix or country prints the same text with other parameters."""
    return b.recorded(_filter_clauses, raw)


def _filter_clauses(b: Params, raw: dict[str, Any]) -> str:
    try:
        return b.customer_clauses(search_q.plain_conditions(_filter_criteria(raw)))
    except CodedError as exc:
        raise NotCompilable("bad filter") from exc


def _no_saved_search(a: dict[str, Any]) -> None:
    # A saved search is read and re-validated first (resolvers/saved_searches.py): answered
    # field by field.
    if a.pop("savedSearch", None) is not None:
        raise NotCompilable("saved search")


def _root_customers(b: Builder, gtype, nodes) -> str:
    args = b.page(gtype, nodes, frozenset(("orderBy", "filter", "savedSearch")))
    a = b.args(gtype, nodes)
    _no_saved_search(a)
    raw_filter = a.get("filter")
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
    conn = b.child_type(gtype, nodes[0].name.value)
    if raw_filter is None:
        where = [clause_sql(customer_q.LIVE)]
    else:
        where = [_filter_sql(b, raw_filter)]
    where.append(b.scope(ScopeKind.CUSTOMER, "customer"))
    return b.connection(
        conn,
        nodes,
        table="customer",
        node_type=b.child_type(conn, "nodes"),
        where=where,
        ordering=ordering,
        args=args,
    )


def _root_customer_search(b: Builder, gtype, nodes) -> str:
    """The matches when at most the cap match, else RefineSearch: see _search_sql."""
    args = b.page(gtype, nodes, frozenset(("filter", "savedSearch")))
    a = b.args(gtype, nodes)
    _no_saved_search(a)
    ordering = Ordering(customer_q.SORT_COLUMNS[customer_q.CustomerOrderField.NAME])
    b.check_cursors(ordering, args)  # whatever is selected, as the resolver does
    where = [_filter_sql(b, a.get("filter") or {}), b.scope(ScopeKind.CUSTOMER, "customer")]
    return _search_sql(b, nodes, where, ordering, args)


def _lookup(args: dict) -> dict:
    """The arguments naming one object: `by` (a @oneOf input) or the older ones, given."""
    given = {k: v for k, v in args.items() if v is not None}
    by = given.pop("by", None)
    if by is not None:
        if given:
            raise NotCompilable("by with other arguments")  # Strawberry says why
        given = {k: v for k, v in by.items() if v is not None}
    return given


def _root_customer(b: Builder, gtype, nodes) -> str:
    a = b.args(gtype, nodes)
    if not a.keys() <= {"id", "number", "email", "by"}:
        raise NotCompilable("unknown arguments")
    given = _lookup(a)
    if len(given) != 1:
        raise NotCompilable("exactly one of id/number/email")
    scope = b.scope(ScopeKind.CUSTOMER, "customer")
    ((name, value),) = given.items()
    # The value a parameter (bound per request), the lookup's clauses built around it.
    column = customer_q.customer.c[name]
    key = literal_column(b.recorded(_lookup_value(name, column.type), value), column.type)
    lookup = {"pk": None, "number": None, "email": None, "pk" if name == "id" else name: key}
    start = customer_q.lookup(**lookup)
    # customer_q.survivor: a merged customer leads to its survivor, each hop in scope.
    chain = b.sql(customer_q.survivor(start, lambda stmt: stmt.where(literal_column(scope))))
    t = b.child_type(gtype, "customer")
    return nullable_sql(
        b.object(t, nodes, Source("customer")),
        f"FROM customer WHERE customer.id = ({chain}) AND {scope}",
    )


# Node types readable by id straight from their table: (table, scope kind or None). Each
# mirrors its `resolve_nodes` loader (schema/*.py): the table's rows through the scope.
NODE_TABLES: dict[str, tuple[str, ScopeKind | None]] = {
    "Customer": ("customer", ScopeKind.CUSTOMER),
    "Account": ("account", ScopeKind.ACCOUNT),
    "PaymentMethod": ("payment_method", ScopeKind.PAYMENT_METHOD),
    "Address": ("address", ScopeKind.CHILD),
    "Order": ("orders", ScopeKind.CHILD),
    "OrderLine": ("order_line", ScopeKind.CHILD),
    "LedgerTransaction": ("ledger_transaction", ScopeKind.CHILD),
    "TimelineEvent": ("timeline_event", ScopeKind.CHILD),
    "TaxExemptionCertificate": ("tax_exemption_certificate", ScopeKind.CHILD),
    "SalesChannel": ("sales_channel", None),
    "User": ("app_user", ScopeKind.USER),
    "CustomFieldDefinition": ("custom_field_definition", None),
}
# Columns a node reads from another table, as its loader joins them: a line's currency is
# its order's (orders.visible_lines).
NODE_COLUMNS: dict[str, dict[str, str]] = {
    "OrderLine": {
        "currency": "(SELECT orders.currency FROM orders WHERE orders.id = order_line.order_id)"
    },
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
    src = Source(table, NODE_COLUMNS.get(type_name, {}))
    return nullable_sql(b.object(t, nodes, src), f"FROM {table} WHERE {where}")


def _global_id(value: Any) -> tuple[str, int]:
    """The field-by-field path's decoder; a bad ID steps aside so Strawberry answers."""
    try:
        return decode_global_id(value, "id")
    except CodedError as exc:
        raise NotCompilable("bad global id") from exc


def _decoded(value: Any, type_name: str) -> int:
    """The resolvers' own `decode_id`; a bad ID or one of another type steps aside."""
    try:
        return decode_id(value, type_name, "id")
    except CodedError as exc:
        raise NotCompilable("bad global id") from exc


def _node_key(b: Params, value: Any) -> tuple[str, str]:
    """A global ID's type (the planner reads its table) and its key as a parameter."""
    type_name, pk = _global_id(value)
    return type_name, b.param(pk, "bigint")


def _id_key(type_name: str) -> Callable[[Params, Any], str]:
    def produce(b: Params, value: Any) -> str:
        return b.param(_decoded(value, type_name), "bigint")

    return produce


def _lookup_value(name: str, type_: Any) -> Callable[[Params, Any], str]:
    """customer(id|number|email:)'s value as a parameter of the column's type."""

    def produce(b: Params, value: Any) -> str:
        return b.bound(_decoded(value, "Customer") if name == "id" else value, type_)

    return produce


def _root_node(b: Builder, gtype, nodes) -> str:
    type_name, pk = b.recorded(_node_key, b.args(gtype, nodes)["id"])
    return _by_id(b, type_name, pk, nodes)


def _root_nodes(b: Builder, gtype, nodes) -> str:
    ids = b.args(gtype, nodes)["ids"]
    if len(ids) > MAX_NODES:
        raise NotCompilable("too many ids")
    pieces: list[Piece] = [(True, "[")]
    for i, value in enumerate(ids):
        type_name, pk = b.recorded(_node_key, value)
        pieces += [(True, "," if i else ""), (False, _by_id(b, type_name, pk, nodes))]
    return Json([*pieces, (True, "]")])


def _root_order(b: Builder, gtype, nodes) -> str:
    given = _lookup(b.args(gtype, nodes))
    if len(given) != 1 or not given.keys() <= {"id", "number"}:
        raise NotCompilable("exactly one of id/number")
    if "id" not in given:
        number = b.param(given["number"], "text")
        pk = f"(SELECT orders.id FROM orders WHERE orders.number = {number})"
        return _by_id(b, "Order", pk, nodes)
    return _by_id(b, "Order", b.recorded(_id_key("Order"), given["id"]), nodes)


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
            where = f"customer.user_id = {uid} AND {b.scope(ScopeKind.CUSTOMER, 'customer')}"
            item = b.object(t, fnodes, Source("customer"))
            parts.append((key, nullable_sql(item, f"FROM customer WHERE {where}")))
        else:
            raise NotCompilable(f"Me.{name}")
    return obj_sql(parts)


def _root_accounts(b: Builder, gtype, nodes) -> str:
    args = b.page(gtype, nodes, frozenset(("filter",)))
    a = b.args(gtype, nodes)
    if a.get("filter") is None:
        where = b.scope(ScopeKind.ACCOUNT, "account")
    else:  # search.filtered_accounts: accounts of the visible customers that match
        where = (
            "account.id IN (SELECT customer.account_id FROM customer WHERE"
            f" {_filter_sql(b, a['filter'])} AND {b.scope(ScopeKind.CUSTOMER, 'customer')}"
            " AND customer.account_id IS NOT NULL)"
        )
    conn = b.child_type(gtype, nodes[0].name.value)
    return b.connection(
        conn,
        nodes,
        table="account",
        node_type=b.child_type(conn, "nodes"),
        where=[where],
        ordering=account_q.BY_NUMBER,
        args=args,
    )


def _root_sales_channels(b: Builder, gtype, nodes) -> str:
    t = b.child_type(gtype, "salesChannels")
    item = b.object(t, nodes, Source("sales_channel"))
    return list_sql(item, "FROM sales_channel", "sales_channel.name, sales_channel.id")


def _root_sales_reps(b: Builder, gtype, nodes) -> str:
    t = b.child_type(gtype, "salesReps")
    where = (
        "FROM app_user WHERE app_user.role = 'SALES_REP' AND app_user.is_active"
        f" AND {b.scope(ScopeKind.USER, 'app_user')}"
    )
    order = "app_user.last_name, app_user.first_name, app_user.id"
    return list_sql(b.object(t, nodes, Source("app_user")), where, order)


def _root_custom_field_definitions(b: Builder, gtype, nodes) -> str:
    a = b.args(gtype, nodes)
    if not a.keys() <= {"includeArchived"}:
        raise NotCompilable("unknown arguments")
    t = b.child_type(gtype, "customFieldDefinitions")
    d = "custom_field_definition"
    where = f"FROM {d}" + ("" if a.get("includeArchived") else f" WHERE NOT {d}.archived")
    return list_sql(b.object(t, nodes, Source(d)), where, f"{d}.position, {d}.key")


def _root_tax_determination(b: Builder, gtype, nodes) -> str:
    """schema.tax_mutations' resolver: the visible customer, then tax_q.determine's rule
    (its `covering` conditions and order) as sub-selects of that customer's row."""
    a = b.args(gtype, nodes)
    if not a.keys() <= {"customerId", "region", "on"}:
        raise NotCompilable("unknown arguments")
    pk = b.recorded(_id_key("Customer"), a["customerId"])
    try:
        country, subdivision = tax_q.region_of(a["region"])
    except CodedError as exc:  # Strawberry says so (or answers null for an unseen customer)
        raise NotCompilable("bad region") from exc
    cert = tax_q.certificate
    on = literal_column(b.param(a["on"], "date") if a.get("on") else b.today())
    covering = b.sql(
        select(cert.c.id)
        .where(*tax_q.covering(literal_column("customer.id"), country, subdivision, on))
        .where(literal_column(b.scope(ScopeKind.CHILD, cert.name)))
        .order_by(*tax_q.COVERING_ORDER)
        .limit(1)
        .scalar_subquery()
    )
    exempt_status = f"customer.tax_status = '{TaxStatus.EXEMPT.value}'"
    result = b.child_type(gtype, "taxDetermination")
    parts = []
    for key, fnodes in b.collect(result, nodes).items():
        name = fnodes[0].name.value
        if name == "__typename":
            value = jlit(f'"{result.name}"')
        elif name == "exempt":
            value = f"({exempt_status} OR {covering} IS NOT NULL)::text"
        elif name == "reason":
            value = quoted(
                f"CASE WHEN {exempt_status} THEN 'TAX_STATUS'"
                f" WHEN {covering} IS NOT NULL THEN 'CERTIFICATE' ELSE 'NONE' END"
            )
        elif name == "taxCode":
            value = j_str("customer.tax_code")
        elif name == "certificate":
            certificate = _by_id(b, "TaxExemptionCertificate", covering, fnodes)
            value = f"CASE WHEN {exempt_status} THEN 'null' ELSE {certificate} END"
        else:
            raise NotCompilable(f"{result.name}.{name}")
        parts.append((key, value))
    scope = b.scope(ScopeKind.CUSTOMER, "customer")
    where = f"FROM customer WHERE customer.id = {pk} AND {scope}"
    return nullable_sql(obj_sql(parts), where)


def _root_duplicate_customers(b: Builder, gtype, nodes) -> str:
    """schema.duplicates' resolver: the report's own select (resolvers/duplicates.py, with
    the viewer's scope inside, bound per request) paged by `pagination.window`; a group's
    customers through the customer scope."""
    args = b.page(gtype, nodes, frozenset(("by", "fuzzy", "threshold")))
    a = b.args(gtype, nodes)
    by = [dup_q.Criterion(getattr(c, "value", c)) for c in a.get("by") or ()]
    criteria = tuple(dict.fromkeys(by or [dup_q.Criterion.EMAIL]))
    fuzzy, threshold = a.get("fuzzy", False), a.get("threshold", 0.6)
    if fuzzy and dup_q.Criterion.NAME not in criteria:
        raise NotCompilable("fuzzy without NAME")  # Strawberry says why
    if not dup_q.MIN_FUZZY_THRESHOLD <= threshold <= 1:
        raise NotCompilable("bad threshold")
    report = dup_q.Report(criteria, fuzzy, threshold)
    rows, ordering = dup_q.report_query(b.context(), report)
    table = "pairs" if fuzzy else "groups"
    conn = b.child_type(gtype, nodes[0].name.value)
    group = b.child_type(conn, "nodes")
    reasons = jlit(orjson.dumps([c.value for c in criteria]).decode())
    if fuzzy:
        ids = f"ARRAY[{table}.a_id, {table}.b_id]"
        keys = ["k0", "k1"]
        score = j_float(f"{table}.score")
        similarity = j_float(f"{table}.similarity")
        size = jlit("2")
    else:
        ids = f"{table}.ids"
        keys = [f"k{i}" for i in range(len(criteria))]
        score = jlit(orjson.dumps(dup_q.score([dup_q.WEIGHTS[c] for c in criteria])).decode())
        similarity = jlit("null")
        size = f"({table}.size)::text"
    key_list: list[Piece] = [(True, "[")]
    for i, k in enumerate(keys):
        key_list += [(True, "," if i else ""), (False, j_str(f"{table}.{k}", nullable=False))]
    values = {
        "__typename": jlit(f'"{group.name}"'),
        "reasons": reasons,
        "score": score,
        "similarity": similarity,
        "keys": Json([*key_list, (True, "]")]),
        "size": size,
    }

    def node(fnodes) -> str:
        parts = []
        for key, inner in b.collect(group, fnodes).items():
            name = inner[0].name.value
            if name == "customers":
                customer_type = b.child_type(group, "customers")
                scope = b.scope(ScopeKind.CUSTOMER, "customer")
                item = b.object(customer_type, inner, Source("customer"))
                where = f"FROM customer WHERE customer.id = ANY({ids}) AND {scope}"
                parts.append((key, list_sql(item, where, "customer.id")))
            elif name in values:
                parts.append((key, values[name]))
            else:
                raise NotCompilable(f"{group.name}.{name}")
        return obj_sql(parts)

    return b.connection(
        conn,
        nodes,
        table=table,
        node_type=group,
        where=[],
        ordering=ordering,
        args=args,
        rows=rows,
        node=node,
    )


# ---------------------------------------------------------------------------------------
# customerSearch: matches or RefineSearch from one sample (resolvers/search.py), the SQL
# the field-by-field path runs in two statements, here one


def _search_sql(b: Builder, nodes, where: list[str], ordering: Ordering, args) -> str:
    """`search.sample_select` over the filter as a one-row table `_s`; at most the cap,
    the matches page through `_s.ids` (every match), else RefineSearch's facets
    (`search.facet_selects` over `_s`'s arrays). PostgreSQL runs only the branch taken."""
    cap = b.search_cap
    base = select(customer_q.customer).where(*(literal_column(w, Boolean) for w in where))
    sample = b.sql(search_q.sample_select(base, cap))
    matches = _search_matches(b, nodes, ordering, args)
    refine = _search_refine(b, nodes, cap)
    return (
        f"(SELECT CASE WHEN _s.n <= {cap} THEN {matches} ELSE {refine} END FROM ({sample}) AS _s)"
    )


def _search_matches(b: Builder, nodes, ordering: Ordering, args) -> str:
    matches = b.schema.get_type("CustomerSearchMatches")
    where = ["customer.id = ANY(_s.ids)", b.scope(ScopeKind.CUSTOMER, "customer")]
    parts = []
    for key, fnodes in b.collect(matches, nodes).items():
        name = fnodes[0].name.value
        if name == "__typename":
            parts.append((key, jlit('"CustomerSearchMatches"')))
        elif name == "customers" and not fnodes[0].arguments:
            conn = b.child_type(matches, "customers")
            node_type = b.child_type(conn, "nodes")
            parts.append(
                (
                    key,
                    b.connection(
                        conn,
                        fnodes,
                        table="customer",
                        node_type=node_type,
                        where=where,
                        ordering=ordering,
                        args=args,
                    ),
                )
            )
        else:
            raise NotCompilable(f"CustomerSearchMatches.{name}")
    return obj_sql(parts)


SAMPLE_ROW = search_q.Sample(
    ids=literal_column("_s.ids"), kinds=literal_column("_s.kinds"), reps=literal_column("_s.reps")
)


def _search_refine(b: Builder, nodes, cap: int) -> str:
    refine = b.schema.get_type("RefineSearch")
    facets = search_q.facet_selects(SAMPLE_ROW)
    constants = {
        "__typename": '"RefineSearch"',
        "message": orjson.dumps(search_q.refine_message(cap)).decode(),
        "countAtLeast": str(cap + 1),
        "cap": str(cap),
    }
    parts = []
    for key, fnodes in b.collect(refine, nodes).items():
        name = fnodes[0].name.value
        if name in constants:
            parts.append((key, jlit(constants[name])))
        elif name == "sampleSize":
            parts.append((key, "_s.n::text"))
        elif name in facets and not fnodes[0].arguments:
            parts.append((key, _facet_list(b, refine, name, fnodes, facets[name])))
        else:
            raise NotCompilable(f"RefineSearch.{name}")
    return obj_sql(parts)


def _facet_list(b: Builder, parent, name: str, nodes, facet) -> str:
    """A facet's (value, n, rank) rows as a JSON list in rank order; channels and reps
    read through the same tables and scopes as their loaders (`_by_id`)."""
    item_type = b.child_type(parent, name)
    parts = []
    for key, fnodes in b.collect(item_type, nodes).items():
        field_name = fnodes[0].name.value
        if field_name == "__typename":
            parts.append((key, jlit(f'"{item_type.name}"')))
        elif field_name in ("value", "name"):
            parts.append((key, j_str("_f.value", False)))
        elif field_name in ("count", "customerCount"):
            parts.append((key, "_f.n::text"))
        elif field_name == "salesChannel":
            parts.append((key, _by_id(b, "SalesChannel", "_f.value", fnodes)))
        elif field_name == "salesRep":
            parts.append((key, _by_id(b, "User", "_f.value", fnodes)))
        else:
            raise NotCompilable(f"{item_type.name}.{field_name}")
    rows = f"({b.sql(facet)}) AS _f(value, n, rank)"
    return list_sql(obj_sql(parts), f"FROM {rows}", "_f.rank")


ROOTS: dict[str, Callable[[Builder, GraphQLObjectType, list[FieldNode]], str]] = {
    "customers": _root_customers,
    "customerSearch": _root_customer_search,
    "customer": _root_customer,
    "node": _root_node,
    "nodes": _root_nodes,
    "order": _root_order,
    "me": _root_me,
    "accounts": _root_accounts,
    "salesChannels": _root_sales_channels,
    "salesReps": _root_sales_reps,
    "customFieldDefinitions": _root_custom_field_definitions,
    "taxDetermination": _root_tax_determination,
    "duplicateCustomers": _root_duplicate_customers,
}
