"""Every query and mutation in the README returns data on the demo database (seed 42)."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import OperationDefinitionNode, OperationType, parse, print_ast

from server.seed import seed
from tests.conftest import GraphQLClient
from tests.factories import make_user

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```graphql\n(.*?)```", README, re.DOTALL)


def _operations() -> list[str]:
    found = []
    for block in BLOCKS:
        for definition in parse(block).definitions:
            if (
                isinstance(definition, OperationDefinitionNode)
                and definition.operation is not OperationType.SUBSCRIPTION
            ):
                found.append(print_ast(definition))
    return found


def _empty(value) -> bool:
    """No data at all: null, an empty list, or an object whose values are all empty."""
    if value is None or value == []:
        return True
    if isinstance(value, dict):
        return all(_empty(v) for k, v in value.items() if k != "__typename")
    return False


async def test_readme_examples_return_data_on_the_demo_database(database_url, engine, client):
    operations = _operations()
    assert len(operations) >= 9
    await seed(database_url, customers=1000, seed=42)  # what `serve --demo` loads
    _, token = await make_user(engine, role="ADMIN", email="admin@demo.example")
    gql = GraphQLClient(client, token)
    for operation in operations:
        body = await gql(operation)
        assert "errors" not in body, (operation, body["errors"])
        for field, value in body["data"].items():
            assert not _empty(value), (operation, field, value)
        if "userErrors" in operation:
            payload = next(iter(body["data"].values()))
            assert payload["userErrors"] == [], operation
