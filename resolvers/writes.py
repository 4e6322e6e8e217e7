"""Building blocks every mutation shares: find-and-lock the target customer with the
viewer's permission, idempotency keys, and the exact ledger append.

Concurrency: a money movement locks the customer rows it touches (SELECT … FOR UPDATE, in
id order so two transfers between the same pair cannot deadlock), then appends each entry
with the latest balance_after of its (customer, currency) plus its amount, one statement.
READ COMMITTED plus the row lock makes balance_after exact without retry loops;
SERIALIZABLE would need them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import bindparam, func, insert, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from models import IdempotencyKey, LedgerTransaction
from models.enums import CustomerStatus, Role
from resolvers.context import Context
from resolvers.customers import customer
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused
from resolvers.scope import scope_customers

ledger = LedgerTransaction.__table__
idempotency = IdempotencyKey.__table__


async def lock_customers(
    conn: AsyncConnection,
    ctx: Context,
    ids: Sequence[int],
    *,
    path: list[str] | dict[int, list[str]],
    self_service: bool = False,
) -> dict[int, Any]:
    """Lock visible, non-merged customers in id order. Out of scope looks like NOT_FOUND.

    `path` is the input field a problem points at, or one per id (a transfer's two sides).
    `self_service`: a site user (CUSTOMER) may act on their own record (contact details,
    addresses); otherwise only staff may, and a site user gets FORBIDDEN.
    """
    if ctx.viewer.role is Role.CUSTOMER and not self_service:
        raise Refused(Problem(None, UserErrorCode.FORBIDDEN, "Only staff can do this."))
    found = await lock_each(conn, ctx, ids)
    for cid in ids:
        where = path[cid] if isinstance(path, dict) else path
        row = found[cid]
        if isinstance(row, Problem):
            raise Refused(Problem(where, row.code, row.message))
    return found


async def lock_each(
    conn: AsyncConnection, ctx: Context, ids: Sequence[int]
) -> dict[int, Any | Problem]:
    """Lock visible customers in id order: each id's row, or the Problem that refuses it
    (NOT_FOUND: missing or out of scope, alike; CONFLICT: merged). For callers that refuse
    customers one by one (bulk jobs) rather than the whole request (`lock_customers`)."""
    stmt = (
        scope_customers(select(customer), ctx.viewer)
        .where(customer.c.id.in_(sorted(set(ids))))
        .order_by(customer.c.id)
        .with_for_update()
    )
    rows = {row.id: row for row in await conn.execute(stmt)}
    found: dict[int, Any | Problem] = {}
    for cid in ids:
        row = rows.get(cid)
        if row is None:
            found[cid] = Problem(None, UserErrorCode.NOT_FOUND, "No such customer.")
        elif row.status == CustomerStatus.MERGED:
            found[cid] = Problem(
                None, UserErrorCode.CONFLICT, "This customer was merged into another."
            )
        else:
            found[cid] = row
    return found


async def touch(conn: AsyncConnection, customer_id: int) -> None:
    """A change to a customer's children bumps its version (optimistic concurrency)."""
    await conn.execute(
        update(customer)
        .where(customer.c.id == customer_id)
        .values(version=customer.c.version + 1, updated_at=func.now())
    )


# Built once (building it per entry cost as much CPU as running it): the entry's columns
# come as parameters by their names (what metrics read), balance_after is the latest of its
# (customer, currency), 0 before any, plus its amount.
def _balance_after(customer_id, currency, amount):
    """The latest balance_after of (customer, currency), 0 before any, plus `amount`."""
    latest = (
        select(ledger.c.balance_after)
        .where(ledger.c.customer_id == customer_id, ledger.c.currency == currency)
        .order_by(ledger.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(latest, Decimal("0.00")) + amount


_APPEND = (
    insert(ledger)
    .values(
        balance_after=_balance_after(
            bindparam("of_customer", type_=ledger.c.customer_id.type),
            bindparam("of_currency", type_=ledger.c.currency.type),
            bindparam("plus", type_=ledger.c.amount.type),
        )
    )
    .returning(ledger)
)


# A transfer's two entries in one statement (two customers: neither row's balance reads
# the other's), each row's columns as parameters suffixed by its position ("kind_1": what
# metrics read). INSERT … SELECT … UNION ALL, built once: a two-row .values() was compiled
# afresh on every execution.
_ENTRY = (
    "customer_id",
    "kind",
    "amount",
    "currency",
    "order_id",
    "transfer_group",
    "memo",
    "idempotency_key",
    "actor_id",
)


def _entry_select(n: int):
    row = [bindparam(f"{c}_{n}", type_=ledger.c[c].type) for c in _ENTRY]
    by = dict(zip(_ENTRY, row, strict=True))
    return select(*row, _balance_after(by["customer_id"], by["currency"], by["amount"]))


_APPEND_TWO = (
    insert(ledger)
    .from_select([*_ENTRY, "balance_after"], union_all(_entry_select(1), _entry_select(2)))
    .returning(ledger)
)


async def append_two(
    conn: AsyncConnection, ctx: Context, first: dict[str, Any], second: dict[str, Any]
) -> tuple[Any, Any]:
    """`append` for two entries of two different customers in one round trip (a transfer):
    each is customer_id, kind, amount, currency and any of order_id, transfer_group, memo,
    idempotency_key. Returns their rows in that order."""
    if first["customer_id"] == second["customer_id"]:
        raise ValueError("append_two is for two customers")  # the balance would miss one
    params: dict[str, Any] = {}
    for n, entry in ((1, first), (2, second)):
        for c in _ENTRY:
            params[f"{c}_{n}"] = entry.get(c)
        params[f"actor_id_{n}"] = ctx.viewer.user_id
    rows = {row.customer_id: row for row in await conn.execute(_APPEND_TWO, params)}
    return rows[first["customer_id"]], rows[second["customer_id"]]


async def append(
    conn: AsyncConnection,
    ctx: Context,
    customer_id: int,
    kind: str,
    amount: Decimal,
    currency: str,
    *,
    order_id: int | None = None,
    transfer_group: uuid.UUID | None = None,
    memo: str | None = None,
    idempotency_key: str | None = None,
) -> Any:
    """Append one entry with its exact running balance, read and written in one statement.
    The caller holds the customer lock: every earlier entry of the customer has committed
    before this statement takes its snapshot (READ COMMITTED)."""
    values = {
        "customer_id": customer_id,
        "kind": kind,
        "amount": amount,
        "currency": currency,
        "order_id": order_id,
        "transfer_group": transfer_group,
        "memo": memo,
        "idempotency_key": idempotency_key,
        "actor_id": ctx.viewer.user_id,
    }
    bound = {"of_customer": customer_id, "of_currency": currency, "plus": amount}
    return (await conn.execute(_APPEND, {**values, **bound})).one()


def request_hash(operation: str, payload: Any) -> bytes:
    return hashlib.sha256(
        orjson.dumps([operation, payload], default=str, option=orjson.OPT_SORT_KEYS)
    ).digest()


async def claim_key(
    conn: AsyncConnection, ctx: Context, key: str | None, operation: str, payload: Any
) -> dict | None:
    """Claim an idempotency key inside the mutation's transaction.

    Returns the stored result when the same request already succeeded (replay it), None
    when this request is the first (go on, then `store_result`). A concurrent first
    request holds the key's row until it commits or rolls back, so we wait for it. The
    claim rolls back with a refused mutation: nothing is stored for invalid input.
    """
    if key is None:
        return None
    if not 1 <= len(key) <= 255:
        raise Refused(
            Problem(["input", "idempotencyKey"], UserErrorCode.INVALID, "Use 1 to 255 characters.")
        )
    digest = request_hash(operation, payload)
    actor = ctx.viewer.user_id or 0
    inserted = await conn.execute(
        pg_insert(idempotency)
        .values(actor_id=actor, key=key, operation=operation, request_hash=digest)
        .on_conflict_do_nothing()
        .returning(idempotency.c.key)
    )
    if inserted.first() is not None:
        return None
    row = (
        await conn.execute(
            select(idempotency).where(idempotency.c.actor_id == actor, idempotency.c.key == key)
        )
    ).one()
    if row.request_hash != digest or row.operation != operation:
        raise Refused(
            Problem(
                ["input", "idempotencyKey"],
                UserErrorCode.IDEMPOTENCY_CONFLICT,
                "This key was used with different input.",
            )
        )
    return row.result


async def store_result(conn: AsyncConnection, ctx: Context, key: str | None, result: dict) -> None:
    if key is None:
        return
    await conn.execute(
        update(idempotency)
        .where(idempotency.c.actor_id == (ctx.viewer.user_id or 0), idempotency.c.key == key)
        .values(result=result)
    )
