"""Merging duplicate customers into a survivor, all or nothing.

One transaction: lock every involved customer (sorted ids, FOR UPDATE), check scope,
status and expected versions, then move orders (and lines), addresses (identical ones
collapse), tax certificates, timeline events, sales channels, custom field values
(conflicts resolved by field choices, else the survivor's), notes, account and site user;
move each duplicate's balance by transfer entries in one transfer group (history is never
rewritten); mark the duplicates MERGED into the survivor; record the merge on both
timelines. A retry of a finished merge changes nothing and answers the same survivor.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from models import (
    Address,
    CustomerSalesChannel,
    CustomFieldDefinition,
    CustomFieldValue,
    LedgerTransaction,
    Order,
    OrderLine,
    TaxExemptionCertificate,
    TimelineEvent,
)
from models.enums import CustomerStatus, Role
from resolvers import customers as customer_q
from resolvers.context import Context
from resolvers.customers import customer
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused, transaction
from resolvers.rls import set_viewer
from resolvers.scope import scope_customers
from resolvers.timeline import record

address = Address.__table__
ledger = LedgerTransaction.__table__
value = CustomFieldValue.__table__
definition = CustomFieldDefinition.__table__
link = CustomerSalesChannel.__table__

# Contact fields a merge may take from a duplicate (GraphQL name -> column).
FIELDS = {
    "firstName": "first_name",
    "lastName": "last_name",
    "companyName": "company_name",
    "email": "email",
    "phone": "phone",
    "referenceId": "reference_id",
    "accountId": "account_id",
    "salesRepId": "sales_rep_id",
    "taxStatus": "tax_status",
    "taxCode": "tax_code",
}
# Two addresses are the same place when these match (postal code compared normalised).
SAME_PLACE = ("kind", "line1", "line2", "city", "region", "postal_code_norm", "country")
# Tables whose rows simply change hands.
MOVED = (
    Order.__table__,
    OrderLine.__table__,
    TaxExemptionCertificate.__table__,
    TimelineEvent.__table__,
)


@dataclass
class Conflict:
    field: str
    survivor_value: Any
    values: dict[int, Any]  # duplicate id -> its differing value


@dataclass
class Plan:
    survivor: Any
    duplicates: list[Any]
    conflicts: list[Conflict] = field(default_factory=list)
    moves: dict[str, int] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)  # currency -> moved amount


def _refuse(path: list[str], code: UserErrorCode, message: str) -> Refused:
    return Refused(Problem(path, code, message))


async def _lock(conn: AsyncConnection, ctx: Context, ids: Sequence[int]) -> dict[int, Any]:
    """Lock the customers in id order (no deadlocks between overlapping merges)."""
    stmt = (
        scope_customers(customer_q.customer_row(), ctx.viewer)
        .where(customer.c.id.in_(sorted(ids)))
        .order_by(customer.c.id)
        .with_for_update()
    )
    return {row.id: row for row in await conn.execute(stmt)}


async def _count(conn: AsyncConnection, table, ids: Sequence[int]) -> int:
    stmt = select(func.count()).select_from(table).where(table.c.customer_id.in_(list(ids)))
    return (await conn.execute(stmt)).scalar_one()


async def _balances(conn: AsyncConnection, customer_id: int) -> dict[str, Decimal]:
    stmt = (
        select(ledger.c.currency, ledger.c.balance_after)
        .ext(distinct_on(ledger.c.currency))
        .where(ledger.c.customer_id == customer_id)
        .order_by(ledger.c.currency, ledger.c.id.desc())
    )
    return {row.currency: row.balance_after for row in await conn.execute(stmt)}


async def plan(
    conn: AsyncConnection,
    ctx: Context,
    survivor_id: int,
    duplicate_ids: Sequence[int],
    expected_versions: dict[int, int] | None = None,
) -> Plan | None:
    """Validate and describe a merge; None means it already happened (an idempotent retry)."""
    if ctx.viewer.role not in (Role.ADMIN, Role.SALES_REP):
        raise _refuse(["input"], UserErrorCode.FORBIDDEN, "Only staff merge customers.")
    dup_ids = sorted(set(duplicate_ids) - {survivor_id})
    if not dup_ids:
        raise _refuse(
            ["input", "duplicateIds"], UserErrorCode.INVALID, "Give at least one duplicate."
        )
    rows = await _lock(conn, ctx, [survivor_id, *dup_ids])
    if survivor_id not in rows:
        raise _refuse(["input", "survivorId"], UserErrorCode.NOT_FOUND, "Unknown customer.")
    missing = [i for i in dup_ids if i not in rows]
    if missing:
        raise _refuse(["input", "duplicateIds"], UserErrorCode.NOT_FOUND, "Unknown customer.")
    survivor = rows[survivor_id]
    if survivor.status == CustomerStatus.MERGED:
        raise _refuse(
            ["input", "survivorId"], UserErrorCode.CONFLICT, "The survivor was merged away."
        )
    dups = [rows[i] for i in dup_ids]
    if all(d.status == CustomerStatus.MERGED and d.merged_into_id == survivor_id for d in dups):
        return None
    if any(r.erased_at is not None for r in (survivor, *dups)):
        # Merging would take personal data into an erased record, or un-erase one.
        raise _refuse(["input"], UserErrorCode.ERASED, "An erased customer cannot be merged.")
    if any(d.status == CustomerStatus.MERGED for d in dups):
        raise _refuse(
            ["input", "duplicateIds"],
            UserErrorCode.CONFLICT,
            "A duplicate was merged elsewhere meanwhile.",
        )
    for cid, version in (expected_versions or {}).items():
        if cid in rows and rows[cid].version != version:
            raise _refuse(
                ["input", "expectedVersions"],
                UserErrorCode.CONFLICT,
                f"{rows[cid].number} changed since the preview (version {rows[cid].version}).",
            )
    result = Plan(survivor, dups)
    for name, col in FIELDS.items():
        values = {d.id: getattr(d, col) for d in dups}
        differing = {
            k: v for k, v in values.items() if v is not None and v != getattr(survivor, col)
        }
        if differing:
            result.conflicts.append(Conflict(name, getattr(survivor, col), differing))
    for table in (*MOVED, address, value):
        result.moves[table.name] = await _count(conn, table, dup_ids)
    for d in dups:
        for currency, amount in (await _balances(conn, d.id)).items():
            if amount:
                result.balances[currency] = result.balances.get(currency, Decimal(0)) + amount
    return result


async def _take_fields(conn, merge: Plan, choices: dict[str, int]) -> dict[str, Any]:
    """Survivor's new values: the chosen duplicate's, else the survivor's own, else the first
    duplicate that has one (filling blanks loses nothing)."""
    by_id = {d.id: d for d in merge.duplicates}
    changes: dict[str, Any] = {}
    for name, col in FIELDS.items():
        if name in choices:
            changes[col] = getattr(by_id[choices[name]], col)
        elif getattr(merge.survivor, col) is None:
            filled = next((getattr(d, col) for d in merge.duplicates if getattr(d, col)), None)
            if filled is not None:
                changes[col] = filled
    notes = [n for n in [merge.survivor.note, *(d.note for d in merge.duplicates)] if n]
    if len(notes) > 1:
        changes["note"] = "\n\n".join(notes)
    return changes


async def _move_addresses(conn, survivor_id: int, dup_ids: list[int]) -> None:
    mine = address.alias("mine")
    same = and_(
        mine.c.customer_id == survivor_id,
        *[mine.c[c].is_not_distinct_from(address.c[c]) for c in SAME_PLACE],
    )
    await conn.execute(
        delete(address).where(address.c.customer_id.in_(dup_ids), exists().where(same))
    )
    # Keep one default per kind: the survivor's wins.
    has_default = exists().where(
        mine.c.customer_id == survivor_id, mine.c.kind == address.c.kind, mine.c.is_default
    )
    await conn.execute(
        update(address)
        .where(address.c.customer_id.in_(dup_ids), has_default)
        .values(is_default=False)
    )
    # Among the duplicates themselves, keep the oldest default per kind.
    ranked = (
        select(
            address.c.id,
            func.row_number().over(partition_by=address.c.kind, order_by=address.c.id).label("n"),
        )
        .where(address.c.customer_id.in_(dup_ids), address.c.is_default)
        .subquery()
    )
    await conn.execute(
        update(address)
        .where(address.c.id.in_(select(ranked.c.id).where(ranked.c.n > 1)))
        .values(is_default=False)
    )
    await conn.execute(
        update(address).where(address.c.customer_id.in_(dup_ids)).values(customer_id=survivor_id)
    )


async def _move_custom_fields(conn, survivor_id: int, dup_ids: list[int], choices: dict) -> None:
    for key, chosen in choices.items():
        if not key.startswith("customFields."):
            continue
        def_id = select(definition.c.id).where(definition.c.key == key.split(".", 1)[1])
        await conn.execute(
            delete(value).where(
                value.c.customer_id == survivor_id, value.c.definition_id.in_(def_id)
            )
        )
        await conn.execute(
            update(value)
            .where(value.c.customer_id == chosen, value.c.definition_id.in_(def_id))
            .values(customer_id=survivor_id)
        )
    taken = select(value.c.definition_id).where(value.c.customer_id == survivor_id)
    for dup in dup_ids:  # fill what the survivor lacks, oldest duplicate first
        await conn.execute(
            update(value)
            .where(value.c.customer_id == dup, value.c.definition_id.not_in(taken))
            .values(customer_id=survivor_id)
        )
    await conn.execute(delete(value).where(value.c.customer_id.in_(dup_ids)))


async def _transfer_balances(conn, ctx: Context, merge: Plan) -> None:
    group = uuid.uuid4()
    survivor_balance = await _balances(conn, merge.survivor.id)
    for d in merge.duplicates:
        for currency, amount in (await _balances(conn, d.id)).items():
            if not amount:
                continue
            survivor_balance[currency] = survivor_balance.get(currency, Decimal(0)) + amount
            memo = f"Merged {d.number} into {merge.survivor.number}"
            common = {
                "currency": currency,
                "transfer_group": group,
                "actor_id": ctx.viewer.user_id,
                "memo": memo,
            }
            await conn.execute(
                insert(ledger).values(
                    customer_id=d.id,
                    kind="TRANSFER_OUT",
                    amount=-amount,
                    balance_after=Decimal(0),
                    **common,
                )
            )
            await conn.execute(
                insert(ledger).values(
                    customer_id=merge.survivor.id,
                    kind="TRANSFER_IN",
                    amount=amount,
                    balance_after=survivor_balance[currency],
                    **common,
                )
            )


async def merge(
    ctx: Context,
    survivor_id: int,
    duplicate_ids: Sequence[int],
    choices: dict[str, int],
    expected_versions: dict[int, int] | None = None,
) -> int:
    async with transaction(ctx) as conn:
        merge_plan = await plan(conn, ctx, survivor_id, duplicate_ids, expected_versions)
        if merge_plan is None:
            return survivor_id
        dup_ids = [d.id for d in merge_plan.duplicates]
        for name, chosen in choices.items():
            known = name in FIELDS or name.startswith("customFields.")
            if not known or chosen not in [survivor_id, *dup_ids]:
                raise _refuse(
                    ["input", "fieldChoices"],
                    UserErrorCode.INVALID,
                    f"Cannot take {name!r} from a customer outside this merge.",
                )
        choices = {k: v for k, v in choices.items() if v != survivor_id}
        changes = await _take_fields(conn, merge_plan, choices)
        # Free the duplicates' unique values (live email, site user) before the survivor takes them.
        await conn.execute(
            update(customer)
            .where(customer.c.id.in_(dup_ids))
            .values(
                status=CustomerStatus.MERGED,
                merged_into_id=survivor_id,
                user_id=None,
                version=customer.c.version + 1,
                updated_at=func.now(),
            )
        )
        user_id = next((d.user_id for d in merge_plan.duplicates if d.user_id), None)
        if merge_plan.survivor.user_id is None and user_id is not None:
            changes["user_id"] = user_id
        await conn.execute(
            update(customer)
            .where(customer.c.id == survivor_id)
            .values(**changes, version=customer.c.version + 1, updated_at=func.now())
        )
        for table in MOVED:
            await conn.execute(
                update(table)
                .where(table.c.customer_id.in_(dup_ids))
                .values(customer_id=survivor_id)
            )
        await _move_addresses(conn, survivor_id, dup_ids)
        await _move_custom_fields(conn, survivor_id, dup_ids, choices)
        await conn.execute(
            pg_insert(link)
            .from_select(
                ["customer_id", "sales_channel_id"],
                select(literal(survivor_id), link.c.sales_channel_id).where(
                    link.c.customer_id.in_(dup_ids)
                ),
            )
            .on_conflict_do_nothing()
        )
        await conn.execute(delete(link).where(link.c.customer_id.in_(dup_ids)))
        await _transfer_balances(conn, ctx, merge_plan)
        numbers = [d.number for d in merge_plan.duplicates]
        await record(
            conn,
            survivor_id,
            "CUSTOMER_MERGED",
            f"Merged {', '.join(numbers)} into this customer",
            actor_id=ctx.viewer.user_id,
            data={
                "duplicates": numbers,
                "fields": sorted(choices),
                "balances": {k: str(v) for k, v in merge_plan.balances.items()},
            },
        )
        for d in merge_plan.duplicates:
            await record(
                conn,
                d.id,
                "MERGED_INTO",
                f"Merged into {merge_plan.survivor.number}",
                actor_id=ctx.viewer.user_id,
                data={"survivor": merge_plan.survivor.number},
            )
    return survivor_id


async def preview(ctx: Context, survivor_id: int, duplicate_ids: Sequence[int]) -> Plan | None:
    async with ctx.engine.connect() as conn:
        try:
            await set_viewer(conn, ctx.viewer)
            return await plan(conn, ctx, survivor_id, duplicate_ids)
        finally:
            await conn.rollback()  # releases the preview's row locks at once
