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

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import (
    Address,
    Customer,
    CustomFieldDefinition,
    CustomFieldValue,
)
from models.enums import CustomerStatus, CustomFieldType, Role
from resolvers.custom_field_mutations import parse as parse_custom
from resolvers.custom_field_mutations import write_values
from resolvers.customer_mutations import change_text
from resolvers.errors import UserErrorCode
from resolvers.import_plans import (
    NOT_STORED,
    Plan,
    Planner,
    Rejected,
    RowRefused,
    problem,
)
from resolvers.imports import ColumnMap, FileRefused, Reader, Row
from resolvers.mutations import Refused
from resolvers.rls import set_viewer
from resolvers.timeline import record_many
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
    batch_size: int = 500
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
        ignored_columns=[
            *reader.columns.unused,
            *(
                reader.columns.header[i]
                for i, f in reader.columns.fields.items()
                if f in NOT_STORED
            ),
        ],
    )
    planner = Planner(reader.columns, key, definitions)
    writer = _Writer(key, options.source, actor_id, sales_rep_id, definitions)
    rows = _after(reader, skip)
    result.rows = skip
    for name, value in (counts or {}).items():  # a resumed job goes on counting
        setattr(result, name, value)

    async def write(conn: AsyncConnection, batch: list[Row]) -> None:
        plans = [planner.plan(r) for r in batch]
        before = _counts(result), dict(writer.seen), len(result.errors)
        try:
            async with conn.begin_nested():  # the batch fast, unless a race refuses a row
                await writer.write(conn, plans, result)
        except IntegrityError:
            _restore(result, before[0])
            writer.seen = before[1]
            del result.errors[before[2] :]
            writer.careful = True  # row by row, each in a savepoint, from now on
            await writer.write(conn, plans, result)
        if on_batch is not None:
            await on_batch(conn, result, writer.rejected)
        if progress:
            progress(len(batch))

    # Row-level security: every transaction names its viewer first. Imports are an
    # admin's (the CLI's operator, or the admin who started the job).
    viewer = Viewer(user_id=actor_id, role=Role.ADMIN)
    whole = options.dry_run or options.on_error == "abort"
    try:
        if whole:  # one transaction: all or nothing
            async with engine.begin() as conn:
                await set_viewer(conn, viewer)
                for batch in _batches(rows, options.batch_size):
                    await write(conn, batch)
                if result.rejected or options.dry_run:
                    raise _Abort
        else:
            for batch in _batches(rows, options.batch_size):
                async with engine.begin() as conn:
                    await set_viewer(conn, viewer)
                    await write(conn, batch)
        result.written = not options.dry_run
    except _Abort:
        result.written = False
    return result


def _grouped(items: list, row_of) -> list[tuple[tuple[str, ...], list[tuple[int, dict]]]]:
    """(index, row) pairs grouped by the row's columns: an executemany needs the same keys
    in every row, and a missing key must keep its column default, not become NULL."""
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


class _Writer:
    """Writes batches of plans; remembers the customers this import created or updated,
    so a key repeated further down the file updates the same customer."""

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
        # (locked), and the owners of the batch's emails (lower-cased).
        self._by_key: dict[str, list[Any]] = {}
        self._email_owner: dict[str, tuple[int, str]] = {}
        self._events: list[dict[str, Any]] = []  # written at the end of the batch
        # New customers of the batch, inserted together (a few statements, not two a row).
        self._pending: list[Plan] = []
        self._pending_keys: set[str] = set()
        # After a race with another writer (a unique email taken meanwhile), the batch runs
        # again row by row, each in a savepoint, so the row at fault is rejected alone.
        self.careful = False

    async def write(self, conn: AsyncConnection, plans: list[Plan | Rejected], result) -> None:
        self.rejected = []
        self._events = []
        self._pending, self._pending_keys = [], set()
        await self._prefetch(conn, [p for p in plans if isinstance(p, Plan)])
        for item in plans:
            result.rows += 1
            if isinstance(item, Rejected):
                self._reject(result, item)
                continue
            try:
                if self.careful:
                    async with conn.begin_nested():
                        outcome = await self._upsert(conn, item)
                else:
                    outcome = await self._upsert(conn, item)
            except RowRefused as exc:
                self._reject(
                    result, Rejected(item.line, item.raw, exc.column, exc.code, exc.message)
                )
                continue
            except IntegrityError:
                if not self.careful:
                    raise  # run_import rolls the batch back and runs it carefully
                message = "Another customer took this email meanwhile."
                self._reject(
                    result, Rejected(item.line, item.raw, None, UserErrorCode.DUPLICATE, message)
                )
                continue
            setattr(result, outcome, getattr(result, outcome) + 1)
        await self._flush(conn)
        await record_many(conn, self._events)

    async def _prefetch(self, conn: AsyncConnection, plans: list[Plan]) -> None:
        """One read for the batch's keys (locking those customers, in id order) and one for
        its emails, instead of two per row."""
        live = customer.c.status != CustomerStatus.MERGED
        keys = sorted({p.key for p in plans if p.key is not None and p.key not in self.seen})
        self._by_key = {}
        if keys:
            column = customer.c[self.key]  # email is citext: compared without case
            rows = await conn.execute(
                select(customer)
                .where(live, column.in_(keys))
                .order_by(customer.c.id)
                .with_for_update()
            )
            for row in rows:
                key = getattr(row, self.key)
                self._by_key.setdefault(key.lower() if self.key == "email" else key, []).append(row)
        emails = sorted({p.values["email"].lower() for p in plans if p.values.get("email")})
        self._email_owner = {}
        if emails:
            rows = await conn.execute(
                select(customer.c.id, customer.c.number, customer.c.email).where(
                    live, customer.c.email.in_(emails)
                )
            )
            self._email_owner = {r.email.lower(): (r.id, r.number) for r in rows}

    def _reject(self, result: ImportResult, rejected: Rejected) -> None:
        result.rejected += 1
        self.rejected.append(rejected)
        if len(result.errors) < MAX_KEPT_ERRORS:
            result.errors.append(rejected)

    async def _find(self, conn: AsyncConnection, plan: Plan) -> Any:
        if plan.key is None:
            return None
        known = self.seen.get(plan.key)
        if known is not None:  # this import wrote it already: read it as it is now
            stmt = select(customer).where(customer.c.id == known).with_for_update()
            rows = (await conn.execute(stmt)).all()
        else:
            rows = self._by_key.get(plan.key, [])
        if len(rows) > 1:
            raise RowRefused(
                None,
                "AMBIGUOUS",
                f"Customers {rows[0].number} and {rows[1].number} share this reference ID.",
            )
        return rows[0] if rows else None

    async def _email_taken(self, conn: AsyncConnection, email: str | None, own: int | None):
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

    async def _upsert(self, conn: AsyncConnection, plan: Plan) -> str:
        if plan.key is not None and plan.key in self._pending_keys:
            await self._flush(conn)  # a key repeated in the batch updates what it created
        current = await self._find(conn, plan)
        if current is None:
            if self.careful:
                cid = await self._create(conn, plan)
                if plan.key is not None:
                    self.seen[plan.key] = cid
                return "created"
            await self._email_taken(conn, plan.values.get("email"), None)
            if plan.values.get("email"):  # taken by this row from now on
                self._email_owner[plan.values["email"].lower()] = (-1, f"on line {plan.line}")
            self._pending.append(plan)
            if plan.key is not None:
                self._pending_keys.add(plan.key)
            return "created"
        if plan.key is not None:
            self.seen[plan.key] = current.id
        return "updated" if await self._update(conn, plan, current) else "unchanged"

    async def _create(self, conn: AsyncConnection, plan: Plan) -> int:
        await self._email_taken(conn, plan.values.get("email"), None)
        values = {**plan.values}
        if self.rep is not None:
            values["sales_rep_id"] = self.rep
        cid, number = (
            await conn.execute(
                insert(customer).values(**values).returning(customer.c.id, customer.c.number)
            )
        ).one()
        if values.get("email"):
            self._email_owner[values["email"].lower()] = (cid, number)
        if plan.address:
            await conn.execute(
                insert(address).values(
                    customer_id=cid, kind="SHIPPING", is_default=True, **plan.address
                )
            )
        if plan.custom:
            await self._custom(conn, cid, plan)
        self._event(cid, "CUSTOMER_CREATED", "Customer created by import", plan, None)
        return cid

    def _event(self, cid: int, kind: str, summary: str, plan: Plan, changes) -> None:
        data: dict[str, Any] = {"source": self.source, "line": plan.line}
        if changes is not None:
            data["changes"] = changes
        self._events.append(
            {
                "customer_id": cid,
                "kind": kind,
                "summary": summary,
                "actor_id": self.actor_id,
                "data": data,
            }
        )

    async def _flush(self, conn: AsyncConnection) -> None:
        """Insert the batch's new customers, their default addresses and custom values:
        one INSERT per set of columns (SQLAlchemy's insertmanyvalues keeps the order)."""
        pending, self._pending, self._pending_keys = self._pending, [], set()
        if not pending:
            return
        ids: dict[int, tuple[int, str]] = {}  # index in pending -> (id, number)
        for _, group in _grouped(pending, self._values):
            stmt = insert(customer).returning(
                customer.c.id, customer.c.number, sort_by_parameter_order=True
            )
            rows = (await conn.execute(stmt, [values for _, values in group])).all()
            for (index, _), row in zip(group, rows, strict=True):
                ids[index] = (row.id, row.number)
        addresses = [
            (i, {"customer_id": ids[i][0], "kind": "SHIPPING", "is_default": True, **p.address})
            for i, p in enumerate(pending)
            if p.address
        ]
        for _, group in _grouped([a for _, a in addresses], lambda a: a):
            await conn.execute(insert(address), [a for _, a in group])
        for i, plan in enumerate(pending):
            cid, number = ids[i]
            if plan.key is not None:
                self.seen[plan.key] = cid
            if plan.values.get("email"):
                self._email_owner[plan.values["email"].lower()] = (cid, number)
            if plan.custom:
                await self._custom(conn, cid, plan)
            self._event(cid, "CUSTOMER_CREATED", "Customer created by import", plan, None)

    def _values(self, plan: Plan) -> dict[str, Any]:
        values = {**plan.values}
        if self.rep is not None:
            values["sales_rep_id"] = self.rep
        return values

    async def _custom(self, conn: AsyncConnection, cid: int, plan: Plan) -> None:
        try:
            await write_values(conn, cid, list(plan.custom.items()), [])
        except Refused as refused:
            raise problem(refused, None) from None

    async def _update(self, conn: AsyncConnection, plan: Plan, row: Any) -> bool:
        values = {
            k: v for k, v in plan.values.items() if change_text(getattr(row, k)) != change_text(v)
        }
        changes = {
            k: {"old": change_text(getattr(row, k)), "new": change_text(v)}
            for k, v in values.items()
        }
        if "email" in values:
            await self._email_taken(conn, values["email"], row.id)
            if row.email:
                self._email_owner.pop(row.email.lower(), None)
            if values["email"]:
                self._email_owner[values["email"].lower()] = (row.id, row.number)
        if values:
            await conn.execute(
                update(customer)
                .where(customer.c.id == row.id)
                .values(**values, version=customer.c.version + 1, updated_at=func.now())
            )
        if plan.address and await self._address(conn, row.id, plan.address):
            changes["address"] = {"new": plan.address.get("line1")}
        if plan.custom:
            changed = await self._changed_custom(conn, row.id, plan.custom)
            if changed:
                await self._custom(conn, row.id, Plan(**{**plan.__dict__, "custom": changed}))
                changes.update({f"customFields.{k}": {"new": v} for k, v in changed.items()})
        if not changes:
            return False
        summary = f"Updated by import: {', '.join(sorted(changes))}"
        self._event(row.id, "CUSTOMER_UPDATED", summary, plan, changes)
        return True

    async def _address(self, conn: AsyncConnection, cid: int, parts: dict[str, Any]) -> bool:
        """The default shipping address becomes `parts`; True when something changed."""
        current = (
            await conn.execute(
                select(address).where(
                    address.c.customer_id == cid,
                    address.c.kind == "SHIPPING",
                    address.c.is_default,
                )
            )
        ).first()
        if current is None:
            await conn.execute(
                insert(address).values(customer_id=cid, kind="SHIPPING", is_default=True, **parts)
            )
            return True
        diff = {k: v for k, v in parts.items() if getattr(current, k) != v}
        if not diff:
            return False
        await conn.execute(
            update(address).where(address.c.id == current.id).values(**diff, updated_at=func.now())
        )
        return True

    async def _changed_custom(self, conn, cid: int, wanted: dict[str, str]) -> dict[str, str]:
        """The custom values that differ from what is stored (compared typed: `5.0` = `5`)."""
        stored = {
            r.key: r
            for r in await conn.execute(
                select(definition.c.key, value.c.text_value, value.c.number_value)
                .add_columns(value.c.boolean_value, value.c.date_value)
                .join(value, value.c.definition_id == definition.c.id)
                .where(value.c.customer_id == cid, definition.c.key.in_(list(wanted)))
            )
        }
        changed = {}
        for key, text in wanted.items():
            d = self.definitions[key]
            typed = parse_custom(CustomFieldType(d.type), text, d.options)
            row = stored.get(key)
            if row is None or any(getattr(row, k) != v for k, v in typed.items()):
                changed[key] = text
        return changed


def _not_stored(columns: ColumnMap, index: int) -> bool:
    return columns.fields.get(index) in NOT_STORED
