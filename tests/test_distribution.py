"""The Citus distribution plan (models/distribution.py, docs/scaling.md) against the schema.

The live check reads the migrated test database's catalog: a migration that adds a table
without classifying it, a unique index or foreign key a sharded table could not enforce, or
a statement-level trigger on a distributed table fails here, unless EXCEPTIONS lists it
with its remedy. The unit checks feed the rules made-up catalogs, so each rule is seen to
fail.
"""

import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import models
from models import distribution as plan
from models.distribution import (
    CATALOG_SQL,
    Catalog,
    Column,
    ForeignKey,
    Trigger,
    UniqueIndex,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "scaling.md"


async def read_catalog(conn: AsyncConnection) -> Catalog:
    rows = {name: (await conn.execute(text(sql))).all() for name, sql in CATALOG_SQL.items()}
    tables: dict[str, dict[str, Column]] = {}
    for r in rows["columns"]:
        tables.setdefault(r.table, {})[r.column] = Column(r.type, r.not_null)
    return Catalog(
        tables=tables,
        unique=[UniqueIndex(r.table, r.name, tuple(r.columns)) for r in rows["unique"]],
        foreign_keys=[
            ForeignKey(r.table, r.name, tuple(r.columns), r.referenced, tuple(r.referenced_columns))
            for r in rows["foreign_keys"]
        ],
        triggers=[Trigger(r.table, r.name, r.per_row) for r in rows["triggers"]],
    )


async def live_catalog(engine: AsyncEngine) -> Catalog:
    async with engine.connect() as conn:
        return await read_catalog(conn)


async def test_live_schema_follows_the_plan(engine: AsyncEngine) -> None:
    catalog = await live_catalog(engine)
    # The catalog read sees what it should: every model table, and the known exceptions.
    assert {t.name for t in models.metadata.sorted_tables} <= set(catalog.tables)
    assert {v.name for v in plan.violations(catalog)} == set(plan.EXCEPTIONS)
    assert plan.unexcused(catalog) == []


async def test_customer_children_carry_a_not_null_customer_id(engine: AsyncEngine) -> None:
    catalog = await live_catalog(engine)
    for table, where in plan.DISTRIBUTED.items():
        if plan.group_of(table) == "customer" and table != "customer":
            column = catalog.tables[table][where.column]
            assert column.not_null and column.type == "bigint", (table, column)


async def test_live_check_fails_on_a_migration_that_breaks_the_rules(engine: AsyncEngine) -> None:
    """What a careless migration would add, in a transaction rolled back afterwards."""
    async with engine.connect() as conn:
        await conn.begin()
        await conn.execute(
            text(
                "CREATE TABLE loyalty_points (id bigint PRIMARY KEY,"
                " customer_id bigint REFERENCES customer (id))"
            )
        )
        await conn.execute(text("CREATE UNIQUE INDEX uq_order_line_sku ON order_line (sku)"))
        problems = plan.unexcused(await read_catalog(conn))
        await conn.rollback()
    assert [p.split(":", 1)[0] for p in problems] == ["loyalty_points", "uq_order_line_sku"]


def test_doc_states_the_plan_and_every_exception() -> None:
    doc = DOC.read_text()
    section = doc.split("## Growing past one primary (Citus)", 1)[1].split("\n## ", 1)[0]
    # The SQL blocks are the plan; prose may name tables the plan does not have yet.
    sql = "\n".join(re.findall(r"```sql\n(.*?)```", section, re.S))
    calls = re.findall(
        r"create_distributed_table\('(\w+)', '(\w+)', colocate_with => '(\w+)'\);", sql
    )
    assert len(calls) == sql.count("create_distributed_table("), "one call per line, all args"
    assert {t: plan.Distributed(c, w) for t, c, w in calls} == plan.DISTRIBUTED
    assert set(re.findall(r"create_reference_table\('(\w+)'\)", sql)) == plan.REFERENCE
    missing = [name for name in plan.EXCEPTIONS if f"`{name}`" not in section]
    assert missing == [], "docs/scaling.md does not discuss these exceptions"
    assert [t for t in sorted(plan.LOCAL) if f"`{t}`" not in section] == []


# --- the rules, on made-up catalogs ----------------------------------------------------------

BIG = Column("bigint", True)


def tiny_catalog() -> Catalog:
    """A catalog that follows the plan: every classified table, with its distribution column."""
    tables: dict[str, dict[str, Column]] = {t: {"id": BIG} for t in plan.REFERENCE | plan.LOCAL}
    for table, where in plan.DISTRIBUTED.items():
        tables[table] = {"id": BIG, where.column: BIG}
    return Catalog(tables=tables)


def names(catalog: Catalog) -> set[str]:
    return {v.name for v in plan.violations(catalog)}


def test_rules_pass_a_catalog_that_follows_the_plan() -> None:
    catalog = tiny_catalog()
    catalog.unique.append(UniqueIndex("address", "pk_ok", ("customer_id", "id")))
    catalog.foreign_keys += [
        ForeignKey("address", "fk_ok", ("customer_id",), "customer", ("id",)),
        ForeignKey("orders", "fk_ref", ("id",), "sales_channel", ("id",)),
        ForeignKey("api_token", "fk_local_ref", ("id",), "app_user", ("id",)),
    ]
    catalog.triggers.append(Trigger("ledger_transaction", "row_trigger", per_row=True))
    assert plan.violations(catalog) == []


def test_an_unclassified_table_fails() -> None:
    catalog = tiny_catalog()
    catalog.tables["loyalty_points"] = {"customer_id": BIG}
    assert names(catalog) == {"loyalty_points"}
    assert plan.unexcused(catalog)[0].startswith("loyalty_points: table loyalty_points is in 0")


def test_a_classified_table_that_is_gone_fails() -> None:
    catalog = tiny_catalog()
    del catalog.tables["sales_channel"]
    assert names(catalog) == {"sales_channel"}


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (None, "has no distribution column"),
        (Column("bigint", False), "is nullable"),
        (Column("integer", True), "need one type"),
    ],
)
def test_a_bad_distribution_column_fails(column: Column | None, expected: str) -> None:
    catalog = tiny_catalog()
    if column is None:
        del catalog.tables["address"]["customer_id"]
    else:
        catalog.tables["address"]["customer_id"] = column
    [violation] = plan.violations(catalog)
    assert violation.name == "address" and expected in violation.message


def test_a_unique_index_without_the_distribution_column_fails() -> None:
    catalog = tiny_catalog()
    catalog.unique += [
        UniqueIndex("address", "uq_bad", ("id",)),
        UniqueIndex("address", "uq_expr", (None, "kind")),
        UniqueIndex("sales_channel", "uq_reference_is_fine", ("code",)),
        UniqueIndex("saved_search", "uq_local_is_fine", ("owner_id", None)),
    ]
    assert names(catalog) == {"uq_bad", "uq_expr"}


@pytest.mark.parametrize(
    ("fk", "expected"),
    [
        # reference -> distributed, local -> distributed
        (ForeignKey("app_user", "fk1", ("customer_id",), "customer", ("id",)), "reference table"),
        (ForeignKey("bulk_job_error", "fk2", ("id",), "customer", ("id",)), "local table cannot"),
        # distributed -> local
        (ForeignKey("orders", "fk3", ("id",), "export_job", ("id",)), "cannot reference a local"),
        # distributed -> distributed: another group, or not on the distribution columns
        (ForeignKey("customer", "fk4", ("id",), "account", ("id",)), "different colocation"),
        (ForeignKey("order_line", "fk5", ("id",), "orders", ("id",)), "does not pair"),
    ],
)
def test_foreign_keys_citus_refuses_fail(fk: ForeignKey, expected: str) -> None:
    catalog = tiny_catalog()
    catalog.foreign_keys.append(fk)
    [violation] = plan.violations(catalog)
    assert violation.name == fk.name and expected in violation.message


def test_a_statement_trigger_on_a_distributed_table_fails() -> None:
    catalog = tiny_catalog()
    catalog.triggers += [
        Trigger("orders", "orders_truncate", per_row=False),
        Trigger("import_job", "local_statement_trigger", per_row=False),
    ]
    assert names(catalog) == {"orders_truncate"}


def test_an_exception_nothing_needs_any_more_fails() -> None:
    # The tiny catalog violates nothing, so every listed exception is stale.
    problems = plan.unexcused(tiny_catalog())
    assert len(problems) == len(plan.EXCEPTIONS)
    assert all("remove it" in p for p in problems)
