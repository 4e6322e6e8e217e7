"""Which fields compile, per type: plain columns (`scalar_columns`: the `columns_of` map the
dataloader path reads too) and `RELATIONS`: the relations the loaders use, declared once in
resolvers/<domain>.py (resolvers/relations.py) and compiled here, plus the value objects
built from their parent's own row (Money, the billing contact and address, TaxStatus)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from graphql import GraphQLObjectType, get_named_type, is_leaf_type
from strawberry import relay
from strawberry.utils.str_converters import to_camel_case

from resolvers import accounts as account_q
from resolvers import addresses as address_q
from resolvers import consent as consent_q
from resolvers import custom_fields as custom_field_q
from resolvers import customers as customer_q
from resolvers import ledger as ledger_q
from resolvers import orders as order_q
from resolvers import sales_channels as channel_q
from resolvers import tax as tax_q
from resolvers import timeline as timeline_q
from resolvers import users as user_q
from resolvers.compiled.builder import Builder, Source
from resolvers.compiled.json_text import j_dec, list_sql, nullable_sql, quoted
from resolvers.compiled.sql_text import clause_sql, computed_sql
from resolvers.pagination import cursor_sql
from resolvers.relations import (
    ChildConnection,
    ChildList,
    Embedded,
    ForeignObject,
    LatestPer,
    cap_of,
)
from resolvers.scope import ScopeKind
from schema.base import columns_of

Build = Callable[..., str]  # (builder, parent type, field nodes, parent row) -> SQL


@functools.cache
def scalar_columns(gtype: GraphQLObjectType) -> dict[str, str]:
    """GraphQL field name -> column, for the plain (resolver-less) fields of a type: read
    from Strawberry's own definition of it (the GraphQL type's `strawberry-definition`)."""
    definition = gtype.extensions.get("strawberry-definition")
    if definition is None:
        return {}
    cls = definition.origin
    columns = dict(columns_of(cls))
    out = {"id": "id"} if issubclass(cls, relay.Node) else {}
    for f in definition.fields:
        if f.python_name not in columns or f.base_resolver is not None:
            continue
        name = f.graphql_name or to_camel_case(f.python_name)
        gfield = gtype.fields.get(name)
        if gfield is not None and is_leaf_type(get_named_type(gfield.type)):
            out[name] = columns[f.python_name]
    return out


# ---------------------------------------------------------------------------------------
# Relations, compiled from their declarations (resolvers/relations.py)


@functools.singledispatch
def compile_relation(relation: object) -> Build:
    raise TypeError(f"no compiled form for {relation!r}")


@compile_relation.register
def _foreign_object(relation: ForeignObject) -> Build:
    """The row the parent's foreign key points to, through the target's scope: null when
    there is none or the viewer may not see it (as the loader's `one_per_key` answers)."""
    name, scope = relation.target.table.name, relation.target.scope

    def build(b: Builder, gtype, nodes, src: Source) -> str:
        t = b.child_type(gtype, nodes[0].name.value)
        # Under a row of the same table (mergedInto) the inner row takes another name, or
        # it would hide the outer one its foreign key comes from.
        alias = b.alias(name) if src.alias == name else name
        table = name if alias == name else f"{name} AS {alias}"
        conds = [f"{alias}.id = {src.col(relation.fk)}"]
        if scope is not None:
            conds.append(b.scope(scope, name, None if alias == name else alias))
        where = f"FROM {table} WHERE {' AND '.join(conds)}"
        return nullable_sql(b.object(t, nodes, Source(alias)), where)

    return build


@compile_relation.register
def _child_list(relation: ChildList) -> Build:
    """The rows whose key is the parent's id, joined, filtered, scoped, ordered and capped
    as the loader reads them (`ChildList.rows`)."""
    table = relation.table.name
    key = clause_sql(relation.key)
    joins = "".join(f" JOIN {t.name} ON {clause_sql(on)}" for t, on in relation.joins)
    where = [clause_sql(w) for w in relation.where]
    order = clause_sql(*relation.order)
    columns = {name: clause_sql(e) for name, e in relation.columns.items()}

    def build(b: Builder, gtype, nodes, src: Source) -> str:
        t = b.child_type(gtype, nodes[0].name.value)
        conds = [f"{key} = {src.col('id')}", *where]
        if relation.scope is not None:
            conds.append(b.scope(relation.scope, table))
        # Inherited columns are the parent row's own: no join to the parent's table.
        inherited = {name: src.col(c.name) for name, c in relation.inherit.items()}
        item = b.object(t, nodes, Source(table, {**columns, **inherited}))
        from_where = f"FROM {table}{joins} WHERE {' AND '.join(conds)}"
        if relation.limit is not None:
            from_where = (
                f"FROM (SELECT {table}.* {from_where} ORDER BY {order}"
                f" LIMIT {relation.limit}) AS {table}"
            )
        return list_sql(item, from_where, order)

    return build


@compile_relation.register
def _latest_per(relation: LatestPer) -> Build:
    """DISTINCT ON over the parent's rows, as `LatestPer.batch` reads them."""
    table = relation.table.name
    per = clause_sql(*relation.per)
    picked = ", ".join(
        [per, *(f"{clause_sql(e)} AS {name}" for name, e in relation.columns.items())]
    )
    newest = clause_sql(*relation.per, *relation.newest)
    outer = ", ".join(f"_latest.{c.name}" for c in relation.per)

    def build(b: Builder, gtype, nodes, src: Source) -> str:
        t = b.child_type(gtype, nodes[0].name.value)
        latest = (
            f"SELECT DISTINCT ON ({per}) {picked} FROM {table}"
            f" WHERE {clause_sql(relation.key)} = {src.col('id')}"
            f" AND {b.scope(relation.scope, table)} ORDER BY {newest}"
        )
        item = b.object(t, nodes, Source("_latest"))
        return list_sql(item, f"FROM ({latest}) AS _latest", outer)

    return build


@compile_relation.register
def _child_connection(relation: ChildConnection) -> Build:
    table, ordering = relation.table.name, relation.ordering

    def build(b: Builder, gtype, nodes, src: Source) -> str:
        conn = b.child_type(gtype, nodes[0].name.value)
        node_type = b.child_type(conn, "nodes")
        args = b.page(gtype, nodes)  # as the field declares its page arguments
        where = [f"{table}.customer_id = {src.col('id')}", b.scope(ScopeKind.CHILD, table)]
        return b.connection(
            conn, nodes, table=table, node_type=node_type, where=where, ordering=ordering, args=args
        )

    return build


@compile_relation.register
def _embedded(relation: Embedded) -> Build:
    """The parent row's columns under the value object's field names; null by the same rule
    as `Embedded.values`."""

    def build(b: Builder, gtype, nodes, src: Source) -> str:
        t = b.child_type(gtype, nodes[0].name.value)
        inner = Source(src.alias, {k: src.col(v) for k, v in relation.fields.items()})
        value = b.object(t, nodes, inner)
        if relation.present is None:
            return value
        return f"CASE WHEN {src.col(relation.present)} IS NULL THEN 'null' ELSE {value} END"

    return build


# ---------------------------------------------------------------------------------------
# Value objects still written twice: built from the parent's own row by a resolver here
# and by the builder there


def _money(amount: str, currency: str = "currency") -> Build:
    def build(b: Builder, gtype, nodes, src: Source) -> str:
        money = b.child_type(gtype, nodes[0].name.value)
        inner = Source(src.alias, {"amount": src.col(amount), "currency": src.col(currency)})
        return b.object(money, nodes, inner)

    return build


def _tax_rate(b: Builder, gtype, nodes, src: Source) -> str:
    # As schema.orders._rate prints it: no trailing zeros (0.1, not 0.100000).
    return j_dec(f"trim_scale({src.col('tax_rate')})", nullable=False)


def _event_cursor(b: Builder, gtype, nodes, src: Source) -> str:
    # The event's place in the timeline: its page cursor (`cursor_sql`), which the
    # resolver's `encode_cursor` prints the same.
    table = timeline_q.timeline_event
    return quoted(computed_sql(cursor_sql(timeline_q.NEWEST_FIRST), table, src.alias))


_ORDER_MONEY = (
    "subtotal",
    "tax_total",
    "shipping_total",
    "total",
    "amount_paid",
    "amount_refunded",
)

VALUE_OBJECTS: dict[str, dict[str, Build]] = {
    "Order": {to_camel_case(m): _money(m) for m in _ORDER_MONEY},
    "OrderLine": {
        "unitPrice": _money("unit_price"),
        "lineTotal": _money("line_total"),
        "taxRate": _tax_rate,
    },
    "LedgerTransaction": {"amount": _money("amount"), "balanceAfter": _money("balance_after")},
    "TimelineEvent": {"cursor": _event_cursor},
}


# ---------------------------------------------------------------------------------------
# The table: GraphQL type -> field -> its one declaration (the loaders use the same object)

DECLARED: dict[str, dict[str, object]] = {
    "Customer": {
        "mergedInto": customer_q.MERGED_INTO,
        "account": account_q.CUSTOMER_ACCOUNT,
        "salesRep": user_q.SALES_REP,
        "salesChannels": channel_q.CUSTOMER_CHANNELS,
        "addresses": address_q.ADDRESSES,
        "orders": order_q.ORDERS,
        "ledgerTransactions": ledger_q.ENTRIES,
        "timeline": timeline_q.EVENTS,
        "balances": ledger_q.BALANCES,
        "customFields": custom_field_q.VALUES,
        "taxStatus": customer_q.TAX_STATUS,
        "emailMarketing": consent_q.MARKETING["email"],
        "smsMarketing": consent_q.MARKETING["sms"],
    },
    "Account": {
        "billingContact": account_q.BILLING_CONTACT,
        "billingAddress": account_q.BILLING_ADDRESS,
        "paymentMethods": account_q.PAYMENT_METHODS,
        "customers": account_q.ACCOUNT_CUSTOMERS,
    },
    "Order": {
        "customer": customer_q.OWNER,
        "lines": order_q.LINES,
        "salesChannel": channel_q.ORDER_CHANNEL,
    },
    "LedgerTransaction": {"customer": customer_q.OWNER, "order": order_q.LEDGER_ORDER},
    "TaxStatus": {"exemptionCertificates": tax_q.CERTIFICATES},
    "TaxExemptionCertificate": {"customer": customer_q.OWNER},
    "TimelineEvent": {"actor": user_q.ACTOR, "customer": customer_q.OWNER},
    "Address": {"customer": customer_q.OWNER},
}


def list_cap(type_name: str, field_name: str) -> int | None:
    """The declared cap of a plain list relation (server/limits.py counts it), if any."""
    return cap_of(DECLARED.get(type_name, {}).get(field_name))


# Computed fields: GraphQL type -> (table, {column: expression}), declared once next to
# their loaders (resolvers/customers.py, users.py, custom_fields.py, tax.py), printed inline.
COMPUTED = {
    "Customer": (customer_q.customer, customer_q.COMPUTED),
    "User": (user_q.user, user_q.COMPUTED),
    "CustomFieldValue": (custom_field_q.value, custom_field_q.COMPUTED),
    "TaxExemptionCertificate": (tax_q.certificate, tax_q.COMPUTED),
}

RELATIONS: dict[str, dict[str, Build]] = {
    type_name: {
        **{name: compile_relation(r) for name, r in DECLARED.get(type_name, {}).items()},
        **VALUE_OBJECTS.get(type_name, {}),
    }
    for type_name in DECLARED.keys() | VALUE_OBJECTS.keys()
}
