"""Run Alembic programmatically (the CLI's `migrate`, `serve` start-up, and the tests).

Several instances may start together on one database: every upgrade and downgrade runs in
one transaction that first takes `MIGRATION_LOCK` (migrations/env.py), so one migrates
and the others wait, then find the head and do nothing.
"""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Advisory lock key (per database) that every upgrade and downgrade holds for its whole
# transaction (migrations/env.py): instances starting together migrate once.
MIGRATION_LOCK = 0x5C4E3A10


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Autogenerate cannot compare expression indexes (cg_fold, DESC): the migration owns them."""
    expressions = getattr(obj, "expressions", None) if type_ == "index" else None
    return not (expressions and any(not hasattr(e, "table") for e in expressions))


def alembic_config(url: str) -> Config:
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Blocking; call through asyncio.to_thread from async code (env.py runs its own loop)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def script_head() -> str | None:
    """This code's migration head."""
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


def compare(current: str | None, head: str | None) -> str:
    """`current` (the database's revision) against this code's `head`: "head", "behind"
    (a revision this code knows, or none: `customer-graph migrate` brings it to the
    head) or "ahead" (a revision this code does not know: a newer release migrated)."""
    if current == head:
        return "head"
    if current is None:
        return "behind"
    try:
        known = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_revision(
            current
        )
    except CommandError:
        known = None
    return "behind" if known is not None else "ahead"


async def current_revision(url: str) -> str | None:
    """The database's revision (None: never migrated). Needs the owner's URL: the
    application role may not read alembic_version."""
    from server.database import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            exists = (await conn.execute(text("SELECT to_regclass('alembic_version')"))).scalar()
            if exists is None:
                return None
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    finally:
        await engine.dispose()


def at_start(url: str, *, migrate: bool) -> str:
    """`serve`'s start-up: upgrade to the head (unless `migrate` is False), never past a
    newer release's revision. Blocking. Returns the database's state against this code
    ("head", "behind", "ahead"); readiness (/readyz) says the same."""
    import asyncio

    head = script_head()
    current = asyncio.run(current_revision(url))
    state = compare(current, head)
    if state == "ahead":
        # A newer release migrated (a rolling deploy, or a rollback of the code): serve
        # on; migrations are written to keep the previous release working.
        log.warning(
            "database at revision %s, newer than this code's head %s: not migrating", current, head
        )
        return state
    if state == "behind" and migrate:
        upgrade(url)
        return "head"
    if state == "behind":
        log.warning(
            "database at revision %s, this code expects %s: /readyz answers 503 until"
            " `customer-graph migrate` brings it to the head",
            current,
            head,
        )
    return state
