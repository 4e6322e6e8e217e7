"""Writing many rows with one statement over arrays (`unnest`), whatever their number:
the import's batch writer uses these (resolvers/import_writer.py)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import bindparam, func, text
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

_PG = postgresql.dialect()

# A batch writes each kind of row with one statement over arrays (`unnest`), whatever its
# size: SQLAlchemy's executemany/insertmanyvalues compiles a VALUES list per batch, and an
# UPDATE per changed row costs a round trip each. asyncpg sends the arrays in binary.

_ARRAY_TYPES = {"BIGINT": "bigint[]", "INTEGER": "integer[]", "BOOLEAN": "boolean[]"}
_STATEMENTS: dict[tuple[str, str, tuple[str, ...]], Any] = {}


def _unnest(table, columns: tuple[str, ...], extra: tuple[str, ...] = ()) -> tuple[str, str]:
    """(`unnest(CAST(:c AS text[]), …) AS u(c, …)`, `CAST(u.c AS <its type>), …`); `extra`
    are integer arrays that are no column (an UPDATE's version increments)."""
    arrays, selected = [], []
    for name in columns:
        sql_type = _sql_type(table, name)
        arrays.append(f"CAST(:{name} AS {_ARRAY_TYPES.get(sql_type, 'text[]')})")
        selected.append(_cell(table, name))
    arrays += [f"CAST(:{name} AS integer[])" for name in extra]
    names = ", ".join((*columns, *extra))
    return f"unnest({', '.join(arrays)}) AS u({names})", ", ".join(selected)


def _sql_type(table, name: str) -> str:
    return table.c[name].type.compile(dialect=_PG)


def _is_array(table, name: str) -> bool:
    return isinstance(table.c[name].type, sqltypes.ARRAY)


def _cell(table, name: str) -> str:
    """A column's value from `u`. unnest cannot carry an array of arrays (it flattens
    them), so an array column's cell is a JSON array (text) per row, read back in order."""
    if _is_array(table, name):
        return (
            f"ARRAY(SELECT j.e FROM jsonb_array_elements_text(CAST(u.{name} AS jsonb))"
            f" WITH ORDINALITY AS j(e, n) ORDER BY j.n)"
        )
    return f"CAST(u.{name} AS {_sql_type(table, name)})"


def insert_sql(table, columns: tuple[str, ...], returning: str = "") -> Any:
    key = ("insert", table.name, columns)
    if key not in _STATEMENTS:
        source, selected = _unnest(table, columns)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {selected} FROM {source}"
        _STATEMENTS[key] = text(sql + (f" RETURNING {returning}" if returning else ""))
    return _STATEMENTS[key]


def update_sql(table, columns: tuple[str, ...], extra: str) -> Any:
    """UPDATE rows by id to the given columns (and `extra` assignments, which may read
    `u.bumps`)."""
    key = ("update", table.name, columns)
    if key not in _STATEMENTS:
        source, _ = _unnest(table, ("id", *columns), ("bumps",) if "u.bumps" in extra else ())
        sets = [f"{c} = {_cell(table, c)}" for c in columns]
        _STATEMENTS[key] = text(
            f"UPDATE {table.name} AS t SET {', '.join([*sets, extra])} FROM {source}"
            " WHERE t.id = u.id"
        )
    return _STATEMENTS[key]


def arrays(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> dict[str, list[Any]]:
    return {c: [_plain(r.get(c)) for r in rows] for c in columns}


def _plain(value: Any) -> Any:
    if isinstance(value, list):  # an array column's cell: JSON (see _cell)
        return orjson.dumps(value).decode()
    return getattr(value, "value", value)  # an enum: its label


def values_table(name: str, type_: Any) -> Any:
    """`unnest(:name) AS name(v)`: a batch's values as a table to join. Not `= ANY(:name)`:
    over a sequential scan that compares every row with every value, and a prepared
    statement's generic plan does just that while a new table has no statistics yet (a
    first import); a join's worst plan is a hash join, linear."""
    return func.unnest(bindparam(name, type_=ARRAY(type_))).table_valued("v").render_derived(name)
