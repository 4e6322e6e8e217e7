"""Billing accounts and payment methods. Payment methods keep a processor token, brand,
last 4 digits and expiry: a card number anywhere in the input is refused, never stored."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from models.enums import Role
from resolvers import validate
from resolvers.accounts import account, payment_method, visible_accounts
from resolvers.context import Context
from resolvers.customers import customer
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused, transaction
from resolvers.timeline import record
from resolvers.writes import lock_customers, touch

BILLING = (
    "billing_contact_name",
    "billing_email",
    "billing_phone",
    "billing_line1",
    "billing_line2",
    "billing_city",
    "billing_region",
    "billing_postal_code",
    "billing_country",
)


def _staff(ctx: Context) -> None:
    if ctx.viewer.role not in (Role.ADMIN, Role.SALES_REP):
        raise Refused(Problem(None, UserErrorCode.FORBIDDEN, "Only staff manage billing accounts."))


def clean_account(values: dict[str, Any], current: Any = None) -> dict[str, Any]:
    """Validated columns to set. On update, a region or national phone number is read in
    the account's country (the one sent, else the stored one)."""
    validate.refuse_card_numbers(values)
    v = {k: (x.strip() or None) if isinstance(x, str) else x for k, x in values.items()}
    if "name" in v and not v["name"]:
        raise Refused(Problem(["input", "name"], UserErrorCode.REQUIRED, "Name the account."))
    if "billing_email" in v:
        v["billing_email"] = validate.email(v["billing_email"], ["input", "billingEmail"])
    if v.get("billing_country"):
        v["billing_country"] = validate.country(v["billing_country"], ["input", "billingCountry"])
    country = v.get("billing_country", getattr(current, "billing_country", None))
    if v.get("billing_region"):
        if country is None:
            raise Refused(
                Problem(
                    ["input", "billingCountry"],
                    UserErrorCode.REQUIRED,
                    "A region needs its country.",
                )
            )
        v["billing_region"] = validate.region(
            v["billing_region"], country, ["input", "billingRegion"]
        )
    if v.get("billing_phone"):
        v["billing_phone"] = validate.phone(v["billing_phone"], country, ["input", "billingPhone"])
    return v


async def _customers_of(conn, account_id: int) -> list[int]:
    rows = await conn.execute(
        select(customer.c.id).where(customer.c.account_id == account_id).order_by(customer.c.id)
    )
    return [r[0] for r in rows]


async def _visible_account(conn, ctx: Context, account_id: int, path: list[str]) -> Any:
    row = (
        await conn.execute(
            visible_accounts(ctx).where(account.c.id == account_id).with_for_update()
        )
    ).first()
    if row is None:
        raise Refused(Problem(path, UserErrorCode.NOT_FOUND, "No such account."))
    return row


async def create_account(ctx: Context, values: dict[str, Any], customer_id: int | None) -> int:
    _staff(ctx)
    v = clean_account(values)
    if ctx.viewer.role is Role.SALES_REP and customer_id is None:
        raise Refused(
            Problem(
                ["input", "customerId"],
                UserErrorCode.REQUIRED,
                "A sales rep opens accounts for one of their customers.",
            )
        )
    async with transaction(ctx) as conn:
        if customer_id is not None:
            await lock_customers(conn, ctx, [customer_id], path=["input", "customerId"])
        aid = (await conn.execute(insert(account).values(**v).returning(account.c.id))).scalar_one()
        if customer_id is not None:
            await _attach(conn, ctx, aid, customer_id)
    return aid


async def update_account(ctx: Context, account_id: int, values: dict[str, Any]) -> int:
    _staff(ctx)
    async with transaction(ctx) as conn:
        row = await _visible_account(conn, ctx, account_id, ["input", "id"])
        v = clean_account(values, row)
        if v:
            await conn.execute(
                update(account).where(account.c.id == account_id).values(**v, updated_at=func.now())
            )
        for cid in await _customers_of(conn, account_id):
            await record(
                conn,
                cid,
                "ACCOUNT_UPDATED",
                "Billing account updated",
                actor_id=ctx.viewer.user_id,
                data={"fields": sorted(v)},
            )
    return account_id


async def _attach(conn, ctx: Context, account_id: int, customer_id: int) -> None:
    number = (
        await conn.execute(select(account.c.number).where(account.c.id == account_id))
    ).scalar_one()
    await conn.execute(
        update(customer)
        .where(customer.c.id == customer_id)
        .values(account_id=account_id, version=customer.c.version + 1)
    )
    await record(
        conn,
        customer_id,
        "ACCOUNT_ATTACHED",
        f"Billed to account {number}",
        actor_id=ctx.viewer.user_id,
        data={"account": number},
    )


async def attach(ctx: Context, account_id: int, customer_id: int) -> int:
    _staff(ctx)
    async with transaction(ctx) as conn:
        await lock_customers(conn, ctx, [customer_id], path=["input", "customerId"])
        # A sales rep attaches only to accounts they already see: attaching is not a way
        # to read someone else's billing details.
        await _visible_account(conn, ctx, account_id, ["input", "accountId"])
        await _attach(conn, ctx, account_id, customer_id)
    return customer_id


async def detach(ctx: Context, customer_id: int) -> int:
    _staff(ctx)
    async with transaction(ctx) as conn:
        row = (await lock_customers(conn, ctx, [customer_id], path=["input", "customerId"]))[
            customer_id
        ]
        if row.account_id is not None:
            await conn.execute(
                update(customer)
                .where(customer.c.id == customer_id)
                .values(account_id=None, version=customer.c.version + 1)
            )
            await record(
                conn,
                customer_id,
                "ACCOUNT_DETACHED",
                "No longer billed to an account",
                actor_id=ctx.viewer.user_id,
            )
    return customer_id


def clean_payment_method(values: dict[str, Any]) -> dict[str, Any]:
    validate.refuse_card_numbers(values)
    token = validate.token(values.get("token"), ["input", "token"])
    last4 = values.get("last4")
    if last4 is not None and not re.fullmatch(r"\d{4}", last4):
        raise Refused(Problem(["input", "last4"], UserErrorCode.INVALID, "Four digits."))
    month, year = values.get("exp_month"), values.get("exp_year")
    if (month is None) != (year is None):
        raise Refused(
            Problem(["input", "expMonth"], UserErrorCode.REQUIRED, "Give month and year.")
        )
    if month is not None:
        if not 1 <= month <= 12 or not 2000 <= year <= 2200:
            raise Refused(
                Problem(["input", "expMonth"], UserErrorCode.INVALID, "Not a valid expiry.")
            )
        today = date.today()
        if (year, month) < (today.year, today.month):
            raise Refused(
                Problem(["input", "expYear"], UserErrorCode.INVALID, "The card has expired.")
            )
    return {**values, "token": token}


async def add_payment_method(
    ctx: Context, account_id: int, values: dict[str, Any], default: bool
) -> int:
    _staff(ctx)
    v = clean_payment_method(values)
    async with transaction(ctx) as conn:
        await _visible_account(conn, ctx, account_id, ["input", "accountId"])
        if default:
            await conn.execute(
                update(payment_method)
                .where(payment_method.c.account_id == account_id)
                .values(is_default=False)
            )
        pid = (
            await conn.execute(
                insert(payment_method)
                .values(account_id=account_id, is_default=default, **v)
                .returning(payment_method.c.id)
            )
        ).scalar_one()
        label = f"{v.get('brand') or 'card'} ending {v.get('last4') or '????'}"
        customers = await _customers_of(conn, account_id)
        # Every row write before the first event: `record` takes the timeline's lock, and
        # waiting for a customer row while holding it could deadlock with a money movement.
        for cid in customers:
            await touch(conn, cid)
        for cid in customers:
            await record(
                conn,
                cid,
                "PAYMENT_METHOD_ADDED",
                f"Payment method added: {label}",
                actor_id=ctx.viewer.user_id,
                data={"paymentMethod": pid},
            )
    return pid


async def remove_payment_method(ctx: Context, method_id: int) -> int:
    _staff(ctx)
    async with transaction(ctx) as conn:
        row = (
            await conn.execute(select(payment_method).where(payment_method.c.id == method_id))
        ).first()
        if row is None:
            raise Refused(
                Problem(["input", "id"], UserErrorCode.NOT_FOUND, "No such payment method.")
            )
        await _visible_account(conn, ctx, row.account_id, ["input", "id"])
        await conn.execute(delete(payment_method).where(payment_method.c.id == method_id))
        for cid in await _customers_of(conn, row.account_id):
            await record(
                conn,
                cid,
                "PAYMENT_METHOD_REMOVED",
                f"Payment method removed: {row.brand or 'card'} ending {row.last4}",
                actor_id=ctx.viewer.user_id,
                data={"paymentMethod": method_id},
            )
    return row.account_id
