"""Tax status and exemption certificates (staff only)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, insert, select, update

from models.enums import TaxStatus
from resolvers import validate
from resolvers.context import Context
from resolvers.customers import customer
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused, transaction
from resolvers.tax import certificate
from resolvers.timeline import record
from resolvers.writes import lock_customers


async def set_status(ctx: Context, customer_id: int, status: TaxStatus, code: str | None) -> int:
    validate.refuse_card_numbers(code)
    async with transaction(ctx) as conn:
        row = (await lock_customers(conn, ctx, [customer_id], path=["input", "customerId"]))[
            customer_id
        ]
        code = (code or "").strip() or None
        await conn.execute(
            update(customer)
            .where(customer.c.id == customer_id)
            .values(
                tax_status=status,
                tax_code=code,
                version=customer.c.version + 1,
                updated_at=func.now(),
            )
        )
        await record(
            conn,
            customer_id,
            "TAX_STATUS_CHANGED",
            f"Tax status {row.tax_status} -> {status.value}",
            actor_id=ctx.viewer.user_id,
            data={"status": status.value, "code": code},
        )
    return customer_id


async def add_certificate(
    ctx: Context,
    customer_id: int,
    number: str,
    country: str,
    region: str | None,
    reason: str | None,
    valid_from: date,
    valid_to: date | None,
) -> int:
    validate.refuse_card_numbers([number, reason])
    if not (number or "").strip():
        raise Refused(
            Problem(["input", "number"], UserErrorCode.REQUIRED, "Give the certificate number.")
        )
    country = validate.country(country, ["input", "country"])
    region = validate.region(region, country, ["input", "region"])
    if valid_to is not None and valid_to < valid_from:
        raise Refused(
            Problem(["input", "validTo"], UserErrorCode.INVALID, "Ends before it starts.")
        )
    async with transaction(ctx) as conn:
        await lock_customers(conn, ctx, [customer_id], path=["input", "customerId"])
        cid = (
            await conn.execute(
                insert(certificate)
                .values(
                    customer_id=customer_id,
                    number=number.strip(),
                    country=country,
                    region=region,
                    reason=reason,
                    valid_from=valid_from,
                    valid_to=valid_to,
                )
                .returning(certificate.c.id)
            )
        ).scalar_one()
        await record(
            conn,
            customer_id,
            "TAX_CERTIFICATE_ADDED",
            f"Exemption certificate {number.strip()} ({country}{'-' + region if region else ''})",
            actor_id=ctx.viewer.user_id,
            data={"certificate": cid},
        )
    return cid


async def revoke_certificate(ctx: Context, certificate_id: int) -> int:
    async with transaction(ctx) as conn:
        row = (
            await conn.execute(select(certificate).where(certificate.c.id == certificate_id))
        ).first()
        if row is None:
            raise Refused(Problem(["input", "id"], UserErrorCode.NOT_FOUND, "No such certificate."))
        await lock_customers(conn, ctx, [row.customer_id], path=["input", "id"])
        if row.revoked_at is None:
            await conn.execute(
                update(certificate)
                .where(certificate.c.id == certificate_id)
                .values(revoked_at=func.now())
            )
            await record(
                conn,
                row.customer_id,
                "TAX_CERTIFICATE_REVOKED",
                f"Exemption certificate {row.number} revoked",
                actor_id=ctx.viewer.user_id,
                data={"certificate": certificate_id},
            )
    return certificate_id
