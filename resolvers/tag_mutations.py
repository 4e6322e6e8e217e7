"""Tag many customers at once, or untag them: one transaction, one event per changed
customer (the rules are resolvers/tags.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, update

from resolvers import tags as tag_q
from resolvers.context import Context
from resolvers.customers import customer
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused, transaction
from resolvers.timeline import record_many
from resolvers.writes import lock_customers

MAX_CUSTOMERS = 250  # per call; customerBulkUpdate takes a whole search

_SET_TAGS = (
    update(customer)
    .where(customer.c.id == bindparam("cid"))
    .values(tags=bindparam("new_tags"), version=customer.c.version + 1, updated_at=func.now())
)


async def change_tags(
    ctx: Context, customer_ids: Sequence[int], raw_tags: Sequence[str], *, add: bool
) -> list[int]:
    """Add (or remove) `raw_tags` on every customer in `customer_ids`, all or nothing.
    Customers it does not change get no event and keep their version."""
    if not customer_ids:
        raise Refused(
            Problem(["input", "customerIds"], UserErrorCode.REQUIRED, "Name at least one customer.")
        )
    if len(set(customer_ids)) > MAX_CUSTOMERS:
        raise Refused(
            Problem(
                ["input", "customerIds"],
                UserErrorCode.INVALID,
                f"At most {MAX_CUSTOMERS} customers at once; customerBulkUpdate takes more.",
            )
        )
    tags = tag_q.clean(raw_tags, ["input", "tags"])
    if not tags:
        raise Refused(Problem(["input", "tags"], UserErrorCode.REQUIRED, "Name at least one tag."))
    ids = sorted(set(customer_ids))
    async with transaction(ctx) as conn:
        rows = await lock_customers(conn, ctx, ids, path=["input", "customerIds"])
        given = dict(await tag_q.keyed(conn, tags))  # key -> spelling
        changes, events = [], []
        for cid in ids:
            row = rows[cid]
            current = dict(zip(row.tag_keys, row.tags, strict=True))
            result, added, removed = tag_q.merged(
                current, given if add else {}, set() if add else set(given)
            )
            changed = added if add else removed
            if not changed:
                continue
            if len(result) > tag_q.MAX_PER_CUSTOMER:
                raise Refused(
                    Problem(
                        ["input", "tags"], UserErrorCode.INVALID, tag_q.too_many(row.number, result)
                    )
                )
            changes.append({"cid": cid, "new_tags": result})
            events.append(
                {
                    "customer_id": cid,
                    "kind": "TAGS_ADDED" if add else "TAGS_REMOVED",
                    "summary": f"{'Tagged' if add else 'Untagged'} {', '.join(changed)}",
                    "actor_id": ctx.viewer.user_id,
                    "data": {"tags": changed},
                }
            )
        if changes:
            await conn.execute(_SET_TAGS, changes)
            await record_many(conn, events)  # last: it holds the event-order lock to commit
    return list(dict.fromkeys(customer_ids))
