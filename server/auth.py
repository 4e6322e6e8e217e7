"""Bearer tokens: opaque random strings, stored only as a SHA-256 hash."""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from models import ApiToken, AppUser
from models.enums import Role
from resolvers.viewer import ANONYMOUS, Viewer

token = ApiToken.__table__
user = AppUser.__table__
PREFIX = "cg_"


def hash_token(raw: str) -> bytes:
    # A token is 32 random bytes: a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(raw.encode()).digest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


async def issue_token(
    engine: AsyncEngine, user_id: int, *, name: str | None = None, days: int | None = 90
) -> str:
    raw = new_token()
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    async with engine.begin() as conn:
        await conn.execute(
            insert(token).values(
                user_id=user_id, token_hash=hash_token(raw), name=name, expires_at=expires
            )
        )
    return raw


async def viewer_for_token(engine: AsyncEngine, raw: str | None) -> Viewer | None:
    """The viewer a bearer token stands for; None when it is unknown, expired or revoked."""
    if not raw:
        return ANONYMOUS
    stmt = (
        select(user.c.id, user.c.role, user.c.email)
        .join(token, token.c.user_id == user.c.id)
        .where(
            token.c.token_hash == hash_token(raw),
            token.c.revoked_at.is_(None),
            or_(token.c.expires_at.is_(None), token.c.expires_at > datetime.now(UTC)),
            user.c.is_active,
        )
    )
    async with engine.connect() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    return Viewer(user_id=row.id, role=Role(row.role), email=row.email)


async def revoke(engine: AsyncEngine, raw: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(token)
            .where(token.c.token_hash == hash_token(raw), token.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return result.rowcount > 0
