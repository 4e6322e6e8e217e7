"""An import batch's decisions, in memory: row by row in file order, each row matched by
its key to a customer the batch read or created, compared with it, its email's owner
checked, and what the batch will write for that customer gathered on a `_Target`
(changed columns, address, custom values, timeline events). Nothing here reads or writes
the database: resolvers/import_writer.py reads what the batch needs first and writes
what was decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models import Customer
from models.enums import CustomFieldType, MarketingState, OptInLevel
from resolvers import consent as consent_rules
from resolvers import tags as tag_rules
from resolvers.custom_field_mutations import parse as parse_custom
from resolvers.customer_mutations import change_text
from resolvers.errors import UserErrorCode
from resolvers.import_plans import Consent, Plan, RowRefused

customer = Customer.__table__

# A new customer's columns the row leaves out read as their server default (kind, tax status).
DEFAULTS = {
    c.name: c.server_default.arg
    for c in customer.c
    if c.server_default is not None
    and isinstance(getattr(c.server_default, "arg", None), str)
    and c.name != "tags"  # no tags: the default, not inserted (a list where there are)
}
# PostgreSQL's input for the transaction's start time: a consent's updated_at, through the
# text arrays of the set-based statements, is the time the batch writes it.
_NOW = "now"


@dataclass(eq=False)
class _Target:
    """A customer as this batch sees it: read (and locked) at the batch's start, or created
    by an earlier row of the batch; what the batch will write for it."""

    id: int | None  # None: created by this batch, not inserted yet
    number: str | None
    values: dict[str, Any]  # its columns, as they will be
    address: dict[str, Any] | None  # its default shipping address, as it will be
    custom: dict[str, dict[str, Any]] | None = None  # key -> typed columns; None: unread
    line: int = 0  # the row that created it (new ones)
    changed: dict[str, Any] = field(default_factory=dict)  # columns to UPDATE
    bumps: int = 0  # version increments: one per row changing its columns
    address_new: bool = False  # its address is to be inserted
    address_changed: dict[str, Any] = field(default_factory=dict)
    custom_writes: dict[str, str] = field(default_factory=dict)
    key: str | None = None  # the upsert key it was matched or created by
    token: int = 0  # who owns an email before there is an id: -1, -2… for new ones

    @property
    def new(self) -> bool:
        return self.id is None


class Decisions:
    """Decides a batch's rows in memory (`_decide`), from the state the writer read for
    the batch (its keys' customers, its emails' owners, addresses, custom values, tags);
    raises RowRefused for a row it cannot take."""

    def __init__(self, source: str, rep: int | None, definitions: dict) -> None:
        self.definitions = definitions
        self.source = source
        self.rep = rep
        # Read once per batch, then kept current: the live customers with the batch's keys
        # (locked), and the owners of the batch's emails (lower-cased): (id, number), or a
        # new customer's (-n, "on line N").
        self._by_key: dict[str, list[Any]] = {}
        self._email_owner: dict[str, tuple[int, str]] = {}
        # The matched customers' default shipping addresses and custom values (by id).
        self._addresses: dict[int, dict[str, Any]] = {}
        self._custom: dict[int, dict[str, dict[str, Any]]] = {}
        # The batch's tags: each one's key (the database's lower()), each key's spelling.
        self._tag_key: dict[str, str] = {}
        self._tag_spelling: dict[str, str] = {}
        self.column_of: dict[str, str] = {}  # field -> the file's column, for errors
        self._start()

    def _start(self) -> None:
        """A batch's in-memory state, from what _prefetch read."""
        self._targets: dict[int, _Target] = {}  # existing customers, by id
        self._new: list[_Target] = []
        self._events: list[tuple[_Target, str, str, dict[str, Any]]] = []

    def _find(self, plan: Plan) -> _Target | None:
        if plan.key is None:
            return None
        rows = self._by_key.get(plan.key, [])
        if len(rows) > 1:
            raise RowRefused(
                None,
                UserErrorCode.AMBIGUOUS,
                f"Customers {rows[0].number} and {rows[1].number} share this reference ID.",
            )
        if not rows:
            return None
        row = rows[0]
        if isinstance(row, _Target):
            return row
        target = self._targets.get(row.id)
        if target is None:
            target = self._targets[row.id] = _Target(
                row.id, row.number, dict(row._mapping), self._addresses.get(row.id)
            )
            target.custom = self._custom.get(row.id, {})
            target.key, target.token = plan.key, row.id
        return target

    def _email_taken(self, email: str | None, own: int | None) -> None:
        if email is None:
            return
        owner = self._email_owner.get(email.lower())
        taken = owner[1] if owner is not None and owner[0] != own else None
        if taken is not None:
            raise RowRefused(
                None,
                UserErrorCode.DUPLICATE,
                f"Customer {taken} already has this email (to update customers by their"
                " email, import with the email as the key).",
            )

    def _decide(self, plan: Plan) -> str:
        """Create, update or leave the row's customer, in memory; raises RowRefused."""
        current = self._find(plan)
        if current is None:
            self._email_taken(plan.values.get("email"), None)
            if plan.custom:
                self._required(set(plan.custom))
            values = {**DEFAULTS, **plan.values}
            if self.rep is not None:
                values["sales_rep_id"] = self.rep
            tags = self._tags(plan, {})
            if tags is not None and tags[0]:  # none: the column's default
                values["tags"], values["tag_keys"] = tags
            consent, consent_diff = self._consent(plan, values, values.get("phone"))
            values.update(consent)
            target = _Target(None, None, values, plan.address and dict(plan.address))
            target.line, target.key = plan.line, plan.key
            target.address_new = plan.address is not None
            target.custom = {k: self._typed(k, v) for k, v in plan.custom.items()}
            target.custom_writes = dict(plan.custom)
            target.token = -1 - len(self._new)
            self._new.append(target)
            if plan.values.get("email"):  # taken by this row from now on
                label = f"on line {plan.line}"
                self._email_owner[plan.values["email"].lower()] = (target.token, label)
            if plan.key is not None:
                self._by_key[plan.key] = [target]
            # The consent it starts with is in its creation event (customerMarketingConsent-
            # Update's old/new/source per channel): one event per row, as fast as without.
            data = self._data(plan.line) | ({"consent": consent_diff} if consent_diff else {})
            self._events.append((target, "CUSTOMER_CREATED", "Customer created by import", data))
            return "created"
        return "updated" if self._update(plan, current) else "unchanged"

    def _update(self, plan: Plan, target: _Target) -> bool:
        old = target.values
        values = {k: v for k, v in plan.values.items() if change_text(old.get(k)) != change_text(v)}
        changes: dict[str, Any] = {
            k: {"old": change_text(old.get(k)), "new": change_text(v)} for k, v in values.items()
        }
        own = target.token
        if "email" in values:
            self._email_taken(values["email"], own)
        tags = self._tags(plan, _tags_of(old))
        if tags is not None and tags[0] != list(old.get("tags") or []):
            values["tags"] = tags[0]
            changes["tags"] = {"old": list(old.get("tags") or []), "new": tags[0]}
        phone = plan.values["phone"] if "phone" in plan.values else old.get("phone")
        consent, consent_diff = self._consent(plan, old, phone)
        address, address_diff = None, {}
        if plan.address:
            if target.address is None:
                address = dict(plan.address)
            else:
                address_diff = {k: v for k, v in plan.address.items() if target.address.get(k) != v}
            if address is not None or address_diff:
                changes["address"] = {"new": plan.address.get("line1")}
        custom = self._changed_custom(target, plan.custom) if plan.custom else {}
        if custom:
            self._required({*(target.custom or {}), *custom})
        changes.update({f"customFields.{k}": {"new": v} for k, v in custom.items()})
        # Decided: nothing below refuses the row, so the target changes now.
        if "email" in values:
            if old.get("email"):
                self._email_owner.pop(old["email"].lower(), None)
            if values["email"]:
                self._email_owner[values["email"].lower()] = (own, target.number or "")
        if "tags" in values:
            old["tag_keys"] = tags[1]  # the generated column, as the database will compute it
        values.update(consent)
        if values:
            old.update(values)
            target.changed.update(values)
            target.bumps += 1
        if address is not None:
            target.address, target.address_new = address, True
        elif address_diff:
            target.address.update(address_diff)
            if not target.address_new:
                target.address_changed.update(address_diff)
        if custom:
            target.custom.update({k: self._typed(k, v) for k, v in custom.items()})
            target.custom_writes.update(custom)
        if changes:
            summary = f"Updated by import: {', '.join(sorted(changes))}"
            data = self._data(plan.line) | {"changes": changes}
            self._events.append((target, "CUSTOMER_UPDATED", summary, data))
        self._consent_event(target, consent_diff)
        return bool(changes or consent_diff)

    def _data(self, line: int) -> dict[str, Any]:
        return {"source": self.source, "line": line}

    def _tags(self, plan: Plan, current: dict[str, str]) -> tuple[list[str], list[str]] | None:
        """The customer's tags as the row sets them (None: the file has no Tags column), and
        their keys: the file's list, each tag spelled as the customer already spells it, or
        as customers do (tags.keyed), sorted as tags.sort."""
        if plan.tags is None:
            return None
        keyed: dict[str, str] = {}
        for tag in plan.tags:
            k = self._tag_key[tag]
            keyed.setdefault(k, current.get(k) or self._tag_spelling[k])
        pairs = sorted(keyed.items())
        return tag_rules.sort(pairs), [k for k, _ in pairs]

    def _consent(
        self, plan: Plan, current: dict[str, Any], phone: str | None
    ) -> tuple[dict[str, Any], dict[str, dict]]:
        """The consent columns the row changes, and the change per channel as
        customerMarketingConsentUpdate records it (old, new, source). Raises RowRefused for
        SMS consent without a phone."""
        values: dict[str, Any] = {}
        diff: dict[str, dict] = {}
        for channel, given in (plan.consent or {}).items():
            old_state = MarketingState(current[consent_rules.column(channel, "state")])
            old_level = current.get(consent_rules.column(channel, "opt_in_level"))
            old_level = old_level and OptInLevel(old_level)
            state, level = _consented(given, old_state, old_level)
            if channel == "sms" and state in consent_rules.ASKED and not phone:
                raise RowRefused(
                    self.column_of.get("sms_marketing"),
                    UserErrorCode.INVALID,
                    "SMS consent needs a phone number.",
                )
            if (state, level) == (old_state, old_level):
                continue
            values |= {
                consent_rules.column(channel, "state"): state,
                consent_rules.column(channel, "opt_in_level"): level,
                consent_rules.column(channel, "updated_at"): _NOW,
                consent_rules.column(channel, "source"): self.source,
            }
            diff[channel] = {
                "old": {"state": str(old_state), "optInLevel": old_level and str(old_level)},
                "new": {"state": str(state), "optInLevel": level and str(level)},
                "source": self.source,
            }
        return values, diff

    def _consent_event(self, target: _Target, diff: dict[str, dict]) -> None:
        """A customer's consent changed: customerMarketingConsentUpdate's own event (kind,
        summary and data), so consent has one history whoever changed it."""
        if not diff:
            return
        summary = "; ".join(
            f"{consent_rules.LABELS[ch]} marketing {d['new']['state']} (was {d['old']['state']})"
            for ch, d in diff.items()
        )
        self._events.append((target, "MARKETING_CONSENT_UPDATED", summary, diff))

    def _required(self, keys: set[str]) -> None:
        """write_values' own rule, checked before anything is written: a customer whose
        custom values change has every required field."""
        missing = sorted(k for k, d in self.definitions.items() if d.required and k not in keys)
        if missing:
            raise RowRefused(None, UserErrorCode.REQUIRED, f"Required: {', '.join(missing)}.")

    def _typed(self, key: str, text_value: str) -> dict[str, Any]:
        d = self.definitions[key]
        return parse_custom(CustomFieldType(d.type), text_value, d.options)

    def _changed_custom(self, target: _Target, wanted: dict[str, str]) -> dict[str, str]:
        """The custom values that differ from what is stored (compared typed: `5.0` = `5`)."""
        stored = target.custom or {}
        changed = {}
        for key, text_value in wanted.items():
            row = stored.get(key)
            typed = self._typed(key, text_value)
            if row is None or any(row.get(k) != v for k, v in typed.items()):
                changed[key] = text_value
        return changed


def _tags_of(values: dict[str, Any]) -> dict[str, str]:
    """A customer's tags by key (its `tag_keys`, as the database computed them)."""
    return dict(zip(values.get("tag_keys") or (), values.get("tags") or (), strict=True))


def _consented(
    given: Consent, state: MarketingState, level: OptInLevel | None
) -> tuple[MarketingState, OptInLevel | None]:
    """A channel's (state, opt-in level) after a consent cell: yes subscribes (a
    subscription keeps its level), no unsubscribes who is subscribed or pending, a state
    by name is set as it is."""
    if given is True or given is MarketingState.SUBSCRIBED:
        if state is MarketingState.SUBSCRIBED:
            return state, level
        return MarketingState.SUBSCRIBED, OptInLevel.SINGLE
    if given is False:
        if state in consent_rules.ASKED:
            return MarketingState.UNSUBSCRIBED, None
        return state, level
    return given, None
