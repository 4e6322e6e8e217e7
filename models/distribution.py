"""How the tables would spread over a Citus cluster (docs/scaling.md, "Growing past one
primary"), and the schema rules that plan needs, checked against PostgreSQL's catalog.

Every table is in exactly one class: DISTRIBUTED (hash-sharded by a column, in a colocation
group), REFERENCE (one shard copied to every node) or LOCAL (stays on the coordinator).
Citus enforces a unique index or a foreign key only inside one shard, so
`violations(catalog)` reports what it would refuse or could not enforce; EXCEPTIONS names
each such constraint the schema has today with its remedy (the migration to write before
distributing). tests/test_distribution.py fails on a new table that is not classified, a
new violation that is not excused, or an exception that no longer matches anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Distributed:
    column: str
    # The table whose shards these rows share ("none": the first table of its own group).
    colocate_with: str = "customer"


DISTRIBUTED: dict[str, Distributed] = {
    "customer": Distributed("id", "none"),
    "address": Distributed("customer_id"),
    "custom_field_value": Distributed("customer_id"),
    "customer_sales_channel": Distributed("customer_id"),
    "orders": Distributed("customer_id"),
    "order_line": Distributed("customer_id"),
    "ledger_transaction": Distributed("customer_id"),
    "timeline_event": Distributed("customer_id"),
    "tax_exemption_certificate": Distributed("customer_id"),
    # One row per unordered pair (a < b): with a's customer, where the report probes it.
    "duplicate_dismissal": Distributed("customer_a_id"),
    # Shared by several customers on different shards: a group of its own, by account.
    "account": Distributed("id", "none"),
    "payment_method": Distributed("account_id", "account"),
}

# Small, read by every shard's joins, written rarely (each write is a 2PC to every node).
REFERENCE: frozenset[str] = frozenset({"app_user", "sales_channel", "custom_field_definition"})

# The coordinator's own: per-request or per-job state nothing on a worker joins to.
LOCAL: frozenset[str] = frozenset(
    {
        "alembic_version",
        "api_token",
        "bulk_job",
        "bulk_job_error",
        "cost_bucket",
        "export_job",
        "idempotency_key",
        "import_job",
        "import_job_error",
        "persisted_query",
        "persisted_query_total",
        "saved_search",
        "subscription_lease",
    }
)

_PK = "PRIMARY KEY (customer_id, id) before distributing; ids stay globally unique (one sequence)"
_NUMBER = (
    "unique by construction (one sequence, drawn on the coordinator): a plain index instead;"
    " a lookup by number probes every shard"
)

# Constraint, index or trigger name -> remedy (docs/scaling.md says more about each).
EXCEPTIONS: dict[str, str] = {
    "pk_address": _PK,
    "pk_orders": _PK,
    "pk_order_line": _PK,
    "pk_ledger_transaction": _PK,
    "pk_timeline_event": _PK,
    "pk_tax_exemption_certificate": _PK,
    "pk_payment_method": "PRIMARY KEY (account_id, id) before distributing",
    "uq_customer_number": _NUMBER,
    "uq_orders_number": _NUMBER,
    "uq_account_number": _NUMBER,
    "uq_customer_email_live": (
        "lookup table customer_email (email PRIMARY KEY, customer_id) distributed by email,"
        " written in the same distributed transaction as the customer"
    ),
    "uq_customer_user_id": (
        "the login owns the link: app_user.customer_id UNIQUE in the reference table"
    ),
    "fk_customer_account_id_account": (
        "drop the key: accounts are never deleted; the use cases check the account exists"
    ),
    "fk_customer_merged_into_id_customer": (
        "drop the key: the merge sets it in the transaction that locks both customers;"
        " customers are never deleted"
    ),
    "fk_duplicate_dismissal_customer_b_id_customer": (
        "drop the key: customers are never deleted; the report joins b by id"
    ),
    "fk_order_line_order_id_orders": (
        "FOREIGN KEY (customer_id, order_id) REFERENCES orders (customer_id, id)"
    ),
    "fk_ledger_transaction_order_id_orders": (
        "drop the key: ledger rows never move (append-only) while a merge moves the order;"
        " the order id stays global"
    ),
    "ledger_no_truncate": (
        "drop it: Citus propagates row triggers only; TRUNCATE stays refused by privilege"
        " (the application roles have none)"
    ),
}


# The catalog, as read by CATALOG_SQL (plain data, so the rules can be tried on made-up rows).
@dataclass(frozen=True)
class Column:
    type: str
    not_null: bool


@dataclass(frozen=True)
class UniqueIndex:
    table: str
    name: str
    columns: tuple[str | None, ...]  # None: an expression


@dataclass(frozen=True)
class ForeignKey:
    table: str
    name: str
    columns: tuple[str, ...]
    referenced: str
    referenced_columns: tuple[str, ...]


@dataclass(frozen=True)
class Trigger:
    table: str
    name: str
    per_row: bool


@dataclass
class Catalog:
    tables: dict[str, dict[str, Column]]  # table -> column -> Column
    unique: list[UniqueIndex] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)


@dataclass(frozen=True)
class Violation:
    name: str  # the table, constraint, index or trigger at fault: the key into EXCEPTIONS
    message: str


# Ordinary tables of the public schema (relkind r/p), their columns, unique indexes (primary
# keys and unique constraints included), foreign keys and user triggers.
CATALOG_SQL = {
    "columns": """
        SELECT c.relname AS table, a.attname AS column,
               format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY 1, a.attnum""",
    "unique": """
        SELECT c.relname AS table, i.relname AS name,
               array(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(num, n)
                     LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.num
                     WHERE k.n <= x.indnkeyatts ORDER BY k.n) AS columns
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class c ON c.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        WHERE x.indisunique AND c.relkind IN ('r', 'p')
        ORDER BY 1, 2""",
    "foreign_keys": """
        SELECT c.relname AS table, k.conname AS name,
               array(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(num, n)
                     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num
                     ORDER BY u.n) AS columns,
               r.relname AS referenced,
               array(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(num, n)
                     JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num
                     ORDER BY u.n) AS referenced_columns
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_class r ON r.oid = k.confrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        WHERE k.contype = 'f'
        ORDER BY 1, 2""",
    "triggers": """
        SELECT c.relname AS table, t.tgname AS name, (t.tgtype & 1) = 1 AS per_row
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        WHERE NOT t.tgisinternal
        ORDER BY 1, 2""",
}


def kind_of(table: str) -> str | None:
    if table in DISTRIBUTED:
        return "distributed"
    if table in REFERENCE:
        return "reference"
    if table in LOCAL:
        return "local"
    return None


def group_of(table: str) -> str:
    """The first table of a distributed table's colocation group."""
    seen = set()
    while (with_ := DISTRIBUTED[table].colocate_with) in DISTRIBUTED and table not in seen:
        seen.add(table)
        table = with_
    return table


def violations(catalog: Catalog) -> list[Violation]:
    """What Citus would refuse or could not enforce under the plan, exceptions not applied."""
    found: list[Violation] = []
    found += _classification(catalog)
    found += _distribution_columns(catalog)
    found += _unique_indexes(catalog)
    found += _foreign_keys(catalog)
    found += _triggers(catalog)
    return found


def unexcused(catalog: Catalog) -> list[str]:
    """Violations no exception covers, and exceptions that no longer match a violation."""
    found = violations(catalog)
    names = {v.name for v in found}
    problems = [f"{v.name}: {v.message}" for v in found if v.name not in EXCEPTIONS]
    problems += [
        f"{name}: listed in EXCEPTIONS but nothing violates a rule any more; remove it"
        for name in EXCEPTIONS
        if name not in names
    ]
    return problems


def _classification(catalog: Catalog) -> list[Violation]:
    found = []
    classes = (set(DISTRIBUTED), REFERENCE, LOCAL)
    for table in sorted(catalog.tables):
        count = sum(table in c for c in classes)
        if count != 1:
            found.append(
                Violation(
                    table,
                    f"table {table} is in {count} classes of models/distribution.py"
                    " (DISTRIBUTED, REFERENCE or LOCAL): it needs exactly one",
                )
            )
    for table in sorted(set().union(*classes) - set(catalog.tables)):
        found.append(Violation(table, f"the plan classifies {table}, which does not exist"))
    return found


def _distribution_columns(catalog: Catalog) -> list[Violation]:
    found = []
    for table, plan in sorted(DISTRIBUTED.items()):
        columns = catalog.tables.get(table)
        if columns is None:
            continue  # reported by _classification
        if plan.colocate_with != "none" and plan.colocate_with not in DISTRIBUTED:
            found.append(
                Violation(table, f"{table} colocates with {plan.colocate_with}: not distributed")
            )
            continue
        column = columns.get(plan.column)
        if column is None:
            found.append(Violation(table, f"{table} has no distribution column {plan.column}"))
            continue
        if not column.not_null:
            found.append(
                Violation(table, f"{table}.{plan.column} is nullable: a row needs its shard")
            )
        group = group_of(table)
        anchor = catalog.tables.get(group, {}).get(DISTRIBUTED[group].column)
        if anchor is not None and anchor.type != column.type:
            found.append(
                Violation(
                    table,
                    f"{table}.{plan.column} is {column.type}, its group's {group}."
                    f"{DISTRIBUTED[group].column} is {anchor.type}: colocated tables"
                    " need one type",
                )
            )
    return found


def _unique_indexes(catalog: Catalog) -> list[Violation]:
    found = []
    for index in catalog.unique:
        plan = DISTRIBUTED.get(index.table)
        if plan is not None and plan.column not in index.columns:
            shown = ", ".join(c or "(expression)" for c in index.columns)
            found.append(
                Violation(
                    index.name,
                    f"unique index {index.name} on {index.table} ({shown}) lacks the"
                    f" distribution column {plan.column}: each shard could only enforce"
                    " its own part",
                )
            )
    return found


def _foreign_keys(catalog: Catalog) -> list[Violation]:
    found = []
    for fk in catalog.foreign_keys:
        source, target = kind_of(fk.table), kind_of(fk.referenced)
        if source is None or target is None:
            continue  # reported by _classification
        problem = _foreign_key_problem(fk, source, target)
        if problem:
            found.append(
                Violation(
                    fk.name, f"foreign key {fk.name} ({fk.table} -> {fk.referenced}): {problem}"
                )
            )
    return found


def _foreign_key_problem(fk: ForeignKey, source: str, target: str) -> str | None:
    # What Citus allows (docs.citusdata.com, "Creating and Modifying Distributed Objects",
    # constraints): local<->local, reference->reference, local<->reference, distributed ->
    # reference, and distributed -> distributed when colocated on the distribution column.
    if target == "distributed" and source != "distributed":
        return f"a {source} table cannot reference a distributed table"
    if source == "distributed" and target == "local":
        return "a distributed table cannot reference a local table"
    if source == "distributed" and target == "distributed":
        if group_of(fk.table) != group_of(fk.referenced):
            return "the tables are in different colocation groups"
        pairs = set(zip(fk.columns, fk.referenced_columns, strict=True))
        if (DISTRIBUTED[fk.table].column, DISTRIBUTED[fk.referenced].column) not in pairs:
            return "the key does not pair the two distribution columns"
    return None


def _triggers(catalog: Catalog) -> list[Violation]:
    return [
        Violation(
            t.name,
            f"statement-level trigger {t.name} on distributed table {t.table}: Citus"
            " propagates row-level triggers only",
        )
        for t in catalog.triggers
        if t.table in DISTRIBUTED and not t.per_row
    ]
