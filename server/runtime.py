"""The database of a process: DATABASE_URL, or the embedded server, started and migrated."""

import asyncio
import logging
from dataclasses import dataclass

from server.database import EmbeddedPostgres, ensure_database
from server.migrate import upgrade
from server.settings import Settings

log = logging.getLogger(__name__)
EMBEDDED_DB = "customer_graph"


@dataclass
class Database:
    url: str
    embedded: EmbeddedPostgres | None = None

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    """Blocking. With no DATABASE_URL, start the embedded PostgreSQL in the data directory."""
    if settings.database_url:
        db = Database(settings.database_url)
    else:
        embedded = EmbeddedPostgres(settings.data_dir / "pgdata")
        db = Database(ensure_database(embedded, EMBEDDED_DB), embedded)
        log.info("embedded PostgreSQL: %s", db.url)
    if migrate:
        upgrade(db.url)
    return db


async def open_database_async(settings: Settings, *, migrate: bool = True) -> Database:
    return await asyncio.to_thread(open_database, settings, migrate=migrate)
