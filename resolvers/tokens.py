"""Bearer tokens: opaque random strings, stored only as a SHA-256 hash."""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Text, bindparam, cast, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from models import ApiToken, AppUser
from models.enums import Role
from resolvers.viewer import ANONYMOUS, Viewer

token = ApiToken.__table__
user = AppUser.__table__
PREFIX = "cg_"


NOT_BEARER = "Use 'Authorization: Bearer <token>'."
UNKNOWN_TOKEN = "The token is unknown, expired or revoked."


def bearer(header: str) -> str | None:
    """The token of an Authorization header: "" when there is none, None when the header
    is not `Bearer <token>` (NOT_BEARER says why). The one parser, for both read paths
    and the WebSocket's connection_init."""
    scheme, _, raw = header.partition(" ")
    if header and scheme.lower() != "bearer":
        return None
    return raw.strip()


def hash_token(raw: str) -> bytes:
    # A token is 32 random bytes: a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(raw.encode()).digest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


async def issue_token(
    engine: AsyncEngine,
    user_id: int,
    *,
    name: str | None = None,
    days: int | None = 90,
    budget: tuple[float, float] | None = None,
) -> str:
    """A new token; `budget` (maximum, rate) is its own cost budget (server/budget.py)."""
    raw = new_token()
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    maximum, rate = budget or (None, None)
    async with engine.begin() as conn:
        await conn.execute(
            insert(token).values(
                user_id=user_id,
                token_hash=hash_token(raw),
                name=name,
                expires_at=expires,
                cost_budget=maximum,
                cost_restore_rate=rate,
            )
        )
    return raw


# Who a token stands for: one statement, run through SQLAlchemy or (compiled read path)
# straight on the asyncpg connection, compiled once.
VIEWER_BY_TOKEN = (
    select(user.c.id, user.c.role, user.c.email)
    .join(token, token.c.user_id == user.c.id)
    .where(
        token.c.token_hash == bindparam("token_hash"),
        token.c.revoked_at.is_(None),
        or_(token.c.expires_at.is_(None), token.c.expires_at > bindparam("now")),
        user.c.is_active,
    )
)
_compiled_viewer = VIEWER_BY_TOKEN.compile(dialect=asyncpg.dialect())
VIEWER_BY_TOKEN_SQL = str(_compiled_viewer)
VIEWER_BY_TOKEN_ORDER = tuple(_compiled_viewer.positiontup or ())


# The compiled read path's token lookup also sets the viewer for row-level security, in the
# transaction it opens (one statement: the added cost is only BEGIN and COMMIT).
_compiled_setting = VIEWER_BY_TOKEN.add_columns(
    func.cg_set_viewer(user.c.id, cast(user.c.role, Text))
).compile(dialect=asyncpg.dialect())
VIEWER_SETTING_BY_TOKEN_SQL = str(_compiled_setting)
VIEWER_SETTING_BY_TOKEN_ORDER = tuple(_compiled_setting.positiontup or ())


def _viewer(row) -> Viewer | None:
    if row is None:
        return None
    return Viewer(user_id=row[0], role=Role(row[1]), email=row[2])


async def viewer_for_token(engine: AsyncEngine, raw: str | None) -> Viewer | None:
    """The viewer a bearer token stands for; None when it is unknown, expired or revoked."""
    if not raw:
        return ANONYMOUS
    params = {"token_hash": hash_token(raw), "now": datetime.now(UTC)}
    async with engine.connect() as conn:
        return _viewer((await conn.execute(VIEWER_BY_TOKEN, params)).first())


async def viewer_on(connection, raw: str | None, *, set_viewer: bool = False) -> Viewer | None:
    """viewer_for_token on a bare asyncpg connection (one round trip); `set_viewer` also
    sets the viewer of the connection's open transaction (row-level security)."""
    if not raw:
        return ANONYMOUS
    params = {"token_hash": hash_token(raw), "now": datetime.now(UTC)}
    sql, order = (
        (VIEWER_SETTING_BY_TOKEN_SQL, VIEWER_SETTING_BY_TOKEN_ORDER)
        if set_viewer
        else (VIEWER_BY_TOKEN_SQL, VIEWER_BY_TOKEN_ORDER)
    )
    return _viewer(await connection.fetchrow(sql, *(params[name] for name in order)))


async def viewer_setting_on(connection, raw: str | None) -> Viewer | None:
    """viewer_on that also sets the viewer of the connection's open transaction."""
    return await viewer_on(connection, raw, set_viewer=True)


async def revoke(engine: AsyncEngine, raw: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(token)
            .where(token.c.token_hash == hash_token(raw), token.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return result.rowcount > 0


async def set_budget(engine: AsyncEngine, raw: str, budget: tuple[float, float] | None) -> bool:
    """Give a live token its own cost budget (maximum, rate), or None: its role's again."""
    maximum, rate = budget or (None, None)
    async with engine.begin() as conn:
        result = await conn.execute(
            update(token)
            .where(token.c.token_hash == hash_token(raw), token.c.revoked_at.is_(None))
            .values(cost_budget=maximum, cost_restore_rate=rate)
        )
    return result.rowcount > 0
