"""Users and tokens from the command line: the first admin, sales reps, staff passwords."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from models import ApiToken, AppUser
from resolvers.tokens import issue_token
from server.database import make_engine

user = AppUser.__table__
token = ApiToken.__table__
MIN_PASSWORD = 10  # the same rule as registerUser


class UserError(Exception):
    """A one-line reason the command cannot be done (shown as is, exit status 1)."""


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    role: str
    name: str
    is_active: bool
    has_password: bool
    active_tokens: int
    created_at: datetime


@asynccontextmanager
async def _engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url, pool_size=1)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _user_id(engine: AsyncEngine, email: str) -> int:
    async with engine.connect() as conn:
        found = (await conn.execute(select(user.c.id).where(user.c.email == email))).scalar()
    if found is None:
        raise UserError(f"no user with email {email}")
    return found


async def create_user(
    url: str,
    *,
    email: str,
    role: str,
    first_name: str | None = None,
    last_name: str | None = None,
    token_days: int | None = 90,
) -> str:
    """Insert the user and return a fresh API token (the only time it is shown)."""
    async with _engine(url) as engine:
        try:
            async with engine.begin() as conn:
                user_id = (
                    await conn.execute(
                        insert(user)
                        .values(email=email, role=role, first_name=first_name, last_name=last_name)
                        .returning(user.c.id)
                    )
                ).scalar_one()
        except IntegrityError as exc:  # app_user.email is unique (case-insensitive)
            raise UserError(
                f"a user with email {email} already exists"
                f" (a new token: customer-graph token create --email {email})"
            ) from exc
        return await issue_token(engine, user_id, name="cli", days=token_days or None)


async def create_token(
    url: str,
    *,
    email: str,
    days: int | None = 90,
    name: str = "cli",
    budget: tuple[float, float] | None = None,
) -> str:
    async with _engine(url) as engine:
        user_id = await _user_id(engine, email)
        async with engine.connect() as conn:
            active = (
                await conn.execute(select(user.c.is_active).where(user.c.id == user_id))
            ).scalar()
        if not active:
            raise UserError(f"{email} is deactivated")
        return await issue_token(engine, user_id, name=name, days=days or None, budget=budget)


async def list_users(url: str) -> list[UserRow]:
    now = datetime.now(UTC)
    live = (
        select(func.count())
        .where(
            token.c.user_id == user.c.id,
            token.c.revoked_at.is_(None),
            (token.c.expires_at.is_(None)) | (token.c.expires_at > now),
        )
        .scalar_subquery()
    )
    stmt = select(user, live.label("active_tokens")).order_by(user.c.role, user.c.email)
    async with _engine(url) as engine, engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [
        UserRow(
            id=r.id,
            email=r.email,
            role=r.role.value if hasattr(r.role, "value") else str(r.role),
            name=" ".join(p for p in (r.first_name, r.last_name) if p),
            is_active=r.is_active,
            has_password=r.password_hash is not None,
            active_tokens=r.active_tokens,
            created_at=r.created_at,
        )
        for r in rows
    ]


async def revoke_all(url: str, *, email: str) -> int:
    """Revoke every live token of the user; how many were revoked."""
    async with _engine(url) as engine:
        user_id = await _user_id(engine, email)
        async with engine.begin() as conn:
            return await _revoke_all(conn, user_id)


async def _revoke_all(conn, user_id: int) -> int:
    result = await conn.execute(
        update(token)
        .where(token.c.user_id == user_id, token.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return result.rowcount


async def deactivate(url: str, *, email: str) -> int:
    """Sign the user out for good: inactive, every token revoked (a rep's customers keep
    their assignment: reassign them with customerUpdate(salesRepId:)). Tokens revoked."""
    async with _engine(url) as engine:
        user_id = await _user_id(engine, email)
        async with engine.begin() as conn:
            await conn.execute(update(user).where(user.c.id == user_id).values(is_active=False))
            return await _revoke_all(conn, user_id)


async def set_password(url: str, *, email: str, password: str) -> None:
    """Staff sign in with the `login` mutation too once they have a password."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"use at least {MIN_PASSWORD} characters")
    hashed = PasswordHasher().hash(password)
    async with _engine(url) as engine:
        user_id = await _user_id(engine, email)
        async with engine.begin() as conn:
            await conn.execute(
                update(user).where(user.c.id == user_id).values(password_hash=hashed)
            )


DEMO_ADMIN = "admin@demo.example"


async def demo_admin_token(url: str) -> str:
    """A fresh token for the demo admin (created on first use), for `serve --demo`."""
    async with _engine(url) as engine:
        async with engine.begin() as conn:
            user_id = (
                await conn.execute(select(user.c.id).where(user.c.email == DEMO_ADMIN))
            ).scalar()
            if user_id is None:
                user_id = (
                    await conn.execute(
                        insert(user)
                        .values(
                            email=DEMO_ADMIN, role="ADMIN", first_name="Demo", last_name="Admin"
                        )
                        .returning(user.c.id)
                    )
                ).scalar_one()
        return await issue_token(engine, user_id, name="demo", days=30)
