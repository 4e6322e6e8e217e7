"""Exporting customers: every match of a filter, streamed, in the import's own columns.

One server-side cursor over the visible customers (the viewer's scope, like every read)
with their default shipping address and custom field values joined in, written row by row
as CSV or NDJSON: no cap, memory flat whatever the count. The header is what the importer
reads back (resolvers/imports.py), so an export re-imports into an empty database as the
same customers.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, TextIO

import orjson
from sqlalchemy import Select, Text, cast, func, insert, select, true
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


def _query(base: Select) -> Select:
    """The rows to write: customer, default address, custom values as {key: text}."""
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
    ids = base.with_only_columns(customer.c.id).subquery("m")
    return (
        select(
            customer.c.number,
            customer.c.reference_id,
            customer.c.kind,
            customer.c.first_name,
            customer.c.last_name,
            customer.c.company_name,
            customer.c.email,
            customer.c.phone,
            customer.c.note,
            (customer.c.tax_status == "EXEMPT").label("tax_exempt"),
            customer.c.tax_code,
            *(shipping.c[c].label(f"a_{c}") for c in _ADDRESS),
            custom.c.custom,
        )
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
    ctx: Context, *, criteria: Criteria | None = None, fmt: str = "csv", size: int = 1000
) -> AsyncIterator[tuple[str, int]]:
    """The export as (text, rows in it) chunks of about `size` rows: what a file or an HTTP
    download writes, one chunk at a time (memory flat whatever the count)."""
    if fmt not in FORMATS:
        raise ValueError(fmt)
    if criteria is not None and not criteria.is_empty():
        base = await filtered_customers(ctx, criteria)
    else:
        base = live(visible_customers(ctx))
    keys = await _custom_keys(ctx.engine)
    header = [h for h, _ in COLUMNS] + keys
    buffer = io.StringIO()
    writer = csv.writer(buffer) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(header)
    rows = 0
    async for row in _stream(ctx, _query(base)):
        cells = [_cell(row[c]) for _, c in COLUMNS]
        custom = row["custom"] or {}
        cells += [custom.get(k, "") for k in keys]
        if writer is not None:
            writer.writerow(cells)
        else:
            record = {h: c for h, c in zip(header, cells, strict=True) if c != ""}
            buffer.write(orjson.dumps(record).decode())
            buffer.write("\n")
        rows += 1
        if rows == size:
            yield buffer.getvalue(), rows
            buffer.seek(0)
            buffer.truncate()
            rows = 0
    yield buffer.getvalue(), rows


async def _stream(ctx: Context, stmt: Select) -> AsyncIterator[Any]:
    async with ctx.engine.connect() as conn:
        await set_viewer(conn, ctx.viewer)  # row-level security: the viewer comes first
        result = await conn.stream(stmt.execution_options(yield_per=2000))
        async for row in result.mappings():
            yield row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "value"):  # an enum
        return str(value.value)
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


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
