"""Privacy requests: everything held about one customer (export), and its erasure.

Export: one JSON document, read in one REPEATABLE READ snapshot through the same scope
builders every read uses (`visible_customers`, `children.visible`, `visible_accounts`,
`visible_payment_methods`, `visible_users`), so a rep exports only their customers and a
site user only themselves; anything else is `None`, as `customer(id:)` answers.

Erasure (admins, one transaction): the customer and every record merged into it (a
merged record keeps its email and leads `customer(email:)` to its survivor) lose their
names, email, phone, reference, note and site user; addresses keep only kind, country and
region; orders' shipping addresses only country and region; text custom-field values and
free text in timeline events become `ERASED`; the payment methods of an account only they
use are deleted. Ledger amounts, order totals and lines, and tax records stay (accounting
law keeps them; the ledger is append-only anyway). Tables not keyed by customer (import
error rows, export filters, job messages, idempotent responses) are swept for the former
values. The target is marked ERASED with `erased_at`; CUSTOMER_ERASED records the reason
and the actor, never the erased values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import phonenumbers
from sqlalchemy import (
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncConnection

from models import (
    Account,
    Address,
    ApiToken,
    AppUser,
    CustomerSalesChannel,
    CustomFieldDefinition,
    CustomFieldValue,
    ExportJob,
    IdempotencyKey,
    ImportJob,
    ImportJobError,
    LedgerTransaction,
    Order,
    OrderLine,
    PaymentMethod,
    SalesChannel,
    TaxExemptionCertificate,
    TimelineEvent,
)
from models.enums import CustomerStatus, CustomFieldType, Role
from resolvers import validate
from resolvers.accounts import visible_accounts, visible_payment_methods
from resolvers.children import visible
from resolvers.context import Context
from resolvers.custom_fields import VALUE_TEXT
from resolvers.customers import customer, visible_customers
from resolvers.datetimes import iso_datetime
from resolvers.mutations import Problem, Refused, transaction
from resolvers.rls import set_viewer
from resolvers.scope import scope_customers
from resolvers.timeline import record
from resolvers.users import visible_users

ERASED = "[erased]"
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
token = ApiToken.__table__

# Customer columns that are personal data: erased, and refused on an erased customer.
PERSONAL = ("first_name", "last_name", "company_name", "email", "phone", "reference_id", "note")


# --- export ------------------------------------------------------------------------------


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
    channels = {r.id: r.code for r in await s.rows(select(channel.c.id, channel.c.code))}
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


# --- erasure -----------------------------------------------------------------------------


@dataclass
class Former:
    """The values being erased, to find them where they are not keyed by customer."""

    emails: set[str] = field(default_factory=set)
    full_names: set[str] = field(default_factory=set)  # "first last", a company
    parts: set[str] = field(default_factory=set)  # a first or a last name alone
    phones: set[str] = field(default_factory=set)  # E.164 digits and the national number

    def add_name(self, *parts: str | None) -> None:
        words = [p.strip().casefold() for p in parts if p and p.strip()]
        if words:
            self.full_names.add(" ".join(words))
            self.parts.update(w for w in words if len(w) >= 2)

    def add_phone(self, phone: str | None) -> None:
        if not phone:
            return
        digits = re.sub(r"\D", "", phone)
        try:
            national = str(phonenumbers.parse(phone, None).national_number)
        except phonenumbers.NumberParseException:
            national = digits
        self.phones.update(p for p in (digits, national) if len(p) >= 6)

    @staticmethod
    def _has_word(folded: str, words: Iterable[str]) -> bool:
        return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", folded) for w in words)

    def identifies(self, text_value: str) -> bool:
        """An email, a phone or a full name: this text is about the person."""
        folded = text_value.casefold()
        if any(e in folded for e in self.emails) or self._has_word(folded, self.full_names):
            return True
        digits = re.sub(r"\D", "", text_value)
        return bool(digits) and any(p in digits for p in self.phones)

    def mentioned(self, text_value: str) -> bool:
        """`identifies`, or a first or last name alone (too common to single a row out)."""
        return self.identifies(text_value) or self._has_word(text_value.casefold(), self.parts)

    def patterns(self) -> list[str]:
        """ILIKE patterns for the sweep's coarse SQL pre-filter (`identifies` decides)."""
        escaped = (
            v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            for v in (*self.emails, *self.full_names)
        )
        return [f"%{v}%" for v in escaped]


def _redacted(v: Any, former: Former) -> Any:
    """A JSON value with every string that mentions a former value replaced."""
    if isinstance(v, str):
        return ERASED if former.mentioned(v) else v
    if isinstance(v, list):
        return [_redacted(x, former) for x in v]
    if isinstance(v, dict):
        return {k: _redacted(x, former) for k, x in v.items()}
    return v


# Timeline data keys whose strings are our own identifiers, amounts or enum labels; every
# other string in an erased customer's events is free text and goes.
KEPT_KEYS = {"source", "order", "amount", "total", "currency", "entry", "group", "status"}
KEPT_KEYS |= {"code", "certificate", "paymentMethod", "account", "fields", "key", "values"}
KEPT_KEYS |= {"duplicates", "survivor", "balances", "customerIds", "address", "from", "to"}
# Fields whose old and new values in a CUSTOMER_UPDATED change are not personal.
KEPT_CHANGES = {"kind", "tax_status", "tax_code", "sales_rep_id", "account_id", "status"}
# Summaries that hold only numbers, amounts, labels and field names; others are rewritten.
KEPT_SUMMARIES = {
    "CUSTOMER_CREATED",
    "CUSTOMER_UPDATED",
    "CUSTOMER_ARCHIVED",
    "CUSTOMER_RESTORED",
    "CUSTOMER_MERGED",
    "MERGED_INTO",
    "DUPLICATE_DISMISSED",
    "ORDER_PLACED",
    "ORDER_CANCELLED",
    "ORDER_REFUNDED",
    "TRANSFER_IN",
    "TRANSFER_OUT",
    "TAX_STATUS_CHANGED",
    "TAX_CERTIFICATE_ADDED",
    "TAX_CERTIFICATE_REVOKED",
    "ACCOUNT_UPDATED",
    "ACCOUNT_ATTACHED",
    "ACCOUNT_DETACHED",
    "PAYMENT_METHOD_ADDED",
    "PAYMENT_METHOD_REMOVED",
    "CUSTOM_FIELD_CLEARED",
    "CUSTOM_FIELDS_CHANGED",
}


def _event_data(v: Any, key: str | None = None) -> Any:
    if key in KEPT_KEYS:
        return v
    if isinstance(v, str):
        return ERASED
    if isinstance(v, list):
        return [_event_data(x) for x in v]
    if isinstance(v, dict):
        if key == "changes":
            return {k: x if k in KEPT_CHANGES else _event_data(x) for k, x in v.items()}
        return {k: _event_data(x, k) for k, x in v.items()}
    return v


def _event_summary(kind: str, summary: str, former: Former) -> str:
    if kind in KEPT_SUMMARIES and not former.mentioned(summary):
        return summary
    return f"{kind.replace('_', ' ').capitalize()} ({ERASED})"


def _refuse(path: list[str] | None, code: str, message: str) -> Refused:
    return Refused(Problem(path, code, message))


def refuse_if_erased(row: Any, path: list[str] | None, what: str) -> None:
    """Writes that would put personal data back on an erased customer (or un-erase it)."""
    if row.erased_at is not None:
        raise _refuse(path, "ERASED", f"This customer was erased: {what} cannot change.")


def _clean_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise _refuse(["input", "reason"], "REQUIRED", "Say why (e.g. the request's reference).")
    if len(reason) > 1000:
        raise _refuse(["input", "reason"], "INVALID", "At most 1,000 characters.")
    validate.refuse_card_numbers(reason)
    return reason


async def _lock(conn: AsyncConnection, ctx: Context, customer_id: int) -> list[Any]:
    """The target, then every record merged into it, locked in that order."""
    path = ["input", "customerId"]
    stmt = scope_customers(select(customer), ctx.viewer).where(customer.c.id == customer_id)
    target = (await conn.execute(stmt.with_for_update())).first()
    if target is None:
        raise _refuse(path, "NOT_FOUND", "No such customer.")
    if target.status == CustomerStatus.MERGED:
        raise _refuse(
            path,
            "CONFLICT",
            "This customer was merged into another: erase the survivor (its merged records "
            "are erased with it).",
        )
    refuse_if_erased(target, path, "it is erased already, nothing")
    rows, frontier = [target], [target.id]
    for _ in range(MAX_CHAIN):
        stmt = select(customer).where(customer.c.merged_into_id.in_(frontier))
        found = list((await conn.execute(stmt.order_by(customer.c.id).with_for_update())).all())
        if not found:
            break
        rows += found
        frontier = [r.id for r in found]
    return rows


async def _former(conn: AsyncConnection, records: list[Any], accounts: list[Any]) -> Former:
    ids = [r.id for r in records]
    former = Former()
    for r in records:
        if r.email:
            former.emails.add(str(r.email).casefold())
        former.add_name(r.first_name, r.last_name)
        former.add_name(r.company_name)
        former.add_phone(r.phone)
    for a in await conn.execute(select(address).where(address.c.customer_id.in_(ids))):
        former.add_name(a.name)
        former.add_phone(a.phone)
    users = [r.user_id for r in records if r.user_id is not None]
    for u in await conn.execute(select(user).where(user.c.id.in_(users))):
        former.emails.add(str(u.email).casefold())
        former.add_name(u.first_name, u.last_name)
    for a in accounts:
        if a.exclusive:
            former.add_name(a.billing_contact_name)
            if a.billing_email:
                former.emails.add(str(a.billing_email).casefold())
            former.add_phone(a.billing_phone)
    return former


@dataclass
class AccountUse:
    id: int
    exclusive: bool  # no customer outside the erased records uses it
    billing_contact_name: str | None
    billing_email: str | None
    billing_phone: str | None


async def _accounts(conn: AsyncConnection, records: list[Any]) -> list[AccountUse]:
    ids = [r.id for r in records]
    account_ids = sorted({r.account_id for r in records if r.account_id is not None})
    others = (
        select(func.count())
        .select_from(customer)
        .where(customer.c.account_id == account.c.id, customer.c.id.not_in(ids))
        .scalar_subquery()
    )
    stmt = select(account, (others == 0).label("exclusive")).where(account.c.id.in_(account_ids))
    return [
        AccountUse(r.id, r.exclusive, r.billing_contact_name, r.billing_email, r.billing_phone)
        for r in await conn.execute(stmt.with_for_update(of=account))
    ]


async def _erase_accounts(conn: AsyncConnection, uses: list[AccountUse], former: Former) -> None:
    for use in uses:
        if use.exclusive:
            # Only the erased person bills to it: its contact goes, and its card tokens.
            # Country and region stay with the tax records they explain.
            await conn.execute(
                update(account)
                .where(account.c.id == use.id)
                .values(
                    name=ERASED,
                    billing_contact_name=None,
                    billing_email=None,
                    billing_phone=None,
                    billing_line1=None,
                    billing_line2=None,
                    billing_city=None,
                    billing_postal_code=None,
                    updated_at=func.now(),
                )
            )
            await conn.execute(delete(payment_method).where(payment_method.c.account_id == use.id))
            continue
        # A shared (business) account keeps its cards; only this person's contact goes.
        values: dict[str, Any] = {}
        if use.billing_email and str(use.billing_email).casefold() in former.emails:
            values["billing_email"] = None
        if use.billing_phone and former.mentioned(use.billing_phone):
            values["billing_phone"] = None
        if use.billing_contact_name and former.mentioned(use.billing_contact_name):
            values["billing_contact_name"] = None
        if values:
            await conn.execute(update(account).where(account.c.id == use.id).values(**values))


async def _erase_site_users(conn: AsyncConnection, records: list[Any]) -> None:
    ids = [r.user_id for r in records if r.user_id is not None]
    if not ids:
        return
    # Site users only (a staff login is never a customer's); they can no longer sign in.
    mine = and_(user.c.id.in_(ids), user.c.role == Role.CUSTOMER)
    await conn.execute(
        update(user)
        .where(mine)
        .values(
            email=func.concat("erased-", user.c.id, "@erased.invalid"),
            first_name=None,
            last_name=None,
            password_hash=None,
            is_active=False,
        )
    )
    await conn.execute(
        update(token)
        .where(token.c.user_id.in_(select(user.c.id).where(mine)))
        .values(name=None, revoked_at=func.coalesce(token.c.revoked_at, func.now()))
    )


async def _erase_timeline(conn: AsyncConnection, ids: list[int], former: Former) -> None:
    rows = (await conn.execute(select(event).where(event.c.customer_id.in_(ids)))).all()
    changed = []
    for r in rows:
        data, summary = _event_data(r.data), _event_summary(r.kind, r.summary, former)
        if data != r.data or summary != r.summary:
            changed.append({"event_id": r.id, "new_data": data, "new_summary": summary})
    if changed:
        await conn.execute(
            update(event)
            .where(event.c.id == bindparam("event_id"))
            .values(data=bindparam("new_data"), summary=bindparam("new_summary")),
            changed,
        )


# Columns outside the customer's own rows where a former value may sit: rejected import
# rows as uploaded, import and export job texts, stored idempotent responses.
SWEPT: tuple[tuple[Table, str], ...] = (
    (ImportJobError.__table__, "raw"),
    (ImportJobError.__table__, "message"),
    (ImportJob.__table__, "message"),
    (ExportJob.__table__, "criteria"),
    (IdempotencyKey.__table__, "result"),
)


async def _sweep(conn: AsyncConnection, former: Former) -> None:
    patterns = former.patterns()
    for table, name in SWEPT:
        col = table.c[name]
        as_text = cast(col, Text)
        digits = func.regexp_replace(as_text, "[^0-9]", "", "g")
        hits = [as_text.ilike(p) for p in patterns]
        hits += [digits.contains(p, autoescape=True) for p in former.phones]
        if not hits:
            continue
        keys = list(table.primary_key.columns)
        stmt = select(*keys, col).where(or_(*hits))
        for row in (await conn.execute(stmt)).all():
            old = row[-1]
            # A rejected row with the email in it: its name cells are this person's too.
            if not former.identifies(old if isinstance(old, str) else str(old)):
                continue
            new = _redacted(old, former)
            if new != old:
                where = and_(*(k == row[i] for i, k in enumerate(keys)))
                await conn.execute(update(table).where(where).values({name: new}))


async def erase(ctx: Context, customer_id: int, reason: str | None) -> int:
    """Pseudonymise a customer for good (see the module docstring); the event id."""
    if ctx.viewer.role is not Role.ADMIN:
        raise _refuse(None, "FORBIDDEN", "Only admins erase customers.")
    reason = _clean_reason(reason)
    async with transaction(ctx) as conn:
        records = await _lock(conn, ctx, customer_id)
        ids = [r.id for r in records]
        uses = await _accounts(conn, records)
        former = await _former(conn, records, uses)
        if former.mentioned(reason):
            raise _refuse(
                ["input", "reason"],
                "INVALID",
                "The reason is kept: it must not repeat the name, email or phone being erased.",
            )
        await conn.execute(
            update(customer)
            .where(customer.c.id.in_(ids))
            .values(
                {
                    **dict.fromkeys(PERSONAL),
                    "user_id": None,
                    "erased_at": func.now(),
                    "version": customer.c.version + 1,
                    "updated_at": func.now(),
                }
            )
        )
        await conn.execute(
            update(customer)
            .where(customer.c.id == customer_id)
            .values(status=CustomerStatus.ERASED)
        )
        await _erase_site_users(conn, records)
        await conn.execute(
            update(address)
            .where(address.c.customer_id.in_(ids))
            .values(
                name=None,
                company=None,
                line1=ERASED,
                line2=None,
                city=None,
                postal_code=None,
                phone=None,
                updated_at=func.now(),
            )
        )
        shipped_to = order.c.shipping_address
        await conn.execute(
            update(order)
            .where(order.c.customer_id.in_(ids), shipped_to.is_not(None))
            .values(
                shipping_address=func.jsonb_strip_nulls(
                    func.jsonb_build_object(
                        literal_column("'country'"),
                        shipped_to["country"],
                        literal_column("'region'"),
                        shipped_to["region"],
                    )
                )
            )
        )
        text_fields = select(definition.c.id).where(definition.c.type == CustomFieldType.TEXT)
        await conn.execute(
            update(value)
            .where(value.c.customer_id.in_(ids), value.c.definition_id.in_(text_fields))
            .values(text_value=ERASED, updated_at=func.now())
        )
        await _erase_accounts(conn, uses, former)
        await _erase_timeline(conn, ids, former)
        await _sweep(conn, former)
        # Tags and marketing consent (issue 18, items 1 and 3) are erased here too when
        # they exist (consent history keeps states and dates, not the address it was for).
        merged = [r.number for r in records[1:]]
        return await record(
            conn,
            customer_id,
            "CUSTOMER_ERASED",
            "Personal data erased (privacy request)",
            actor_id=ctx.viewer.user_id,
            data={"reason": reason, "mergedRecords": merged},
        )


def erased_fields(values: Sequence[str]) -> list[str]:
    """Which of a customerUpdate's columns an erased customer refuses."""
    return sorted(set(values) & set(PERSONAL))
