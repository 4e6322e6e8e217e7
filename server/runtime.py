"""The database of a process: DATABASE_URL, or the embedded server, started and migrated.

Two roles (migration 0010): the owner runs migrations and the CLI's administration (seed,
user create, token revoke); the application connects as `customer_graph_app`, which owns
nothing and is bound by row-level security. `Database.url` is the owner's URL and
`Database.app_url` the application's.
"""

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncEngine

from server.database import EmbeddedPostgres, ensure_database, make_engine
from server.migrate import upgrade
from server.settings import Settings

log = logging.getLogger(__name__)
EMBEDDED_DB = "customer_graph"
APP_ROLE = "customer_graph_app"  # created by migration 0010


@dataclass
class Database:
    url: str  # the owner: migrations and administration
    embedded: EmbeddedPostgres | None = None
    app_url: str = ""  # the application's role; unset: the owner's URL

    def __post_init__(self) -> None:
        self.app_url = self.app_url or self.url

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def with_user(url: str, user: str) -> str:
    """The same server and database as another user, without a password (the embedded
    server trusts its Unix socket)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, ""))


def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    """Blocking. With no DATABASE_URL, start the embedded PostgreSQL in the data directory.

    DATABASE_URL is the application's; migrations run as CUSTOMER_GRAPH_MIGRATION_URL when
    set. The embedded server migrates as its superuser and serves as the application role.
    """
    if settings.database_url:
        owner = settings.migration_url or settings.database_url
        db = Database(owner, app_url=settings.database_url)
    else:
        embedded = EmbeddedPostgres(settings.data_dir / "pgdata")
        url = ensure_database(embedded, EMBEDDED_DB)
        db = Database(url, embedded, app_url=with_user(url, APP_ROLE))
        log.info("embedded PostgreSQL: %s", db.url)
    if migrate:
        upgrade(db.url)
    return db


async def open_database_async(settings: Settings, *, migrate: bool = True) -> Database:
    return await asyncio.to_thread(open_database, settings, migrate=migrate)


def replica_engines(settings: Settings) -> list[AsyncEngine]:
    """The app's engines on the read replicas (DATABASE_REPLICA_URL; server/replicas.py),
    as the application role, with the primary's pool size and timeouts. Nothing connects
    until the first check."""
    return [
        make_engine(
            url,
            pool_size=settings.pool_size,
            statement_timeout=settings.statement_timeout,
            connect_timeout=settings.connect_timeout,
        )
        for url in settings.replica_urls
    ]
