"""Custom field definitions (admins) and values on customers (staff).

A value is stored in the column of its type, parsed here: NUMBER as Decimal, DATE as ISO
date, BOOLEAN as true/false, SELECT as one of the options. `required` means a required
field cannot be cleared once set (the UI asks for it; imports may leave it empty).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from models.enums import CustomFieldType, Role
from resolvers import custom_fields, validate
from resolvers.context import Context
from resolvers.custom_fields import definition, value
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused, transaction
from resolvers.timeline import record
from resolvers.writes import lock_customers, touch

KEY_HELP = "lowercase letters, digits and _, starting with a letter (max 63)"


def _admin(ctx: Context) -> None:
    if ctx.viewer.role is not Role.ADMIN:
        raise Refused(Problem(None, UserErrorCode.FORBIDDEN, "Only admins define custom fields."))


def _options(kind: CustomFieldType, options: list[str] | None) -> list[str] | None:
    if kind is not CustomFieldType.SELECT:
        if options:
            raise Refused(
                Problem(["input", "options"], UserErrorCode.INVALID, "Only SELECT has options.")
            )
        return None
    cleaned = [o.strip() for o in options or [] if o.strip()]
    if not cleaned or len(set(cleaned)) != len(cleaned):
        raise Refused(
            Problem(["input", "options"], UserErrorCode.INVALID, "Give distinct options.")
        )
    return cleaned


async def create_definition(
    ctx: Context,
    key: str,
    label: str,
    kind: CustomFieldType,
    options: list[str] | None,
    required: bool,
    position: int,
    help_text: str | None = None,
) -> int:
    _admin(ctx)
    validate.refuse_card_numbers([label, options, help_text])
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", key or ""):
        raise Refused(Problem(["input", "key"], UserErrorCode.INVALID, f"Keys use {KEY_HELP}."))
    if not (label or "").strip():
        raise Refused(Problem(["input", "label"], UserErrorCode.REQUIRED, "Give a label."))
    try:
        async with transaction(ctx) as conn:
            return (
                await conn.execute(
                    insert(definition)
                    .values(
                        key=key,
                        label=label.strip(),
                        type=kind,
                        options=_options(kind, options),
                        required=required,
                        position=position,
                        help_text=(help_text or "").strip() or None,
                    )
                    .returning(definition.c.id)
                )
            ).scalar_one()
    except IntegrityError as exc:
        raise Refused(
            Problem(["input", "key"], UserErrorCode.DUPLICATE, "This key exists.")
        ) from exc


async def update_definition(ctx: Context, def_id: int, changes: dict[str, Any]) -> int:
    _admin(ctx)
    validate.refuse_card_numbers(changes)
    # required and position always have a value: null leaves them as they are.
    changes = {
        k: v for k, v in changes.items() if v is not None or k not in ("required", "position")
    }
    if "help_text" in changes:
        changes["help_text"] = (changes["help_text"] or "").strip() or None
    async with transaction(ctx) as conn:
        row = (
            await conn.execute(
                select(definition).where(definition.c.id == def_id).with_for_update()
            )
        ).first()
        if row is None:
            raise Refused(
                Problem(["input", "id"], UserErrorCode.NOT_FOUND, "No such custom field.")
            )
        if "options" in changes:
            changes["options"] = _options(CustomFieldType(row.type), changes["options"])
        if "label" in changes:
            changes["label"] = (changes["label"] or "").strip()
            if not changes["label"]:
                raise Refused(Problem(["input", "label"], UserErrorCode.REQUIRED, "Give a label."))
        if changes:
            await conn.execute(
                update(definition)
                .where(definition.c.id == def_id)
                .values(**changes, updated_at=func.now())
            )
    return def_id


def parse(kind: CustomFieldType, raw: str, options: list[str] | None) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "text_value": None,
        "number_value": None,
        "boolean_value": None,
        "date_value": None,
    }
    path = ["input", "value"]
    try:
        if kind is CustomFieldType.NUMBER:
            columns["number_value"] = custom_fields.number(raw)
        elif kind is CustomFieldType.DATE:
            columns["date_value"] = date.fromisoformat(raw)
        elif kind is CustomFieldType.BOOLEAN:
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            columns["boolean_value"] = raw.lower() == "true"
        elif kind is CustomFieldType.SELECT:
            if raw not in (options or []):
                raise Refused(
                    Problem(
                        path, UserErrorCode.INVALID, f"Choose one of: {', '.join(options or [])}."
                    )
                )
            columns["text_value"] = raw
        else:
            validate.refuse_card_numbers(raw)
            columns["text_value"] = raw
    except ValueError as exc:
        raise Refused(
            Problem(path, UserErrorCode.INVALID, f"{raw!r} is not a valid {kind.value}.")
        ) from exc
    return columns


async def _definition(conn, key: str, path: list[str] | None = None) -> Any:
    row = (await conn.execute(select(definition).where(definition.c.key == key))).first()
    if row is None or row.archived:
        raise Refused(
            Problem(path or ["input", "key"], UserErrorCode.NOT_FOUND, "No such custom field.")
        )
    return row


async def set_value(ctx: Context, customer_id: int, key: str, raw: str) -> int:
    async with transaction(ctx) as conn:
        await lock_customers(conn, ctx, [customer_id], path=["input", "customerId"])
        d = await _definition(conn, key)
        columns = parse(CustomFieldType(d.type), raw, d.options)
        await conn.execute(
            pg_insert(value)
            .values(customer_id=customer_id, definition_id=d.id, **columns)
            .on_conflict_do_update(
                index_elements=["customer_id", "definition_id"],
                set_={**columns, "updated_at": func.now()},
            )
        )
        await touch(conn, customer_id)
        await record(
            conn,
            customer_id,
            "CUSTOM_FIELD_SET",
            f"{d.label} set to {raw}"[:200],
            actor_id=ctx.viewer.user_id,
            data={"key": key, "value": raw},
        )
    return customer_id


async def clear_value(ctx: Context, customer_id: int, key: str) -> int:
    async with transaction(ctx) as conn:
        await lock_customers(conn, ctx, [customer_id], path=["input", "customerId"])
        d = await _definition(conn, key)
        if d.required:
            raise Refused(
                Problem(["input", "key"], UserErrorCode.REQUIRED, f"{d.label} is required.")
            )
        await conn.execute(
            delete(value).where(value.c.customer_id == customer_id, value.c.definition_id == d.id)
        )
        await touch(conn, customer_id)
        await record(
            conn,
            customer_id,
            "CUSTOM_FIELD_CLEARED",
            f"{d.label} cleared",
            actor_id=ctx.viewer.user_id,
            data={"key": key},
        )
    return customer_id


Checked = list[tuple[Any, str | None, dict[str, Any] | None]]


async def check_values(conn, values: list[tuple[str, str | None]], path: list[str]) -> Checked:
    """Each (key, value) as (its live definition, the value, its typed columns or None to
    clear); an unknown key or a bad value refuses, pointing at `path` + index."""
    checked: Checked = []
    for i, (key, raw) in enumerate(values):
        d = await _definition(conn, key, [*path, str(i), "key"])
        columns = None
        if raw is not None:
            try:
                columns = parse(CustomFieldType(d.type), raw, d.options)
            except Refused as refused:
                problem = refused.problems[0]
                raise Refused(
                    Problem([*path, str(i), "value"], problem.code, problem.message)
                ) from None
        checked.append((d, raw, columns))
    return checked


async def write_values(
    conn,
    customer_id: int,
    values: list[tuple[str, str | None]],
    path: list[str],
    checked: Checked | None = None,
) -> dict[str, str | None]:
    """Set (or, with None, clear) several values of a customer (locked by the caller); then
    every required, live field must have a value. Errors point at `path` + index. `checked`:
    the values already through `check_values` (a bulk job checks them once per batch)."""
    changed: dict[str, str | None] = {}
    if checked is None:
        checked = await check_values(conn, values, path)
    for d, raw, columns in checked:
        if columns is None:
            await conn.execute(
                delete(value).where(
                    value.c.customer_id == customer_id, value.c.definition_id == d.id
                )
            )
        else:
            await conn.execute(
                pg_insert(value)
                .values(customer_id=customer_id, definition_id=d.id, **columns)
                .on_conflict_do_update(
                    index_elements=["customer_id", "definition_id"],
                    set_={**columns, "updated_at": func.now()},
                )
            )
        changed[d.key] = raw
    missing = (
        (
            await conn.execute(
                select(definition.c.key)
                .where(
                    definition.c.required,
                    ~definition.c.archived,
                    definition.c.id.not_in(
                        select(value.c.definition_id).where(value.c.customer_id == customer_id)
                    ),
                )
                .order_by(definition.c.key)
            )
        )
        .scalars()
        .all()
    )
    if missing:
        raise Refused(Problem(path, UserErrorCode.REQUIRED, f"Required: {', '.join(missing)}."))
    return changed


async def set_many(ctx: Context, customer_id: int, values: list[tuple[str, str | None]]) -> int:
    """Set (or, with None, clear) several values at once; afterwards every required,
    live field must have a value, or nothing is written."""
    async with transaction(ctx) as conn:
        await lock_customers(conn, ctx, [customer_id], path=["input", "customerId"])
        changed = await write_values(conn, customer_id, values, ["input", "values"])
        await touch(conn, customer_id)
        await record(
            conn,
            customer_id,
            "CUSTOM_FIELDS_CHANGED",
            f"Custom fields changed: {', '.join(changed)}",
            actor_id=ctx.viewer.user_id,
            data={"values": changed},
        )
    return customer_id
