"""schema.graphql is the printed SDL; it must match the code (regenerate: see README)."""

from pathlib import Path

from server.api import schema

SNAPSHOT = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_schema_snapshot_is_current():
    printed = schema.as_str() + "\n"
    assert SNAPSHOT.read_text() == printed, (
        "schema.graphql is stale: run `python -m server.sdl > schema.graphql` and commit it"
    )
