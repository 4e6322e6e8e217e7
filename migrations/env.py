"""Alembic environment: async engine on asyncpg; the URL comes from server.migrate."""

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

import models
from server.database import make_engine
from server.migrate import MIGRATION_LOCK

config = context.config
target_metadata = models.metadata


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    # Expression indexes (cg_fold(...)) cannot be compared by autogenerate; the migration owns them.
    if (
        type_ == "index"
        and obj is not None
        and obj.expressions
        and any(not hasattr(e, "table") for e in obj.expressions)
    ):
        return False
    return True


def _run(connection: Connection) -> None:
    # One transaction for the whole run, its first statement a transaction-level advisory
    # lock: instances starting together queue here, and each reads alembic_version only
    # once it holds the lock, so the first migrates and the others find the head. The
    # lock ends with the transaction, so it also works through a transaction pooler
    # (PgBouncer), and a failed run leaves the database at its previous revision.
    # Caveat: an enum label added earlier in the same run cannot be used by a later
    # migration (PostgreSQL allows its use only after commit).
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def _main() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"), pool_size=1)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


asyncio.run(_main())
