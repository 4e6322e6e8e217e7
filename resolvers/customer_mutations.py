"""Customer use cases: create, update (optimistic), archive/restore, notes; addresses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from models import Account, Address, AppUser, CustomerSalesChannel, SalesChannel
from models.enums import CustomerStatus, Role
from resolvers import validate
from resolvers.accounts import visible_accounts
from resolvers.consent import ASKED
from resolvers.context import Context
from resolvers.custom_field_mutations import write_values
from resolvers.customers import COMPUTED, customer
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused, transaction
from resolvers.privacy import erased_fields, refuse_if_erased
from resolvers.timeline import record
from resolvers.writes import lock_customers, touch

address = Address.__table__
user = AppUser.__table__
link = CustomerSalesChannel.__table__
# A whole customer row as resolvers.customers.customer_row() selects it.
CUSTOMER_ROW = (*customer.c, *(e.label(name) for name, e in COMPUTED.items()))
# Built once, its values given at execution: .values(...) per request rebuilt the statement
# and its cache key (~0.4 ms of a customerCreate's ~3.8 ms in the worker).
INSERT_CUSTOMER = insert(customer).returning(*CUSTOMER_ROW)
CONTACT = {"first_name", "last_name", "email", "phone"}  # what a site user may edit
NAMES = ("first_name", "last_name", "company_name", "email")


@dataclass
class CustomerChanges:
    """Columns to set (absent = unchanged; None = clear), validated by `clean`."""

    values: dict[str, Any] = field(default_factory=dict)
    sales_channel_ids: list[int] | None = None
    phone_region: str | None = None
    # customerCreate only: (key, value) pairs; given, every required field must be in them.
    custom_fields: list[tuple[str, str | None]] | None = None


def clean(changes: CustomerChanges, *, parse_phone: bool = True) -> dict[str, Any]:
    v = dict(changes.values)
    validate.refuse_card_numbers(v)
    for name in (*NAMES, "reference_id", "tax_code", "note"):
        if isinstance(v.get(name), str):
            v[name] = v[name].strip() or None
    if "email" in v:
        v["email"] = validate.email(v["email"], ["input", "email"])
    if "phone" in v and parse_phone:
        v["phone"] = validate.phone(v["phone"], changes.phone_region, ["input", "phone"])
    return v


async def _address_country(conn, customer_id: int) -> str | None:
    """Where a national phone number is most likely from: the customer's default address."""
    stmt = (
        select(address.c.country)
        .where(address.c.customer_id == customer_id)
        .order_by(address.c.is_default.desc(), address.c.id)
        .limit(1)
    )
    return (await conn.execute(stmt)).scalar()


def change_text(value: Any) -> str | None:
    """A value as a timeline change records it: text, enums by their label."""
    return None if value is None else str(getattr(value, "value", value))


def changes_of(row: Any, values: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """What `values` would change on a customer row, as a CUSTOMER_UPDATED event records it:
    {column: {"old", "new"}}, only the columns that differ."""
    return {
        k: {"old": change_text(getattr(row, k)), "new": change_text(v)}
        for k, v in sorted(values.items())
        if getattr(row, k) != v
    }


def _duplicate_email(exc: IntegrityError) -> Refused:
    if "uq_customer_email_live" in str(exc.orig):
        return Refused(
            Problem(
                ["input", "email"],
                UserErrorCode.DUPLICATE,
                "Another customer already has this email.",
            )
        )
    raise exc


async def check_rep(conn, ctx: Context, values: dict[str, Any]) -> None:
    """The sales rep a customer may be given by this viewer (customerCreate/Update and bulk
    updates): a rep assigns to themselves only; the rep must exist."""
    rep = values.get("sales_rep_id")
    if rep is None:
        return
    if ctx.viewer.role is Role.SALES_REP and rep != ctx.viewer.user_id:
        raise Refused(
            Problem(
                ["input", "salesRepId"],
                UserErrorCode.FORBIDDEN,
                "Sales reps assign customers to themselves only.",
            )
        )
    found = (
        await conn.execute(select(user.c.id).where(user.c.id == rep, user.c.role == Role.SALES_REP))
    ).first()
    if found is None:
        raise Refused(
            Problem(["input", "salesRepId"], UserErrorCode.NOT_FOUND, "No such sales rep.")
        )


async def _check_refs(
    conn, ctx: Context, values: dict[str, Any], channel_ids: list[int] | None
) -> None:
    """Unknown accounts or channels are the client's mistake, not a database error. An
    account must be one the viewer sees (a rep cannot bill to someone else's account)."""
    account_id = values.get("account_id")
    if account_id is not None:
        table = Account.__table__
        stmt = visible_accounts(ctx).with_only_columns(table.c.id).where(table.c.id == account_id)
        if (await conn.execute(stmt)).first() is None:
            raise Refused(
                Problem(["input", "accountId"], UserErrorCode.NOT_FOUND, "No such account.")
            )
    if channel_ids:
        table = SalesChannel.__table__
        found = {
            r[0] for r in await conn.execute(select(table.c.id).where(table.c.id.in_(channel_ids)))
        }
        if found != set(channel_ids):
            raise Refused(
                Problem(
                    ["input", "salesChannelIds"], UserErrorCode.NOT_FOUND, "No such sales channel."
                )
            )


async def _set_channels(conn, customer_id: int, ids: list[int] | None) -> None:
    if ids is None:
        return
    await conn.execute(delete(link).where(link.c.customer_id == customer_id))
    if ids:
        await conn.execute(
            insert(link),
            [{"customer_id": customer_id, "sales_channel_id": i} for i in sorted(set(ids))],
        )


async def create(ctx: Context, changes: CustomerChanges) -> Any:
    """A new customer, its row as the viewer reads it (columns and computed fields, from
    RETURNING: no second read). Custom fields are optional here (quick-add, imports); when
    the input carries some, they are validated like customerSetCustomFields, required ones
    included."""
    if ctx.viewer.role not in (Role.ADMIN, Role.SALES_REP):
        raise Refused(Problem(None, UserErrorCode.FORBIDDEN, "Only staff create customers."))
    values = clean(changes)
    validate.refuse_card_numbers(changes.custom_fields)
    if not any(values.get(n) for n in NAMES):
        raise Refused(
            Problem(
                ["input"],
                UserErrorCode.REQUIRED,
                "Give a first or last name, a company or an email.",
            )
        )
    if ctx.viewer.role is Role.SALES_REP and values.get("sales_rep_id") is None:
        values["sales_rep_id"] = ctx.viewer.user_id  # a rep's new customer is theirs
    try:
        async with transaction(ctx) as conn:
            await check_rep(conn, ctx, values)
            await _check_refs(conn, ctx, values, changes.sales_channel_ids)
            row = (await conn.execute(INSERT_CUSTOMER, values)).one()
            cid = row.id
            await _set_channels(conn, cid, changes.sales_channel_ids)
            fields = None
            if changes.custom_fields is not None:
                fields = await write_values(
                    conn, cid, changes.custom_fields, ["input", "customFields"]
                )
            await record(
                conn,
                cid,
                "CUSTOMER_CREATED",
                "Customer created",
                actor_id=ctx.viewer.user_id,
                data={"source": "admin", **({"customFields": fields} if fields else {})},
            )
    except IntegrityError as exc:
        raise _duplicate_email(exc) from exc
    return row


async def update_customer(
    ctx: Context, customer_id: int, expected_version: int | None, changes: CustomerChanges
) -> int:
    # A national phone number without phoneRegion is read in the customer's address country.
    phone_later = "phone" in changes.values and not changes.phone_region
    values = clean(changes, parse_phone=not phone_later)
    if ctx.viewer.role is Role.CUSTOMER and (set(values) - CONTACT or changes.sales_channel_ids):
        raise Refused(
            Problem(["input"], UserErrorCode.FORBIDDEN, "You may change your contact details only.")
        )
    try:
        async with transaction(ctx) as conn:
            row = (
                await lock_customers(
                    conn, ctx, [customer_id], path=["input", "id"], self_service=True
                )
            )[customer_id]
            if erased_fields(values):
                refuse_if_erased(row, ["input"], "its personal data")
            if expected_version is not None and row.version != expected_version:
                raise Refused(
                    Problem(
                        ["input", "expectedVersion"],
                        UserErrorCode.CONFLICT,
                        f"Changed meanwhile: now at version {row.version}.",
                    )
                )
            if phone_later:
                values["phone"] = validate.phone(
                    values["phone"], await _address_country(conn, customer_id), ["input", "phone"]
                )
            merged = {n: values.get(n, getattr(row, n)) for n in NAMES}
            if not any(merged.values()) and row.erased_at is None:  # erased: nameless
                raise Refused(
                    Problem(
                        ["input"], UserErrorCode.REQUIRED, "Keep a name, a company or an email."
                    )
                )
            if "phone" in values and values["phone"] is None and row.sms_marketing_state in ASKED:
                raise Refused(
                    Problem(
                        ["input", "phone"],
                        UserErrorCode.INVALID,
                        "SMS marketing consent needs this phone: change smsMarketing first.",
                    )
                )
            await check_rep(conn, ctx, values)
            await _check_refs(conn, ctx, values, changes.sales_channel_ids)
            diff = changes_of(row, values)
            changed = sorted(diff)
            await conn.execute(
                update(customer)
                .where(customer.c.id == customer_id)
                .values(**values, version=customer.c.version + 1, updated_at=func.now())
            )
            await _set_channels(conn, customer_id, changes.sales_channel_ids)
            await record(
                conn,
                customer_id,
                "CUSTOMER_UPDATED",
                f"Updated {', '.join(changed) or 'nothing'}",
                actor_id=ctx.viewer.user_id,
                data={"changes": diff},
            )
    except IntegrityError as exc:
        raise _duplicate_email(exc) from exc
    return customer_id


async def set_status(ctx: Context, customer_id: int, archived: bool) -> int:
    async with transaction(ctx) as conn:
        row = (await lock_customers(conn, ctx, [customer_id], path=["input", "id"]))[customer_id]
        refuse_if_erased(row, ["input", "id"], "its status")  # ERASED is for good
        target = CustomerStatus.ARCHIVED if archived else CustomerStatus.ACTIVE
        if row.status != target:
            await conn.execute(
                update(customer)
                .where(customer.c.id == customer_id)
                .values(status=target, version=customer.c.version + 1)
            )
            await record(
                conn,
                customer_id,
                "CUSTOMER_ARCHIVED" if archived else "CUSTOMER_RESTORED",
                "Archived" if archived else "Restored",
                actor_id=ctx.viewer.user_id,
            )
    return customer_id


async def add_note(ctx: Context, customer_id: int, note: str) -> int:
    note = (note or "").strip()
    if not note:
        raise Refused(Problem(["input", "note"], UserErrorCode.REQUIRED, "Write something."))
    if len(note) > 10_000:
        raise Refused(
            Problem(["input", "note"], UserErrorCode.INVALID, "At most 10,000 characters.")
        )
    validate.refuse_card_numbers(note)
    async with transaction(ctx) as conn:
        await lock_customers(conn, ctx, [customer_id], path=["input", "customerId"])
        event = await record(
            conn,
            customer_id,
            "NOTE_ADDED",
            note[:200],
            actor_id=ctx.viewer.user_id,
            data={"note": note},
            at_once=True,  # the payload is the event: its id now
        )
    return event


# --- addresses ---------------------------------------------------------------------------

ADDRESS_FIELDS = (
    "kind",
    "name",
    "company",
    "line1",
    "line2",
    "city",
    "region",
    "postal_code",
    "country",
    "phone",
)


def clean_address(values: dict[str, Any], current: Any = None) -> dict[str, Any]:
    v = {k: (x.strip() if isinstance(x, str) else x) for k, x in values.items()}
    validate.refuse_card_numbers(v)
    merged = {k: v.get(k, getattr(current, k, None)) for k in ADDRESS_FIELDS}
    if not merged["line1"]:
        raise Refused(
            Problem(["input", "line1"], UserErrorCode.REQUIRED, "Give the street address.")
        )
    country = validate.country(merged["country"] or "", ["input", "country"])
    if "country" in v:
        v["country"] = country
    if "region" in v or "country" in v:
        v["region"] = validate.region(merged["region"], country, ["input", "region"])
    if "phone" in v:
        v["phone"] = validate.phone(v["phone"], country, ["input", "phone"])
    return v


async def _unset_default(conn, customer_id: int, kind: str, keep: int | None) -> None:
    stmt = update(address).where(
        address.c.customer_id == customer_id, address.c.kind == kind, address.c.is_default
    )
    if keep is not None:
        stmt = stmt.where(address.c.id != keep)
    await conn.execute(stmt.values(is_default=False))


async def _lock_address(conn, ctx: Context, address_id: int) -> Any:
    row = (await conn.execute(select(address).where(address.c.id == address_id))).first()
    if row is None:
        raise Refused(Problem(["input", "id"], UserErrorCode.NOT_FOUND, "No such address."))
    try:
        owner = await lock_customers(
            conn, ctx, [row.customer_id], path=["input", "id"], self_service=True
        )
    except Refused as refused:  # out of scope: the address does not exist for this viewer
        if refused.problems[0].code == UserErrorCode.NOT_FOUND:
            raise Refused(
                Problem(["input", "id"], UserErrorCode.NOT_FOUND, "No such address.")
            ) from None
        raise
    refuse_if_erased(owner[row.customer_id], ["input", "id"], "its addresses")
    return (await conn.execute(select(address).where(address.c.id == address_id))).one()


async def add_address(ctx: Context, customer_id: int, values: dict[str, Any], default: bool):
    v = clean_address(values)
    async with transaction(ctx) as conn:
        owner = await lock_customers(
            conn, ctx, [customer_id], path=["input", "customerId"], self_service=True
        )
        refuse_if_erased(owner[customer_id], ["input", "customerId"], "its addresses")
        if default:
            await _unset_default(conn, customer_id, v["kind"], None)
        aid = (
            await conn.execute(
                insert(address)
                .values(customer_id=customer_id, is_default=default, **v)
                .returning(address.c.id)
            )
        ).scalar_one()
        await touch(conn, customer_id)
        await record(
            conn,
            customer_id,
            "ADDRESS_ADDED",
            f"Address added: {v['line1']}",
            actor_id=ctx.viewer.user_id,
            data={"address": aid},
        )
    return aid


async def change_address(
    ctx: Context, address_id: int, values: dict[str, Any], default: bool | None
) -> int:
    async with transaction(ctx) as conn:
        row = await _lock_address(conn, ctx, address_id)
        v = clean_address(values, row)
        kind = v.get("kind", row.kind)
        if default:
            await _unset_default(conn, row.customer_id, kind, address_id)
        if default is not None:
            v["is_default"] = default
        elif "kind" in v and row.is_default and kind != row.kind:
            await _unset_default(conn, row.customer_id, kind, address_id)
        changed = sorted(k for k, x in v.items() if getattr(row, k) != x)
        diff = {k: {"old": change_text(getattr(row, k)), "new": change_text(v[k])} for k in changed}
        if v:
            await conn.execute(update(address).where(address.c.id == address_id).values(**v))
        await touch(conn, row.customer_id)
        await record(
            conn,
            row.customer_id,
            "ADDRESS_UPDATED",
            f"Address updated: {v.get('line1', row.line1)}",
            actor_id=ctx.viewer.user_id,
            data={"address": address_id, "fields": changed, "changes": diff},
        )
    return address_id


async def remove_address(ctx: Context, address_id: int) -> int:
    async with transaction(ctx) as conn:
        row = await _lock_address(conn, ctx, address_id)
        await conn.execute(delete(address).where(address.c.id == address_id))
        await touch(conn, row.customer_id)
        await record(
            conn,
            row.customer_id,
            "ADDRESS_REMOVED",
            f"Address removed: {row.line1}",
            actor_id=ctx.viewer.user_id,
            data={"address": address_id},
        )
    return row.customer_id
