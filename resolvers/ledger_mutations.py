"""Money movements: charge, payment, credit, adjustment, transfer. All idempotent by key.

Sign convention: an entry's amount is what it adds to the customer's balance, and the
balance is what the customer owes (positive) or has in credit (negative). CHARGE > 0,
PAYMENT and CREDIT < 0, ADJUSTMENT either way. A transfer moves credit from one customer to
another: TRANSFER_OUT (+amount) on the giver, TRANSFER_IN (-amount) on the receiver, one
transfer group. It "overdraws" when the giver's balance would end above zero (the giver
would owe money because of the transfer); refused unless allowOverdraft.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from resolvers import validate
from resolvers.context import Context
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused, transaction
from resolvers.timeline import record, record_many
from resolvers.writes import (
    append,
    append_two,
    claim_key,
    ledger,
    lock_customers,
    store_result,
)

SIGN = {"CHARGE": 1, "PAYMENT": -1, "CREDIT": -1}
EVENT = {
    "CHARGE": "CHARGE_POSTED",
    "PAYMENT": "PAYMENT_RECEIVED",
    "CREDIT": "CREDIT_ISSUED",
    "ADJUSTMENT": "BALANCE_ADJUSTED",
}


async def _replayed(ctx: Context, result: dict) -> tuple[list, Decimal, str]:
    rows = await ctx.rows(
        select(ledger).where(ledger.c.id.in_(result["ids"])).order_by(ledger.c.id)
    )
    return list(rows), Decimal(result["balance"]), result["currency"]


async def post_entry(
    ctx: Context,
    kind: str,
    customer_id: int,
    raw_amount: Any,
    raw_currency: str,
    memo: str | None,
    key: str | None,
) -> tuple[list, Decimal, str]:
    amount = validate.money(raw_amount, ["input", "amount"], positive=kind != "ADJUSTMENT")
    currency = validate.currency(raw_currency, ["input", "currency"])
    validate.refuse_card_numbers(memo)
    signed = amount * SIGN.get(kind, 1)
    payload = {"customer": customer_id, "amount": str(amount), "currency": currency, "memo": memo}
    async with transaction(ctx) as conn:
        stored = await claim_key(conn, ctx, key, f"ledger{kind.title()}", payload)
        if stored is None:
            await lock_customers(conn, ctx, [customer_id], path=["input", "customerId"])
            entry = await append(
                conn, ctx, customer_id, kind, signed, currency, memo=memo, idempotency_key=key
            )
            replay = {"ids": [entry.id], "balance": str(entry.balance_after), "currency": currency}
            await store_result(conn, ctx, key, replay)
            await record(
                conn,
                customer_id,
                EVENT[kind],
                f"{kind.title()} of {amount} {currency}",
                actor_id=ctx.viewer.user_id,
                data={"amount": str(signed), "currency": currency, "entry": entry.id},
            )
    if stored is not None:
        return await _replayed(ctx, stored)
    return [entry], entry.balance_after, currency  # as written: no second read


async def transfer(
    ctx: Context,
    source: int,
    target: int,
    raw_amount: Any,
    raw_currency: str,
    memo: str | None,
    allow_overdraft: bool,
    key: str | None,
) -> tuple[list, Decimal, str]:
    amount = validate.money(raw_amount, ["input", "amount"])
    currency = validate.currency(raw_currency, ["input", "currency"])
    validate.refuse_card_numbers(memo)
    if source == target:
        raise Refused(
            Problem(
                ["input", "toCustomerId"], UserErrorCode.INVALID, "Transfer to another customer."
            )
        )
    payload = {
        "from": source,
        "to": target,
        "amount": str(amount),
        "currency": currency,
        "memo": memo,
        "overdraft": allow_overdraft,
    }
    async with transaction(ctx) as conn:
        stored = await claim_key(conn, ctx, key, "ledgerTransfer", payload)
        if stored is None:
            sides = {source: ["input", "fromCustomerId"], target: ["input", "toCustomerId"]}
            rows = await lock_customers(conn, ctx, [source, target], path=sides)
            group = uuid.uuid4()
            both = {"currency": currency, "transfer_group": group, "memo": memo}
            both["idempotency_key"] = key
            out, into = await append_two(
                conn,
                ctx,
                {**both, "customer_id": source, "kind": "TRANSFER_OUT", "amount": amount},
                {**both, "customer_id": target, "kind": "TRANSFER_IN", "amount": -amount},
            )
            if not allow_overdraft and out.balance_after > 0:  # rolls both entries back
                raise Refused(
                    Problem(
                        ["input", "amount"],
                        UserErrorCode.INSUFFICIENT_FUNDS,
                        f"{rows[source].number} has less than {amount} {currency} in credit.",
                    )
                )
            stored = {
                "ids": [out.id, into.id],
                "balance": str(out.balance_after),
                "currency": currency,
            }
            await store_result(conn, ctx, key, stored)
            written = [out, into]
            sides = ((source, target, "OUT", "to", out), (target, source, "IN", "from", into))
            await record_many(
                conn,
                [
                    {
                        "customer_id": cid,
                        "kind": f"TRANSFER_{side}",
                        "summary": f"Transfer of {amount} {currency} {verb} {rows[other].number}",
                        "actor_id": ctx.viewer.user_id,
                        "data": {
                            "group": str(group),
                            "amount": str(entry.amount),
                            "currency": currency,
                            "entry": entry.id,
                            "counterparty": rows[other].number,
                        },
                    }
                    for cid, other, side, verb, entry in sides
                ],
            )
            return written, out.balance_after, currency  # as written: no second read
    return await _replayed(ctx, stored)
