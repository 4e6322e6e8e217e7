"""Import rows: each validated like customerCreate/Update, upserted by a key.

A row is planned in Python first (the write side's validation: names, email, phone in the
row's country, ISO codes, custom field types, card numbers refused), then a batch of
plans is written in one transaction: rows whose key matches a live customer update it
(only what differs, one CUSTOMER_UPDATED event with the changes), others create one. A
rejected row carries its line, column, code and message; it never stops the others
(`on_error="skip"`), or it stops everything and nothing is written (`"abort"`).
`dry_run` plans and checks every row against the database, then rolls back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import BigInteger, Text, cast, select, text, union_all
from sqlalchemy.dialects.postgresql import CITEXT
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import (
    Address,
    Customer,
    CustomFieldDefinition,
    CustomFieldValue,
)
from models.enums import CustomerStatus, CustomFieldType, MarketingState, OptInLevel, Role
from resolvers import consent as consent_rules
from resolvers import tags as tag_rules
from resolvers.custom_field_mutations import parse as parse_custom
from resolvers.custom_field_mutations import write_values
from resolvers.customer_mutations import change_text
from resolvers.errors import UserErrorCode
from resolvers.import_plans import (
    Consent,
    Plan,
    Planner,
    Rejected,
    RowRefused,
    problem,
)
from resolvers.imports import FileRefused, Reader, Row
from resolvers.mutations import Refused
from resolvers.rls import set_viewer
from resolvers.timeline import record_many
from resolvers.unnest_writes import arrays, insert_sql, update_sql, values_table
from resolvers.viewer import Viewer

customer = Customer.__table__
address = Address.__table__
definition = CustomFieldDefinition.__table__
value = CustomFieldValue.__table__

KEYS = {"reference-id": "reference_id", "email": "email"}


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rows: int = 0
    errors: list[Rejected] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    written: bool = False  # False: a dry run, or an abort that rolled everything back

    def summary(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged,"
            f" {self.rejected} rejected"
        )


@dataclass(frozen=True)
class ImportOptions:
    key: str = "reference-id"  # or "email"
    on_error: str = "skip"  # or "abort"
    dry_run: bool = False
    mapping: dict[str, str] | None = None
    batch_size: int = 2000  # rows per transaction: a dozen statements whatever the size
    source: str = "import"  # the timeline's `data.source`


def _batches(items: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Abort(Exception):
    """Rolls an abort-on-error or dry-run import back."""


# Called inside each batch's transaction with the rows it rejected: a job stores its
# progress there, so the counters commit with the rows (or not at all).
BatchHook = Callable[[AsyncConnection, "ImportResult", list[Rejected]], Awaitable[None]]
MAX_KEPT_ERRORS = 1000  # in memory, for the caller to show; a job keeps every one in its table


async def run_import(
    engine: AsyncEngine,
    stream: IO[bytes],
    options: ImportOptions,
    *,
    actor_id: int | None = None,
    sales_rep_id: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_batch: BatchHook | None = None,
    skip: int = 0,
    counts: dict[str, int] | None = None,
) -> ImportResult:
    """Import a file; see the module docstring. Raises FileRefused for a file that cannot
    be imported at all (nothing is written then). `skip`: rows already committed by an
    earlier run of the same job (a resumed job starts after them)."""
    if options.key not in KEYS:
        raise FileRefused("BAD_KEY", f"--key is one of {', '.join(KEYS)}.")
    key = KEYS[options.key]
    async with engine.connect() as conn:
        definitions = {
            r.key: r for r in await conn.execute(select(definition).where(~definition.c.archived))
        }
    reader = Reader(stream, mapping=options.mapping, custom_keys=frozenset(definitions))
    result = ImportResult(
        header=reader.columns.header,
        unknown_columns=list(reader.columns.unknown),
        ignored_columns=list(reader.columns.unused),
    )
    planner = Planner(reader.columns, key, definitions)
    writer = _Writer(key, options.source, actor_id, sales_rep_id, definitions)
    writer.column_of = planner.column_of
    rows = _after(reader, skip)
    result.rows = skip
    for name, value in (counts or {}).items():  # a resumed job goes on counting
        setattr(result, name, value)

    async def write(conn: AsyncConnection, plans: list[Plan | Rejected]) -> None:
        before = _counts(result), dict(writer.seen), len(result.errors)
        try:
            async with conn.begin_nested():  # the batch fast, unless a race refuses a row
                await writer.write(conn, plans, result)
        except IntegrityError:
            _restore(result, before[0])
            writer.seen = before[1]
            del result.errors[before[2] :]
            writer.careful = True  # this batch row by row, each in a savepoint
            try:
                await writer.write(conn, plans, result)
            finally:
                writer.careful = False
        if on_batch is not None:
            await on_batch(conn, result, writer.rejected)
        if progress:
            progress(len(plans))

    # Row-level security: every transaction names its viewer first. Imports are an
    # admin's (the CLI's operator, or the admin who started the job).
    viewer = Viewer(user_id=actor_id, role=Role.ADMIN)
    whole = options.dry_run or options.on_error == "abort"
    batches = _batches(rows, options.batch_size)
    try:
        if whole:  # one transaction: all or nothing
            async with engine.begin() as conn:
                await set_viewer(conn, viewer)
                async with contextlib.aclosing(_planned(planner, batches)) as planned:
                    async for plans in planned:
                        await write(conn, plans)
                if result.rejected or options.dry_run:
                    raise _Abort
        else:
            async with contextlib.aclosing(_planned(planner, batches)) as planned:
                async for plans in planned:
                    async with engine.begin() as conn:
                        await _begin(conn, viewer)
                        await write(conn, plans)
        result.written = not options.dry_run
    except _Abort:
        result.written = False
    return result


_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def _begin(conn: AsyncConnection, viewer: Viewer) -> None:
    """An import transaction's first statements. Its reads are planned for the tables as
    they are now: an import grows the very tables it reads, and asyncpg's prepared
    statements would otherwise keep a generic plan made while they were empty (a sequential
    scan that, at 20,000 customers, took a second per batch) until autovacuum analyzes."""
    await set_viewer(conn, viewer)
    await conn.execute(_CUSTOM_PLANS)


async def _planned(
    planner: Planner, batches: Iterator[list[Row]]
) -> AsyncIterator[list[Plan | Rejected]]:
    """The batches read and planned one ahead, in a worker thread: reading and validating
    the next batch (pure Python: CSV, phonenumbers, pycountry) runs while PostgreSQL writes
    this one, so the import costs about the slower of the two, not their sum."""

    def plan_next() -> list[Plan | Rejected] | None:
        batch = next(batches, None)
        return None if batch is None else [planner.plan(row) for row in batch]

    pending = asyncio.ensure_future(asyncio.to_thread(plan_next))
    try:
        while (plans := await pending) is not None:
            pending = asyncio.ensure_future(asyncio.to_thread(plan_next))
            yield plans
    finally:
        # Stopped early (an abort, an error): the file is not read again once this returns.
        if not pending.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)


def _grouped(items: list, row_of) -> list[tuple[tuple[str, ...], list[tuple[int, dict]]]]:
    """(index, row) pairs grouped by the row's columns: one statement per set of columns,
    so a column a row leaves out keeps its default instead of becoming NULL."""
    groups: dict[tuple[str, ...], list[tuple[int, dict]]] = {}
    for index, item in enumerate(items):
        row = row_of(item)
        groups.setdefault(tuple(sorted(row)), []).append((index, row))
    return list(groups.items())


_COUNTS = ("rows", "created", "updated", "unchanged", "rejected")


def _counts(result: ImportResult) -> dict[str, int]:
    return {name: getattr(result, name) for name in _COUNTS}


def _restore(result: ImportResult, counts: dict[str, int]) -> None:
    for name, value in counts.items():
        setattr(result, name, value)


def _after(rows: Iterable[Row], skip: int) -> Iterator[Row]:
    for index, row in enumerate(rows):
        if index >= skip:
            yield row


_NEW_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('customer', 'id')) FROM generate_series(1, :n)"
)
# A new customer's columns the row leaves out read as their server default (kind, tax status).
_DEFAULTS = {
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


class _Writer:
    """Writes batches of plans; remembers the customers this import created or updated,
    so a key repeated further down the file updates the same customer.

    A batch is decided in memory first, row by row in file order (match by key, compare,
    check email ownership), then written with a few set-based statements: updates, then
    inserts (an email an update frees is free for a new customer), then addresses, custom
    values and the timeline events."""

    def __init__(
        self, key: str, source: str, actor_id: int | None, rep: int | None, definitions: dict
    ) -> None:
        self.key = key
        self.definitions = definitions
        self.source = source
        self.actor_id = actor_id
        self.rep = rep
        self.seen: dict[str, int] = {}
        self.rejected: list[Rejected] = []  # this batch's, for the batch hook
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
        # After a race with another writer (a unique email taken meanwhile), the batch runs
        # again row by row, each in a savepoint, so the row at fault is rejected alone.
        self.careful = False

    async def write(self, conn: AsyncConnection, plans: list[Plan | Rejected], result) -> None:
        self.rejected = []
        if self.careful:
            await self._write_carefully(conn, plans, result)
            return
        valid = [p for p in plans if isinstance(p, Plan)]
        await self._prefetch(conn, valid)
        await self._read_children(conn, valid)
        self._start()
        for item in plans:
            result.rows += 1
            if isinstance(item, Rejected):
                self._reject(result, item)
                continue
            try:
                outcome = self._decide(item)
            except RowRefused as exc:
                self._reject(
                    result, Rejected(item.line, item.raw, exc.column, exc.code, exc.message)
                )
                continue
            setattr(result, outcome, getattr(result, outcome) + 1)
        await self._flush(conn)

    async def _write_carefully(self, conn: AsyncConnection, plans, result) -> None:
        for item in plans:
            result.rows += 1
            if isinstance(item, Rejected):
                self._reject(result, item)
                continue
            try:
                async with conn.begin_nested():
                    await self._prefetch(conn, [item])
                    await self._read_children(conn, [item])
                    self._start()
                    outcome = self._decide(item)
                    await self._flush(conn)
            except RowRefused as exc:
                self._reject(
                    result, Rejected(item.line, item.raw, exc.column, exc.code, exc.message)
                )
                continue
            except IntegrityError:
                message = "Another customer took this email meanwhile."
                self._reject(
                    result, Rejected(item.line, item.raw, None, UserErrorCode.DUPLICATE, message)
                )
                continue
            setattr(result, outcome, getattr(result, outcome) + 1)

    async def _prefetch(self, conn: AsyncConnection, plans: list[Plan]) -> None:
        """One read for the batch's keys (locking those customers, in id order) and one for
        its emails, instead of two per row. A key this import wrote already is read by its
        customer's id: as it is now."""
        live = customer.c.status != CustomerStatus.MERGED
        keys = {p.key for p in plans if p.key is not None}
        by_id = {self.seen[k]: k for k in keys if k in self.seen}
        fresh = sorted(keys - set(by_id.values()))
        self._by_key = {}
        if keys:
            wanted, matched = values_table("keys", Text), customer.alias("matched")
            key = wanted.c.v if self.key == "reference_id" else cast(wanted.c.v, CITEXT)
            ids = union_all(
                select(matched.c.id).select_from(
                    wanted.join(matched, matched.c[self.key] == key)
                ),  # email is citext: compared without case
                select(values_table("ids", BigInteger).c.v),
            )
            rows = await conn.execute(
                select(customer)
                .where(live, customer.c.id.in_(ids))
                .order_by(customer.c.id)
                .with_for_update(),
                {"keys": fresh, "ids": list(by_id)},
            )
            for row in rows:
                key = by_id.get(row.id)
                if key is None:
                    key = getattr(row, self.key)
                    key = key.lower() if self.key == "email" else key
                self._by_key.setdefault(key, []).append(row)
        emails = sorted({p.values["email"].lower() for p in plans if p.values.get("email")})
        self._email_owner = {}
        if emails:
            wanted = values_table("emails", Text)
            rows = await conn.execute(
                select(customer.c.id, customer.c.number, customer.c.email)
                .select_from(wanted.join(customer, customer.c.email == cast(wanted.c.v, CITEXT)))
                .where(live),
                {"emails": emails},
            )
            self._email_owner = {r.email.lower(): (r.id, r.number) for r in rows}

    def _start(self) -> None:
        """A batch's in-memory state, from what _prefetch read."""
        self._targets: dict[int, _Target] = {}  # existing customers, by id
        self._new: list[_Target] = []
        self._events: list[tuple[_Target, str, str, dict[str, Any]]] = []

    def _reject(self, result: ImportResult, rejected: Rejected) -> None:
        result.rejected += 1
        self.rejected.append(rejected)
        if len(result.errors) < MAX_KEPT_ERRORS:
            result.errors.append(rejected)

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
            values = {**_DEFAULTS, **plan.values}
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

    async def _read_children(self, conn: AsyncConnection, plans: list[Plan]) -> None:
        """The default shipping addresses and custom values of the customers the batch
        matched: one read each, for the rows that carry them."""
        await self._key_tags(conn, plans)
        ids = sorted({r.id for rows in self._by_key.values() for r in rows})
        self._addresses, self._custom = {}, {}
        if not ids:
            return
        matched = values_table("ids", BigInteger)
        if any(p.address for p in plans):
            rows = await conn.execute(
                select(address)
                .select_from(matched.join(address, address.c.customer_id == matched.c.v))
                .where(address.c.kind == "SHIPPING", address.c.is_default),
                {"ids": ids},
            )
            self._addresses = {r.customer_id: dict(r._mapping) for r in rows}
        if any(p.custom for p in plans):
            rows = await conn.execute(
                select(value.c.customer_id, definition.c.key, *_TYPED).select_from(
                    matched.join(value, value.c.customer_id == matched.c.v).join(
                        definition, definition.c.id == value.c.definition_id
                    )
                ),
                {"ids": ids},
            )
            for r in rows:
                typed = {c.name: r._mapping[c.name] for c in _TYPED}
                self._custom.setdefault(r.customer_id, {})[r.key] = typed

    async def _key_tags(self, conn: AsyncConnection, plans: list[Plan]) -> None:
        """The batch's tags keyed as the database keys them, each key spelled as customers
        already spell it (tags.keyed: one statement), else as the batch first spells it."""
        given = list(dict.fromkeys(t for p in plans if p.tags for t in p.tags))
        self._tag_key, self._tag_spelling = {}, {}
        for tag, (k, spelled) in zip(given, await tag_rules.keyed(conn, given), strict=True):
            self._tag_key[tag] = k
            self._tag_spelling.setdefault(k, spelled)

    async def _flush(self, conn: AsyncConnection) -> None:
        """Write what the batch decided: a few statements, whatever its size."""
        updates = [t for t in self._targets.values() if t.changed]
        for columns, group in _grouped(updates, lambda t: t.changed):
            rows = [{**updates[i].changed, "id": updates[i].id} for i, _ in group]
            bumps = [updates[i].bumps for i, _ in group]
            await conn.execute(
                update_sql(customer, columns, _BUMP),
                {**arrays(rows, ("id", *columns)), "bumps": bumps},
            )
        if self._new:
            ids = (await conn.execute(_NEW_IDS, {"n": len(self._new)})).scalars().all()
            for target, cid in zip(self._new, ids, strict=True):
                target.id = cid
                target.values["id"] = cid
                target.values["version"] = 1 + target.bumps
            columns_of = lambda t: {  # noqa: E731
                k: v
                for k, v in t.values.items()
                if (k in _INSERTED or k in ("id", "version")) and not _default_consent(k, v)
            }
            for columns, group in _grouped(self._new, columns_of):
                rows = [columns_of(self._new[i]) for i, _ in group]
                numbers = await conn.execute(
                    insert_sql(customer, columns, "id, number"), arrays(rows, columns)
                )
                number_of = dict(numbers.all())
                for i, _ in group:
                    self._new[i].number = number_of[self._new[i].id]
        targets = [*self._targets.values(), *self._new]
        added = [
            {**t.address, "customer_id": t.id, "kind": "SHIPPING", "is_default": True}
            for t in targets
            if t.address_new
        ]
        for columns, group in _grouped(added, lambda a: a):
            await conn.execute(
                insert_sql(address, columns), arrays([added[i] for i, _ in group], columns)
            )
        moved = [{**t.address_changed, "id": t.address["id"]} for t in targets
                 if t.address_changed]  # fmt: skip
        for columns, group in _grouped(moved, lambda a: {k for k in a if k != "id"}):
            await conn.execute(
                update_sql(address, columns, "updated_at = now()"),
                arrays([moved[i] for i, _ in group], ("id", *columns)),
            )
        for target in targets:
            if target.custom_writes:
                try:
                    await write_values(conn, target.id, list(target.custom_writes.items()), [])
                except Refused as refused:
                    raise problem(refused, None) from None
        await record_many(conn, [
            {
                "customer_id": target.id,
                "kind": kind,
                "summary": summary,
                "actor_id": self.actor_id,
                "data": data,
            }
            for target, kind, summary, data in self._events
        ])  # fmt: skip
        for target in targets:
            if target.key is not None:
                self.seen[target.key] = target.id


_BUMP = "version = t.version + u.bumps, updated_at = now()"
# What an import writes of a new customer (the planner's fields, the rep, the version); every
# other column keeps its default.
_INSERTED = frozenset((
    "first_name", "last_name", "company_name", "reference_id", "note", "tax_code", "email",
    "phone", "tax_status", "kind", "sales_rep_id", "tags",
    *(consent_rules.column(channel, name) for channel in consent_rules.CHANNELS
      for name in ("state", "opt_in_level", "updated_at", "source")),
))  # fmt: skip


def _default_consent(column: str, value: Any) -> bool:
    """A consent state the row leaves as the column's default: not inserted (fewer arrays
    for the common row, and the same row)."""
    return column in _CONSENT_STATES and value == _DEFAULTS.get(column)


_CONSENT_STATES = frozenset(consent_rules.column(ch, "state") for ch in consent_rules.CHANNELS)


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


_TYPED = (value.c.text_value, value.c.number_value, value.c.boolean_value, value.c.date_value)
