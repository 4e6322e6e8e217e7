"""The import's batch writer: a batch of plans decided in memory, then written with a few
set-based statements (resolvers/unnest_writes.py), whatever the batch's size.

`Writer` reads what the batch needs first (its keys' customers, locked; its emails'
owners; the matched customers' default addresses, custom values and tags), has
`Decisions` (resolvers/import_decisions.py) decide each row in file order, then flushes:
updates, inserts, addresses, custom values and timeline events. It counts the outcome
into an `ImportResult`; resolvers/import_rows.py drives it, a transaction per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Text, cast, select, text, union_all
from sqlalchemy.dialects.postgresql import CITEXT
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from models import Address, Customer, CustomFieldDefinition, CustomFieldValue
from models.enums import CustomerStatus
from resolvers import consent as consent_rules
from resolvers import tags as tag_rules
from resolvers.custom_field_mutations import write_values
from resolvers.errors import UserErrorCode
from resolvers.import_decisions import DEFAULTS, Decisions
from resolvers.import_plans import Plan, Rejected, RowRefused, problem
from resolvers.mutations import Refused
from resolvers.timeline import record_many
from resolvers.unnest_writes import arrays, insert_sql, update_sql, values_table

customer = Customer.__table__
address = Address.__table__
definition = CustomFieldDefinition.__table__
value = CustomFieldValue.__table__


# What an import did (run_import's answer). Defined with the writer, which counts into it,
# so that import_rows imports it from here and not the reverse (no import cycle).
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


MAX_KEPT_ERRORS = 1000  # in memory, for the caller to show; a job keeps every one in its table


def _grouped(items: list, row_of) -> list[tuple[tuple[str, ...], list[tuple[int, dict]]]]:
    """(index, row) pairs grouped by the row's columns: one statement per set of columns,
    so a column a row leaves out keeps its default instead of becoming NULL."""
    groups: dict[tuple[str, ...], list[tuple[int, dict]]] = {}
    for index, item in enumerate(items):
        row = row_of(item)
        groups.setdefault(tuple(sorted(row)), []).append((index, row))
    return list(groups.items())


_NEW_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('customer', 'id')) FROM generate_series(1, :n)"
)


class Writer(Decisions):
    """Writes batches of plans; remembers the customers this import created or updated,
    so a key repeated further down the file updates the same customer.

    A batch is decided in memory first, row by row in file order (match by key, compare,
    check email ownership), then written with a few set-based statements: updates, then
    inserts (an email an update frees is free for a new customer), then addresses, custom
    values and the timeline events."""

    def __init__(
        self, key: str, source: str, actor_id: int | None, rep: int | None, definitions: dict
    ) -> None:
        super().__init__(source, rep, definitions)
        self.key = key
        self.actor_id = actor_id
        self.seen: dict[str, int] = {}
        self.rejected: list[Rejected] = []  # this batch's, for the batch hook
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

    def _reject(self, result: ImportResult, rejected: Rejected) -> None:
        result.rejected += 1
        self.rejected.append(rejected)
        if len(result.errors) < MAX_KEPT_ERRORS:
            result.errors.append(rejected)

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
    return column in _CONSENT_STATES and value == DEFAULTS.get(column)


_CONSENT_STATES = frozenset(consent_rules.column(ch, "state") for ch in consent_rules.CHANNELS)


_TYPED = (value.c.text_value, value.c.number_value, value.c.boolean_value, value.c.date_value)
