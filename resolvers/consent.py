"""Marketing consent: what a customer agreed to receive, by email and by SMS.

Each channel keeps a state, the opt-in level of a subscription, when it last changed and
where the change came from (customer.{channel}_marketing_*); every change is a
MARKETING_CONSENT_UPDATED timeline event with the old and new values. Staff change it, and
so does a site user for themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, update

from models.enums import MarketingState, OptInLevel, Role
from resolvers import validate
from resolvers.context import Context
from resolvers.customers import customer
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused, transaction
from resolvers.relations import Embedded
from resolvers.timeline import record
from resolvers.writes import lock_customers

CHANNELS = ("email", "sms")
LABELS = {"email": "Email", "sms": "SMS"}
MAX_SOURCE = 100
ASKED = (MarketingState.SUBSCRIBED, MarketingState.PENDING)  # SMS needs a phone for these


def column(channel: str, name: str) -> str:
    """The customer column holding `name` (state, opt_in_level, updated_at, source)."""
    return f"{channel}_marketing_{name}"


# Customer.emailMarketing and smsMarketing, declared once (resolvers/relations.py): each
# channel's MarketingConsent is the customer's own `{channel}_marketing_*` columns.
MARKETING = {
    channel: Embedded(
        {name: column(channel, name) for name in ("state", "opt_in_level", "updated_at", "source")}
    )
    for channel in CHANNELS
}


@dataclass(frozen=True)
class ConsentChange:
    state: MarketingState
    opt_in_level: OptInLevel | None = None
    source: str | None = None


def _source(ctx: Context, raw: str | None, path: list[str]) -> str:
    value = (raw or "").strip()
    if not value:
        return "customer" if ctx.viewer.role is Role.CUSTOMER else "staff"
    if len(value) > MAX_SOURCE:
        raise Refused(Problem(path, UserErrorCode.INVALID, f"At most {MAX_SOURCE} characters."))
    validate.refuse_card_numbers(value)
    return value


def _level(change: ConsentChange, path: list[str]) -> OptInLevel | None:
    if change.state is MarketingState.SUBSCRIBED:
        return change.opt_in_level or OptInLevel.SINGLE
    if change.opt_in_level is not None:
        raise Refused(
            Problem(
                [*path, "optInLevel"],
                UserErrorCode.INVALID,
                "Only a subscription has an opt-in level.",
            )
        )
    return None


async def update_consent(ctx: Context, customer_id: int, changes: dict[str, ConsentChange]) -> int:
    """Set the given channels' consent in one transaction; a channel whose state and level
    do not change keeps its date and source and writes no event."""
    if not changes:
        raise Refused(Problem(["input"], UserErrorCode.REQUIRED, "Send email, sms or both."))
    async with transaction(ctx) as conn:
        row = (
            await lock_customers(
                conn, ctx, [customer_id], path=["input", "customerId"], self_service=True
            )
        )[customer_id]
        values: dict = {}
        diff: dict[str, dict] = {}
        for channel, change in changes.items():
            path = ["input", channel]
            if channel == "sms" and change.state in ASKED and row.phone is None:
                raise Refused(
                    Problem(
                        [*path, "state"], UserErrorCode.INVALID, "SMS consent needs a phone number."
                    )
                )
            level = _level(change, path)
            source = _source(ctx, change.source, [*path, "source"])
            old_state = getattr(row, column(channel, "state"))
            old_level = getattr(row, column(channel, "opt_in_level"))
            if (old_state, old_level) == (change.state, level):
                continue
            values |= {
                column(channel, "state"): change.state,
                column(channel, "opt_in_level"): level,
                column(channel, "updated_at"): func.now(),
                column(channel, "source"): source,
            }
            diff[channel] = {
                "old": {"state": str(old_state), "optInLevel": old_level and str(old_level)},
                "new": {"state": str(change.state), "optInLevel": level and str(level)},
                "source": source,
            }
        if values:
            await conn.execute(
                update(customer)
                .where(customer.c.id == customer_id)
                .values(**values, version=customer.c.version + 1, updated_at=func.now())
            )
            summary = "; ".join(
                f"{LABELS[ch]} marketing {d['new']['state']} (was {d['old']['state']})"
                for ch, d in diff.items()
            )
            await record(
                conn,
                customer_id,
                "MARKETING_CONSENT_UPDATED",
                summary,
                actor_id=ctx.viewer.user_id,
                data=diff,
            )
    return customer_id
