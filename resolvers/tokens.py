"""Bearer tokens: opaque random strings, stored only as a SHA-256 hash."""

import asyncio
import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta

from cachetools import TTLCache
from sqlalchemy import Text, bindparam, cast, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from models import ApiToken, AppUser
from models.enums import Role
from resolvers.viewer import ANONYMOUS, Viewer

log = logging.getLogger(__name__)
MAX_FILLS = 100  # ViewerCache.fill_from's lookups under way at once

token = ApiToken.__table__
user = AppUser.__table__
PREFIX = "cg_"


# Migration 0021's triggers notify here when a token or its user changes.
TOKEN_CHANNEL = "cg_token"

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


# Who a token stands for (and until when): one statement, run through SQLAlchemy or
# (compiled read path) straight on the asyncpg connection, compiled once.
VIEWER_BY_TOKEN = (
    select(user.c.id, user.c.role, user.c.email, token.c.expires_at)
    .join(token, token.c.user_id == user.c.id)
    .where(
        token.c.token_hash == bindparam("token_hash"),
        token.c.revoked_at.is_(None),
        or_(token.c.expires_at.is_(None), token.c.expires_at > bindparam("now")),
        user.c.is_active,
    )
)


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


async def viewer_for_token(
    engine: AsyncEngine, raw: str | None, cache: "ViewerCache | None" = None
) -> Viewer | None:
    """The viewer a bearer token stands for; None when it is unknown, expired or revoked.
    With a `cache` that knows the token, no statement runs."""
    if not raw:
        return ANONYMOUS
    digest = hash_token(raw)
    if cache is not None and (known := cache.get(digest)) is not None:
        return known
    epoch = cache.epoch if cache is not None else 0
    params = {"token_hash": digest, "now": datetime.now(UTC)}
    async with engine.connect() as conn:
        row = (await conn.execute(VIEWER_BY_TOKEN, params)).first()
    if cache is not None and row is not None:
        cache.put(digest, _viewer(row), row.expires_at, epoch)
    return _viewer(row)


async def viewer_setting_on(
    connection, digest: bytes, cache: "ViewerCache | None" = None
) -> Viewer | None:
    """The viewer a bearer token (its hash_token `digest`) stands for, on a bare asyncpg
    connection in one round trip that also sets the viewer of its open transaction
    (row-level security); kept in `cache`."""
    epoch = cache.epoch if cache is not None else 0
    params = {"token_hash": digest, "now": datetime.now(UTC)}
    order = VIEWER_SETTING_BY_TOKEN_ORDER
    row = await connection.fetchrow(VIEWER_SETTING_BY_TOKEN_SQL, *(params[n] for n in order))
    if cache is not None and row is not None:
        cache.put(digest, _viewer(row), row["expires_at"], epoch)
    return _viewer(row)


def begin_as(viewer: Viewer) -> str:
    """BEGIN READ ONLY and row-level security's viewer in one simple-protocol round trip,
    for a viewer the cache knows. Both values are ours (an id, a Role), never client text."""
    role = Role(viewer.role).value
    return f"BEGIN READ ONLY; SELECT cg_set_viewer({int(viewer.user_id)}, '{role}')"


def keep_viewer_sql(viewer: Viewer) -> str:
    """Row-level security's viewer for the rest of a session, read-only (migration 0022),
    for a viewer the cache knows. Both values are ours (an id, a Role), never client text."""
    return f"SELECT cg_keep_viewer({int(viewer.user_id)}, '{Role(viewer.role).value}')"


class ViewerCache:
    """Who a token stands for, kept by one worker for up to `ttl` seconds so a signed-in
    request skips the lookup's round trip.

    Trusted only while the worker listens on `cg_token` (migration 0021's triggers say
    when a token is revoked, or its user deactivated or given another role): a change
    reaches every worker as soon as it commits. When the LISTEN connection is lost, the
    cache empties and is bypassed until it listens again (no notification can be missed
    unnoticed). `epoch` changes with every forget, so a lookup that raced a revocation
    is not stored."""

    def __init__(self, ttl: float, maxsize: int = 10_000) -> None:
        self.entries: TTLCache = TTLCache(maxsize=maxsize, ttl=ttl)
        self.trusted = False
        self.epoch = 0
        self.filling: dict[bytes, asyncio.Task] = {}  # fill_from's lookups under way

    def get(self, digest: bytes) -> Viewer | None:
        if not self.trusted:
            return None
        hit = self.entries.get(digest)
        if hit is None:
            return None
        viewer, expires_at = hit
        if expires_at is not None and expires_at <= datetime.now(UTC):
            self.entries.pop(digest, None)
            return None
        return viewer

    def put(self, digest: bytes, viewer: Viewer | None, expires_at, epoch: int) -> None:
        if viewer is not None and self.trusted and epoch == self.epoch:
            self.entries[digest] = (viewer, expires_at)

    def forget(self, payload: str) -> None:
        """A `cg_token` notification: `token:<sha256 hex>` or `user:<id>`."""
        self.epoch += 1
        kind, _, key = payload.partition(":")
        if kind == "token":
            self.entries.pop(bytes.fromhex(key), None)
        else:
            user_id = int(key) if key.isdigit() else None
            for digest, (viewer, _) in list(self.entries.items()):
                if user_id is None or viewer.user_id == user_id:
                    self.entries.pop(digest, None)

    def listening(self, on: bool) -> None:
        """The worker's LISTEN connection came up (True) or was lost (False)."""
        self.epoch += 1
        self.entries.clear()
        self.trusted = on

    def fill_from(self, engine: AsyncEngine, digest: bytes) -> None:
        """A token looked up on a read replica is not stored from there (the replica may
        not have replayed a revocation whose notification already came): the primary
        (`engine`) is asked once, in the background, so that the token's next reads skip
        the lookup. At most MAX_FILLS at a time; best effort."""
        if not self.trusted or digest in self.filling or len(self.filling) >= MAX_FILLS:
            return
        task = asyncio.create_task(self._fill(engine, digest))
        self.filling[digest] = task
        task.add_done_callback(lambda _: self.filling.pop(digest, None))

    async def _fill(self, engine: AsyncEngine, digest: bytes) -> None:
        try:
            async with engine.connect() as conn:
                pg = (await conn.get_raw_connection()).driver_connection
                async with pg.transaction(readonly=True):  # the lookup sets a LOCAL viewer
                    await viewer_setting_on(pg, digest, self)
        except Exception as error:  # the request was answered; the next one asks again
            log.info("token lookup on the primary failed: %s", type(error).__name__)


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
