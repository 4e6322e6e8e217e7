"""Run Alembic programmatically (the CLI's `migrate`, `serve` start-up, and the tests)."""

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


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
