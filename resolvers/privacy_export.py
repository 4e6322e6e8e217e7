"""Privacy requests, part one: everything held about one customer, as one JSON document.

Read in one REPEATABLE READ snapshot through the same scope builders every read uses
(`visible_customers`, `children.visible`, `visible_accounts`, `visible_payment_methods`,
`visible_users`), so a rep exports only their customers and a site user only themselves;
anything else is `None`, as `customer(id:)` answers. The erasure is resolvers/privacy.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncConnection

from models import (
    Account,
    Address,
    AppUser,
    CustomerSalesChannel,
    CustomFieldDefinition,
    CustomFieldValue,
    LedgerTransaction,
    Order,
    OrderLine,
    PaymentMethod,
    SalesChannel,
    TaxExemptionCertificate,
    TimelineEvent,
)
from resolvers import consent
from resolvers.accounts import visible_accounts, visible_payment_methods
from resolvers.children import visible
from resolvers.context import Context
from resolvers.custom_fields import VALUE_TEXT
from resolvers.customers import customer, visible_customers
from resolvers.datetimes import iso_datetime
from resolvers.rls import set_viewer
from resolvers.scope import scope_customers
from resolvers.users import visible_users

EXPORT_FORMAT = "customer-graph.privacy-export.v1"
MAX_CHAIN = 10  # merges chain; bounded like resolvers.customers.customer_by

address = Address.__table__
account = Account.__table__
payment_method = PaymentMethod.__table__
order = Order.__table__
order_line = OrderLine.__table__
ledger = LedgerTransaction.__table__
value = CustomFieldValue.__table__
definition = CustomFieldDefinition.__table__
certificate = TaxExemptionCertificate.__table__
event = TimelineEvent.__table__
link = CustomerSalesChannel.__table__
channel = SalesChannel.__table__
user = AppUser.__table__


def _json(v: Any) -> Any:
    if isinstance(v, datetime):
        return iso_datetime(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return format(v, "f")  # positional, as the Decimal scalar prints
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, UUID):
        return str(v)
    return v


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _doc(row: Any, names: Iterable[str]) -> dict[str, Any]:
    return {_camel(n): _json(getattr(row, n)) for n in names}


PROFILE = (
    "number",
    "kind",
    "status",
    "first_name",
    "last_name",
    "company_name",
    "email",
    "phone",
    "reference_id",
    "note",
    "created_at",
    "updated_at",
    "erased_at",
    "tags",
)
ADDRESS = ("kind", "is_default", "name", "company", "line1", "line2", "city", "region")
ADDRESS += ("postal_code", "country", "phone", "created_at", "updated_at")
ACCOUNT = ("number", "name", "billing_contact_name", "billing_email", "billing_phone")
ACCOUNT += ("billing_line1", "billing_line2", "billing_city", "billing_region")
ACCOUNT += ("billing_postal_code", "billing_country", "created_at", "updated_at")
# The processor token itself is a credential, not data about the person: its metadata only.
PAYMENT = ("processor", "brand", "last4", "exp_month", "exp_year", "is_default", "created_at")
ORDER = ("number", "status", "source", "currency", "subtotal", "tax_total", "shipping_total")
ORDER += ("total", "amount_paid", "amount_refunded", "shipping_address", "placed_at")
LINE = ("position", "sku", "description", "quantity", "unit_price", "tax_rate", "line_total")
ENTRY = ("kind", "amount", "currency", "balance_after", "memo", "created_at")
CERTIFICATE = ("number", "country", "region", "reason", "valid_from", "valid_to", "revoked_at")
EVENT = ("kind", "occurred_at", "summary", "data")
SITE_USER = ("email", "first_name", "last_name", "is_active", "created_at")


@dataclass
class Snapshot:
    """One export's reads: a connection in a read-only snapshot, with the viewer set."""

    ctx: Context
    conn: AsyncConnection
    customer: Any
    ids: list[int]  # the customer and the records merged into it (visible ones)

    async def rows(self, stmt: Any) -> list[Any]:
        return list((await self.conn.execute(stmt)).all())

    async def children(self, table: Table, *order_by: Any) -> list[Any]:
        stmt = visible(self.ctx, table).where(table.c.customer_id.in_(self.ids))
        return await self.rows(stmt.order_by(*order_by))


async def _profile(s: Snapshot) -> dict[str, Any]:
    c = s.customer
    channels = await s.rows(
        select(channel.c.code, channel.c.name)
        .join(link, link.c.sales_channel_id == channel.c.id)
        .where(link.c.customer_id == c.id)
        .order_by(channel.c.code)
    )
    return {
        **_doc(c, PROFILE),
        "displayName": c.display_name,
        "salesChannels": [_doc(r, ("code", "name")) for r in channels],
    }


async def _merged_records(s: Snapshot) -> list[dict[str, Any]]:
    rows = await s.rows(
        visible_customers(s.ctx)
        .where(customer.c.id.in_(s.ids), customer.c.id != s.customer.id)
        .order_by(customer.c.id)
    )
    return [_doc(r, PROFILE) for r in rows]


async def _site_user(s: Snapshot) -> dict[str, Any] | None:
    if s.customer.user_id is None:
        return None
    rows = await s.rows(visible_users(s.ctx).where(user.c.id == s.customer.user_id))
    return _doc(rows[0], SITE_USER) if rows else None


async def _addresses(s: Snapshot) -> list[dict[str, Any]]:
    rows = await s.children(address, address.c.is_default.desc(), address.c.id)
    return [_doc(r, ADDRESS) for r in rows]


async def _account(s: Snapshot) -> dict[str, Any] | None:
    if s.customer.account_id is None:
        return None
    rows = await s.rows(visible_accounts(s.ctx).where(account.c.id == s.customer.account_id))
    if not rows:
        return None
    methods = await s.rows(
        visible_payment_methods(s.ctx)
        .where(payment_method.c.account_id == s.customer.account_id)
        .order_by(payment_method.c.id)
    )
    return {**_doc(rows[0], ACCOUNT), "paymentMethods": [_doc(m, PAYMENT) for m in methods]}


async def _orders(s: Snapshot) -> list[dict[str, Any]]:
    orders = await s.children(order, order.c.placed_at, order.c.id)
    lines = await s.children(order_line, order_line.c.order_id, order_line.c.position)
    used = sorted({o.sales_channel_id for o in orders if o.sales_channel_id is not None})
    names = select(channel.c.id, channel.c.code).where(channel.c.id.in_(used))
    channels = {r.id: r.code for r in await s.rows(names)}
    by_order: dict[int, list[dict[str, Any]]] = {}
    for line in lines:
        by_order.setdefault(line.order_id, []).append(_doc(line, LINE))
    return [
        {
            **_doc(o, ORDER),
            "salesChannel": channels.get(o.sales_channel_id),
            "lines": by_order.get(o.id, []),
        }
        for o in orders
    ]


async def _ledger(s: Snapshot) -> dict[str, Any]:
    entries = await s.children(ledger, ledger.c.id)
    orders = {o.id: o.number for o in await s.children(order, order.c.id)}
    balances = await s.rows(
        visible(s.ctx, ledger)
        .with_only_columns(ledger.c.currency, ledger.c.balance_after)
        .ext(distinct_on(ledger.c.currency))
        .where(ledger.c.customer_id == s.customer.id)
        .order_by(ledger.c.currency, ledger.c.id.desc())
    )
    return {
        "entries": [{**_doc(e, ENTRY), "order": orders.get(e.order_id)} for e in entries],
        "balances": [{"currency": b.currency, "balance": _json(b.balance_after)} for b in balances],
    }


async def _custom_fields(s: Snapshot) -> list[dict[str, Any]]:
    rows = await s.rows(
        visible(s.ctx, value)
        .with_only_columns(
            definition.c.key, definition.c.label, definition.c.type, VALUE_TEXT.label("value")
        )
        .join(definition, definition.c.id == value.c.definition_id)
        .where(value.c.customer_id.in_(s.ids))
        .order_by(definition.c.position, definition.c.key)
    )
    return [_doc(r, ("key", "label", "type", "value")) for r in rows]


async def _tax(s: Snapshot) -> dict[str, Any]:
    certificates = await s.children(certificate, certificate.c.id)
    return {
        "status": _json(s.customer.tax_status),
        "code": s.customer.tax_code,
        "exemptionCertificates": [_doc(c, CERTIFICATE) for c in certificates],
    }


async def _timeline(s: Snapshot) -> list[dict[str, Any]]:
    return [_doc(e, EVENT) for e in await s.children(event, event.c.id)]


# One entry per part of the document, in document order. Tags and marketing consent
# (issue 18, items 1 and 3) add their sections here when those tables exist.
async def _marketing(s: Snapshot) -> dict[str, Any]:
    """Each channel's consent: state, opt-in level, when and where it was given."""
    names = ("state", "opt_in_level", "updated_at", "source")
    return {
        channel: {_camel(n): _json(getattr(s.customer, consent.column(channel, n))) for n in names}
        for channel in consent.CHANNELS
    }


SECTIONS: tuple[tuple[str, Callable[[Snapshot], Any]], ...] = (
    ("customer", _profile),
    ("siteUser", _site_user),
    ("mergedRecords", _merged_records),
    ("addresses", _addresses),
    ("account", _account),
    ("orders", _orders),
    ("ledger", _ledger),
    ("customFields", _custom_fields),
    ("tax", _tax),
    ("marketingConsent", _marketing),
    ("timeline", _timeline),
)


async def _merged_into(conn: AsyncConnection, ctx: Context, root: int) -> list[int]:
    """The root and every visible record merged into it, at any depth."""
    ids, frontier = [root], [root]
    for _ in range(MAX_CHAIN):
        stmt = scope_customers(select(customer.c.id), ctx.viewer).where(
            customer.c.merged_into_id.in_(frontier)
        )
        frontier = [r.id for r in await conn.execute(stmt)]
        if not frontier:
            break
        ids += frontier
    return ids


async def export(ctx: Context, customer_id: int) -> dict[str, Any] | None:
    """Everything held about a customer the viewer may see, else None. A merged id leads
    to its survivor, as `customer(id:)` does."""
    async with ctx.engine.connect() as conn:
        try:
            # One snapshot: the sections agree with each other (no order without its lines).
            await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            await set_viewer(conn, ctx.viewer)
            row = None
            pk: int | None = customer_id
            for _ in range(MAX_CHAIN):
                found = (
                    await conn.execute(visible_customers(ctx).where(customer.c.id == pk))
                ).first()
                if found is None:
                    break
                row, pk = found, found.merged_into_id
                if pk is None:
                    break
            if row is None or row.merged_into_id is not None:
                return None
            snapshot = Snapshot(ctx, conn, row, await _merged_into(conn, ctx, row.id))
            document: dict[str, Any] = {"format": EXPORT_FORMAT}
            exported = (await conn.execute(select(func.now()))).scalar_one()
            document["exportedAt"] = iso_datetime(exported)
            for name, section in SECTIONS:
                document[name] = await section(snapshot)
            return document
        finally:
            await conn.rollback()
