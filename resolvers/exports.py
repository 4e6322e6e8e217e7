"""Exporting customers: every match of a filter, streamed, in the import's own columns.

One query over the visible customers (the viewer's scope, like every read, and row-level
security) with their default shipping address and custom field values joined in, run as
PostgreSQL's `COPY (SELECT …) TO STDOUT`: the server formats the CSV (or each NDJSON line,
with json_object) and streams it, and this process only passes the bytes on, a chunk at a
time (no cap, memory flat whatever the count). asyncpg's copy_from_query is the only way
to that stream; SQLAlchemy has none, so the statement is compiled here and its parameters
passed in order. The header is what the importer reads back (resolvers/imports.py), so an
export re-imports into an empty database as the same customers.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import dataclasses
import enum
import io
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, TextIO

import orjson
from sqlalchemy import Select, Text, case, cast, func, insert, literal, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from models import Address, CustomFieldDefinition, CustomFieldValue, ExportJob
from models.enums import CustomerStatus, MarketingState
from resolvers.context import Context
from resolvers.customers import customer, live, visible_customers
from resolvers.rls import set_viewer
from resolvers.search import (
    Criteria,
    CustomFieldCriterion,
    SearchKind,
    TextMatch,
    filtered_customers,
)
from resolvers.tags import TagFilter

address = Address.__table__
definition = CustomFieldDefinition.__table__
value = CustomFieldValue.__table__

# Header -> column of the query below. Each header is one the importer maps back.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Number", "number"),  # ours: export only (the importer leaves it out, saying so)
    ("Reference ID", "reference_id"),
    ("Kind", "kind"),
    ("First Name", "first_name"),
    ("Last Name", "last_name"),
    ("Company", "company_name"),
    ("Email", "email"),
    ("Phone", "phone"),
    ("Note", "note"),
    ("Tax Exempt", "tax_exempt"),
    ("Tax Code", "tax_code"),
    ("Default Address Company", "a_company"),
    ("Default Address Address1", "a_line1"),
    ("Default Address Address2", "a_line2"),
    ("Default Address City", "a_city"),
    ("Default Address Province Code", "a_region"),
    ("Default Address Country Code", "a_country"),
    ("Default Address Zip", "a_postal_code"),
    ("Default Address Phone", "a_phone"),
)
FORMATS = ("csv", "ndjson")


def _query(base: Select, keys: list[str], fmt: str) -> Select:
    """One text column per header (CSV), or the NDJSON line: customer, default address,
    custom values; the cells as the importer reads them (enums by label, yes/no)."""
    shipping = (
        select(address)
        .where(address.c.customer_id == customer.c.id)
        .order_by((address.c.kind == "SHIPPING").desc(), address.c.is_default.desc(), address.c.id)
        .limit(1)
        .lateral("a")
    )
    text_value = func.coalesce(
        value.c.text_value,
        cast(value.c.number_value, Text),
        func.to_char(value.c.date_value, "YYYY-MM-DD"),
        cast(value.c.boolean_value, Text),
    )
    custom = (
        select(func.jsonb_object_agg(definition.c.key, text_value).label("custom"))
        .select_from(value.join(definition, definition.c.id == value.c.definition_id))
        .where(value.c.customer_id == customer.c.id)
        .lateral("cf")
    )
    columns = {
        "number": customer.c.number,
        "reference_id": customer.c.reference_id,
        "kind": cast(customer.c.kind, Text),
        "first_name": customer.c.first_name,
        "last_name": customer.c.last_name,
        "company_name": customer.c.company_name,
        "email": cast(customer.c.email, Text),
        "phone": customer.c.phone,
        "note": customer.c.note,
        "tax_exempt": case((customer.c.tax_status == "EXEMPT", "yes"), else_="no"),
        "tax_code": customer.c.tax_code,
        **{f"a_{c}": shipping.c[c] for c in _ADDRESS},
    }
    cells = [columns[c] for _, c in COLUMNS] + [
        custom.c.custom.op("->>")(literal(k, Text)) for k in keys
    ]
    if fmt == "ndjson":  # an object of the non-empty cells, keys in the header's order
        names = literal([h for h, _ in COLUMNS] + keys, ARRAY(Text))
        values = postgresql.array([func.nullif(c, "") for c in cells], type_=Text)
        cells = [cast(func.json_strip_nulls(func.json_object(names, values)), Text)]
    ids = base.with_only_columns(customer.c.id).subquery("m")
    return (
        select(*cells)
        .select_from(
            customer.join(ids, ids.c.id == customer.c.id)
            .outerjoin(shipping, true())
            .outerjoin(custom, true())
        )
        .order_by(customer.c.id)
    )


_ADDRESS = ("company", "line1", "line2", "city", "region", "country", "postal_code", "phone")


async def _custom_keys(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(definition.c.key).order_by(
                definition.c.archived, definition.c.position, definition.c.key
            )
        )
        return [r[0] for r in rows]


async def export(
    ctx: Context,
    out: TextIO,
    *,
    criteria: Criteria | None = None,
    fmt: str = "csv",
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write every visible customer matching `criteria` (all live ones without) to `out`;
    returns how many."""
    count = 0
    async for chunk, rows in export_chunks(ctx, criteria=criteria, fmt=fmt):
        out.write(chunk)
        count += rows
        if progress is not None and rows:
            progress(rows)
    return count


async def export_chunks(
    ctx: Context, *, criteria: Criteria | None = None, fmt: str = "csv"
) -> AsyncIterator[tuple[str, int]]:
    """The export as (text, rows in it) chunks, as PostgreSQL sends them (tens of KB): what
    a file or an HTTP download writes, one chunk at a time (memory flat whatever the count).
    The first chunk is the CSV header (empty for NDJSON); a filter the search refuses raises
    before it."""
    if fmt not in FORMATS:
        raise ValueError(fmt)
    if criteria is not None and not criteria.is_empty():
        base = await filtered_customers(ctx, criteria)
    else:
        base = live(visible_customers(ctx))
    keys = await _custom_keys(ctx.engine)
    sql, params = _positional(_query(base, keys, fmt))
    first = ""
    if fmt == "csv":
        header = io.StringIO()
        # Line feeds, as COPY ends its rows.
        csv.writer(header, lineterminator="\n").writerow([h for h, _ in COLUMNS] + keys)
        first = header.getvalue()
        options: dict[str, Any] = {"format": "csv"}
    else:
        # One JSON object a line: JSON text has no raw line break or control character,
        # so a CSV quote and delimiter that are control characters never quote it.
        options = {"format": "csv", "quote": "\x01", "delimiter": "\x02"}
    # Something first, even for no rows: a download answers once it has the first chunk.
    yield first, 0
    decoder = codecs.getincrementaldecoder("utf-8")()
    rows = _RowCounter() if fmt == "csv" else None
    async for data in _copy_out(ctx, sql, params, options):
        chunk = decoder.decode(data)
        yield chunk, (rows.count(chunk) if rows is not None else chunk.count("\n"))
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail, 0


class _RowCounter:
    """Rows in a stream of CSV text: line feeds outside quoted fields (a note may hold
    line breaks). A quoted field's own quotes are doubled, so the parity of the quotes seen
    tells whether a line feed is inside one."""

    def __init__(self) -> None:
        self.quoted = False

    def count(self, chunk: str) -> int:
        if '"' not in chunk and not self.quoted:
            return chunk.count("\n")
        rows = 0
        lines = chunk.split("\n")
        for line in lines[:-1]:
            if line.count('"') % 2:
                self.quoted = not self.quoted
            if not self.quoted:
                rows += 1
        if lines[-1].count('"') % 2:
            self.quoted = not self.quoted
        return rows


async def _copy_out(
    ctx: Context, sql: str, params: list[Any], options: dict[str, Any]
) -> AsyncIterator[bytearray]:
    """`COPY (sql) TO STDOUT` in the viewer's transaction, as the server sends it. The
    copy runs in a task that waits while the reader has not taken the last chunks."""
    queue: asyncio.Queue[bytearray | None] = asyncio.Queue(maxsize=16)
    async with ctx.engine.connect() as conn:
        await set_viewer(conn, ctx.viewer)  # row-level security: the viewer comes first
        pg = (await conn.get_raw_connection()).driver_connection

        async def copy() -> None:
            try:
                await pg.copy_from_query(sql, *params, output=queue.put, **options)
            finally:
                await queue.put(None)

        task = asyncio.create_task(copy())
        try:
            while (data := await queue.get()) is not None:
                yield data
            await task  # its error, if it failed
        finally:
            if not task.done():  # the reader went away (a download cut short)
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                await conn.invalidate()  # a COPY cut short leaves no usable connection


def _positional(stmt: Select) -> tuple[str, list[Any]]:
    """The statement's SQL for asyncpg and its parameters in order, through each bind's
    type (enums become their labels), as SQLAlchemy would send them."""
    compiled = stmt.compile(dialect=_ASYNCPG, compile_kwargs={"render_postcompile": True})
    params = []
    for name in compiled.positiontup or ():
        bind = compiled.binds.get(name)
        if bind is None:  # an item of an expanded IN list: its list's parameter
            bind = compiled.binds[re.sub(r"_\d+$", "", name)]
        process = bind.type.bind_processor(_ASYNCPG)
        raw = compiled.params[name]
        params.append(process(raw) if process else raw)
    return compiled.string, params


_ASYNCPG = asyncpg_dialect.dialect()


# --- export jobs: a download link for its owner (customerExportStart) ---------------------

export_job = ExportJob.__table__
EXPORT_LIFETIME = timedelta(hours=24)


def criteria_json(criteria: Criteria) -> dict[str, Any]:
    """A Criteria as JSON (enums by value), stored with the job and read back at download."""
    return orjson.loads(orjson.dumps(dataclasses.asdict(criteria), default=_enum_value))


def _enum_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(type(value))


def criteria_of(data: dict[str, Any]) -> Criteria:
    values = dict(data)
    values["kind"] = SearchKind(values["kind"])
    values["name_match"] = TextMatch(values["name_match"])
    values["custom_fields"] = [CustomFieldCriterion(**c) for c in values["custom_fields"]]
    if values.get("status") is not None:
        values["status"] = [CustomerStatus(s) for s in values["status"]]
    values["tags"] = TagFilter(**values.get("tags", {}))
    for channel in ("email_marketing", "sms_marketing"):
        if values.get(channel) is not None:
            values[channel] = MarketingState(values[channel])
    return Criteria(**values)


async def create_export(ctx: Context, criteria: Criteria, fmt: str) -> Any:
    """Record an export for the viewer (nothing runs yet: the download streams it)."""
    async with ctx.engine.begin() as conn:
        return (
            await conn.execute(
                insert(export_job)
                .values(
                    owner_id=ctx.viewer.user_id,
                    format=fmt,
                    criteria=criteria_json(criteria),
                    expires_at=func.now() + EXPORT_LIFETIME,
                )
                .returning(export_job)
            )
        ).one()


async def export_for(ctx: Context, job_id: int) -> Any:
    """The viewer's own export job (None for anyone else's, expired or not)."""
    async with ctx.engine.connect() as conn:
        return (
            await conn.execute(
                select(export_job, (export_job.c.expires_at <= func.now()).label("expired")).where(
                    export_job.c.id == job_id, export_job.c.owner_id == ctx.viewer.user_id
                )
            )
        ).first()
