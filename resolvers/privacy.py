"""Privacy requests, part two: erasing a customer's personal data, for good (admins).

One transaction. The customer and every record merged into it (a merged record keeps its
email, and `customer(email:)` leads from it to its survivor) lose their names, email,
phone, reference, note and site user (pseudonymised, deactivated, tokens revoked);
addresses keep only kind, country and region, orders' shipping addresses only country
and region; text custom-field values and free text in timeline events become `ERASED`;
the payment methods of an account only they use are deleted. Ledger amounts, order totals
and lines, and tax records stay (accounting law keeps them; the ledger is append-only
anyway). Tables not keyed by customer (rejected import rows, export filters, job
messages, stored idempotent responses) are swept for the former values. The target is
marked ERASED with `erased_at`; CUSTOMER_ERASED records the reason and the actor, never
the erased values. The export is resolvers/privacy_export.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from models import (
    Account,
    Address,
    ApiToken,
    AppUser,
    CustomFieldDefinition,
    CustomFieldValue,
    ExportJob,
    IdempotencyKey,
    ImportJob,
    ImportJobError,
    Order,
    PaymentMethod,
    SavedSearch,
    TimelineEvent,
)
from models.enums import CustomerStatus, CustomFieldType, Role
from resolvers import consent, validate
from resolvers.context import Context
from resolvers.customers import customer
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused, transaction
from resolvers.privacy_export import MAX_CHAIN
from resolvers.scope import scope_customers
from resolvers.timeline import record

ERASED = "[erased]"

address = Address.__table__
account = Account.__table__
payment_method = PaymentMethod.__table__
order = Order.__table__
value = CustomFieldValue.__table__
definition = CustomFieldDefinition.__table__
event = TimelineEvent.__table__
user = AppUser.__table__
token = ApiToken.__table__

# Customer columns that are personal data: erased, and refused on an erased customer.
PERSONAL = ("first_name", "last_name", "company_name", "email", "phone", "reference_id", "note")


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
# (Not "values": CUSTOM_FIELDS_CHANGED keeps the values set there.)
KEPT_KEYS = {"source", "line", "order", "amount", "total", "currency", "entry", "group"}
KEPT_KEYS |= {"status", "code", "certificate", "paymentMethod", "account", "fields", "key"}
KEPT_KEYS |= {"duplicates", "survivor", "balances", "customerIds", "address"}
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
        raise _refuse(
            path, UserErrorCode.ERASED, f"This customer was erased: {what} cannot change."
        )


def _clean_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise _refuse(
            ["input", "reason"], UserErrorCode.REQUIRED, "Say why (e.g. the request's reference)."
        )
    if len(reason) > 1000:
        raise _refuse(["input", "reason"], UserErrorCode.INVALID, "At most 1,000 characters.")
    validate.refuse_card_numbers(reason)
    return reason


async def _lock(conn: AsyncConnection, ctx: Context, customer_id: int) -> list[Any]:
    """The target, then every record merged into it, locked in that order."""
    path = ["input", "customerId"]
    stmt = scope_customers(select(customer), ctx.viewer).where(customer.c.id == customer_id)
    target = (await conn.execute(stmt.with_for_update())).first()
    if target is None:
        raise _refuse(path, UserErrorCode.NOT_FOUND, "No such customer.")
    if target.status == CustomerStatus.MERGED:
        raise _refuse(
            path,
            UserErrorCode.CONFLICT,
            "This customer was merged into another: erase the survivor (its merged records "
            "are erased with it).",
        )
    if target.erased_at is not None:
        raise _refuse(path, UserErrorCode.ERASED, "This customer is erased already.")
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
        # Kept keys too lose any mention (a tax code that was an email, say).
        data = _redacted(_event_data(r.data), former)
        summary = _event_summary(r.kind, r.summary, former)
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
    (SavedSearch.__table__, "filter"),  # a search for this person's email or name
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
        raise _refuse(None, UserErrorCode.FORBIDDEN, "Only admins erase customers.")
    reason = _clean_reason(reason)
    async with transaction(ctx) as conn:
        records = await _lock(conn, ctx, customer_id)
        ids = [r.id for r in records]
        uses = await _accounts(conn, records)
        former = await _former(conn, records, uses)
        if former.mentioned(reason):
            raise _refuse(
                ["input", "reason"],
                UserErrorCode.INVALID,
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
        # Tags are free text staff typed about the person; consent keeps its states and
        # dates (proof of what was agreed) but not where it came from (free text).
        await conn.execute(
            update(customer)
            .where(customer.c.id.in_(ids))
            .values(
                tags=[],
                **{consent.column(ch, "source"): None for ch in consent.CHANNELS},
            )
        )
        merged = [r.number for r in records[1:]]
        return await record(
            conn,
            customer_id,
            "CUSTOMER_ERASED",
            "Personal data erased (privacy request)",
            actor_id=ctx.viewer.user_id,
            data={"reason": reason, "mergedRecords": merged},
            at_once=True,  # the payload is the event: its id now
        )


def erased_fields(values: Sequence[str]) -> list[str]:
    """Which of a customerUpdate's columns an erased customer refuses."""
    return sorted(set(values) & set(PERSONAL))
