"""Which fields compile, per type: plain columns (the `columns_of` map the dataloader path
reads too) and `RELATIONS`, the relations and computed fields, each mirroring the loader
SQL it stands for."""

from __future__ import annotations

import functools
from collections.abc import Callable

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
from resolvers.compiled.builder import Builder, Source, clause_sql
from resolvers.compiled.json_text import (
    j_dec,
    list_sql,
    nullable_sql,
)
from resolvers.relations import ChildConnection, ChildList
from resolvers.scope import ScopeKind
from schema.base import _TYPES, columns_of


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
    from schema.consent import MarketingConsent
    from schema.tax import TaxStatus

    return {
        "BillingContact": BillingContact,
        "BillingAddress": BillingAddress,
        "Money": Money,
        "MarketingConsent": MarketingConsent,
        "TaxStatus": TaxStatus,
    }


# ---------------------------------------------------------------------------------------
# Relations: field -> SQL, per type


def _money(amount: str, currency: str = "currency"):
    def build(b: Builder, gtype, nodes, src: Source) -> str:
        money = b.child_type(gtype, nodes[0].name.value)
        inner = Source(src.alias, {"amount": src.col(amount), "currency": src.col(currency)})
        return b.object(money, nodes, inner)

    return build


def _child_list(
    table: str,
    order: str,
    *,
    fk: str = "customer_id",
    scope: ScopeKind = ScopeKind.CHILD,
    where: str = "",
    limit: int | None = None,
):
    """The rows of `table` whose `fk` is the parent's id, through the viewer's scope (the
    first `limit` in `order`, when given: the dataloader path's cap)."""

    def build(b: Builder, gtype, nodes, src: Source) -> str:
        t = b.child_type(gtype, nodes[0].name.value)
        conds = f"{table}.{fk} = {src.col('id')}{where} AND {b.scope(scope, table)}"
        item = b.object(t, nodes, Source(table))
        from_where = f"FROM {table} WHERE {conds}"
        if limit is not None:
            from_where = (
                f"FROM (SELECT {table}.* {from_where} ORDER BY {order} LIMIT {limit}) AS {table}"
            )
        return list_sql(item, from_where, order)

    return build


def child_list(relation: ChildList):
    """A relation declared once (resolvers/relations.py), compiled: its table, foreign key,
    ordering, scope, conditions and cap, as the loader reads them."""
    where = "".join(f" AND {clause_sql(w)}" for w in relation.where)
    return _child_list(
        relation.table.name,
        clause_sql(*relation.order),
        fk=relation.fk,
        scope=relation.scope,
        where=where,
        limit=relation.limit,
    )


def child_connection(relation: ChildConnection):
    """A connection declared once (resolvers/relations.py), compiled."""
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


def _user(fk: str):
    def build(b: Builder, gtype, nodes, src: Source) -> str:
        t = b.child_type(gtype, nodes[0].name.value)
        scope = b.scope(ScopeKind.USER, "app_user")
        where = f"FROM app_user WHERE app_user.id = {src.col(fk)} AND {scope}"
        return nullable_sql(b.object(t, nodes, Source("app_user")), where)

    return build


def _customer(fk: str):
    """A customer by foreign key (`order.customer`, `customer.mergedInto`), through the
    customer scope: null when the viewer may not see it, as `customers_by_id` answers."""

    def build(b: Builder, gtype, nodes, src: Source) -> str:
        t = b.child_type(gtype, nodes[0].name.value)
        # Under a customer row (mergedInto) the inner table takes another name, or it would
        # hide the outer one its foreign key comes from.
        alias = b.alias("customer") if src.alias == "customer" else "customer"
        table = "customer" if alias == "customer" else f"customer AS {alias}"
        scope = b.scope(ScopeKind.CUSTOMER, "customer", alias)
        where = f"FROM {table} WHERE {alias}.id = {src.col(fk)} AND {scope}"
        return nullable_sql(b.object(t, nodes, Source(alias)), where)

    return build


def _account(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "account")
    scope = b.scope(ScopeKind.ACCOUNT, "account")
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


def _sales_channels(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "salesChannels")
    where = (
        "FROM sales_channel JOIN customer_sales_channel"
        " ON customer_sales_channel.sales_channel_id = sales_channel.id"
        f" WHERE customer_sales_channel.customer_id = {src.col('id')}"
    )
    item = b.object(t, nodes, Source("sales_channel"))
    return list_sql(item, where, clause_sql(*channel_q.CHANNEL_ORDER))


def _balances(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "balances")
    latest = (
        "SELECT DISTINCT ON (ledger_transaction.currency) ledger_transaction.currency,"
        " ledger_transaction.balance_after FROM ledger_transaction"
        f" WHERE ledger_transaction.customer_id = {src.col('id')}"
        f" AND {b.scope(ScopeKind.CHILD, 'ledger_transaction')}"
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
        f" AND {b.scope(ScopeKind.CHILD, 'custom_field_value')}"
    )
    d = "custom_field_definition"
    inner = Source(
        "custom_field_value", {k: f"{d}.{k}" for k in ("key", "label", "type", "archived")}
    )
    return list_sql(b.object(t, nodes, inner), where, clause_sql(*custom_field_q.VALUE_ORDER))


def _consent(channel: str):
    """A channel's MarketingConsent, from the customer's own columns (schema.consent)."""

    def build(b: Builder, gtype, nodes, src: Source) -> str:
        t = b.child_type(gtype, nodes[0].name.value)
        names = ("state", "opt_in_level", "updated_at", "source")
        inner = Source(src.alias, {n: src.col(consent_q.column(channel, n)) for n in names})
        return b.object(t, nodes, inner)

    return build


def _tax_status(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "taxStatus")
    return b.object(t, nodes, Source(src.alias, {"status": src.col("tax_status")}))


def _is_valid(b: Builder, gtype, nodes, src: Source) -> str:
    c, today = src.col, b.today()
    return (
        f"({c('revoked_at')} IS NULL AND {c('valid_from')} <= {today}"
        f" AND ({c('valid_to')} IS NULL OR {today} <= {c('valid_to')}))::text"
    )


def _tax_rate(b: Builder, gtype, nodes, src: Source) -> str:
    # As schema.orders._rate prints it: no trailing zeros (0.1, not 0.100000).
    return j_dec(f"trim_scale({src.col('tax_rate')})", nullable=False)


def _lines(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "lines")
    where = (
        f"FROM order_line WHERE order_line.order_id = {src.col('id')}"
        f" AND {b.scope(ScopeKind.CHILD, 'order_line')}"
    )
    item = b.object(t, nodes, Source("order_line", {"currency": src.col("currency")}))
    return list_sql(item, where, clause_sql(*order_q.LINE_ORDER))


def _sales_channel(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "salesChannel")
    where = f"FROM sales_channel WHERE sales_channel.id = {src.col('sales_channel_id')}"
    return nullable_sql(b.object(t, nodes, Source("sales_channel")), where)


def _ledger_order(b: Builder, gtype, nodes, src: Source) -> str:
    t = b.child_type(gtype, "order")
    scope = b.scope(ScopeKind.CHILD, "orders")
    where = f"FROM orders WHERE orders.id = {src.col('order_id')} AND {scope}"
    return nullable_sql(b.object(t, nodes, Source("orders")), where)


# Computed fields: GraphQL type -> (table, {column: expression}), declared once next to
# their loaders (resolvers/customers.py, resolvers/users.py) and printed inline.
COMPUTED = {
    "Customer": (customer_q.customer, customer_q.COMPUTED),
    "User": (user_q.user, user_q.COMPUTED),
    "CustomFieldValue": (custom_field_q.value, custom_field_q.COMPUTED),
}

RELATIONS: dict[str, dict[str, Callable[..., str]]] = {
    "Customer": {
        "mergedInto": _customer("merged_into_id"),
        "account": _account,
        "salesRep": _user("sales_rep_id"),
        "salesChannels": _sales_channels,
        "addresses": child_list(address_q.ADDRESSES),
        "orders": child_connection(order_q.ORDERS),
        "ledgerTransactions": child_connection(ledger_q.ENTRIES),
        "timeline": child_connection(timeline_q.EVENTS),
        "balances": _balances,
        "customFields": _custom_fields,
        "taxStatus": _tax_status,
        "emailMarketing": _consent("email"),
        "smsMarketing": _consent("sms"),
    },
    "Account": {
        "billingContact": _billing_contact,
        "billingAddress": _billing_address,
        "paymentMethods": child_list(account_q.PAYMENT_METHODS),
        "customers": child_list(account_q.ACCOUNT_CUSTOMERS),
    },
    "Order": {
        "customer": _customer("customer_id"),
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
    "OrderLine": {
        "unitPrice": _money("unit_price"),
        "lineTotal": _money("line_total"),
        "taxRate": _tax_rate,
    },
    "LedgerTransaction": {
        "customer": _customer("customer_id"),
        "amount": _money("amount"),
        "balanceAfter": _money("balance_after"),
        "order": _ledger_order,
    },
    "TaxStatus": {"exemptionCertificates": child_list(tax_q.CERTIFICATES)},
    "TaxExemptionCertificate": {"isValid": _is_valid, "customer": _customer("customer_id")},
    "TimelineEvent": {"actor": _user("actor_id"), "customer": _customer("customer_id")},
    "Address": {"customer": _customer("customer_id")},
}
