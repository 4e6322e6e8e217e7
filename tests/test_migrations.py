"""Alembic: upgrade -> downgrade -> upgrade on an empty database; models agree with the head."""

import asyncio
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

import models
from server.database import make_engine, with_database
from server.migrate import downgrade, include_object, upgrade


@pytest.fixture
async def empty_database(server_url: str):
    """A brand-new database on the test server, dropped afterwards."""
    name = f"cg_mig_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url, pool_size=1)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield with_database(server_url, name)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    await admin.dispose()


def _diff(connection) -> list:
    context = MigrationContext.configure(
        connection, opts={"include_object": include_object, "compare_type": True}
    )
    return compare_metadata(context, models.metadata)


async def _inspect(url: str) -> tuple[set[str], set[str], list]:
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        tables = {r[0] for r in rows} - {"alembic_version"}
        rows = await conn.execute(
            text("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        )
        indexes = {r[0] for r in rows}
        diff = await conn.run_sync(_diff)
    await engine.dispose()
    return tables, indexes, diff


async def test_upgrade_downgrade_upgrade_and_models_agree(empty_database):
    await asyncio.to_thread(upgrade, empty_database)
    await asyncio.to_thread(downgrade, empty_database, "base")
    tables, _, _ = await _inspect(empty_database)
    assert tables == set(), f"downgrade left tables behind: {tables}"

    await asyncio.to_thread(upgrade, empty_database)
    tables, indexes, diff = await _inspect(empty_database)
    assert tables == set(models.metadata.tables)
    assert diff == [], f"models and the migration head disagree: {diff}"
    # Autogenerate skips expression indexes; check those by name instead.
    declared = {i.name for t in models.metadata.tables.values() for i in t.indexes}
    assert declared - indexes == set(), "indexes declared in models but not migrated"


async def test_ledger_is_append_only(engine):
    from tests.factories import make_customer, make_ledger

    customer = await make_customer(engine)
    await make_ledger(engine, customer.id, ["10.00"])
    for statement in (
        "UPDATE ledger_transaction SET memo = 'x'",
        "DELETE FROM ledger_transaction",
        "TRUNCATE ledger_transaction",
    ):
        with pytest.raises(Exception, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
