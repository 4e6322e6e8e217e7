"""schema/input_values builds every input object exactly as Strawberry's own walk does:
for each input type of the schema, values with every field given, with none, and with
nulls, coerced by graphql-core as a request's variables are, are turned into objects both
ways and compared."""

from __future__ import annotations

import base64
from contextlib import contextmanager

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    coerce_input_value,
)
from strawberry.types.arguments import convert_argument

from schema import input_values
from server.api import schema

SCALARS = {
    "String": "text",
    "Int": 3,
    "Float": 1.5,
    "Boolean": True,
    "ID": base64.b64encode(b"Customer:7").decode(),
    "Date": "2026-01-02",
    "DateTime": "2026-01-02T03:04:05Z",
    "Decimal": "12.30",
    "JSON": {"a": [1, "b"]},
    "UUID": "4c1c3c52-4d3c-4c54-9c7f-2d55c1e5d0a1",
}
# @oneOf (Strawberry's, which graphql-core's `is_one_of` does not show): one field given.
ONE_OF = {
    c.definition.name
    for c in schema.schema_converter.type_map.values()
    if getattr(c.definition, "is_one_of", False)
}
HOOKED = [
    concrete
    for concrete in schema.schema_converter.type_map.values()
    if getattr(concrete.definition, "from_input", None) is input_values.from_input
]


def sample(gtype, depth: int = 0, nulls: bool = False):
    """A JSON value for `gtype`, every field given (or null where nullable)."""
    if isinstance(gtype, GraphQLNonNull):
        return sample(gtype.of_type, depth, nulls=False)
    if nulls:
        return None
    if isinstance(gtype, GraphQLList):
        return [sample(gtype.of_type, depth), sample(gtype.of_type, depth)]
    if isinstance(gtype, GraphQLEnumType):
        return next(iter(gtype.values))
    if isinstance(gtype, GraphQLScalarType):
        if gtype.name == "Upload":
            return pytest.skip("no JSON value for an Upload")
        return SCALARS[gtype.name]
    assert isinstance(gtype, GraphQLInputObjectType)
    fields = list(gtype.fields.items())
    if gtype.name in ONE_OF:
        fields = fields[:1]
    if depth > 3:
        fields = [(n, f) for n, f in fields if isinstance(f.type, GraphQLNonNull)]
    return {name: sample(f.type, depth + 1) for name, f in fields}


def shapes(gtype: GraphQLInputObjectType) -> list[dict]:
    full = sample(gtype)
    if gtype.name in ONE_OF:  # exactly one field, always
        return [full]
    required = {n: v for n, v in full.items() if isinstance(gtype.fields[n].type, GraphQLNonNull)}
    nulls = {n: sample(f.type, nulls=True) for n, f in gtype.fields.items()}
    return [full, required, {**nulls, **required}]


@contextmanager
def strawberrys_own(definition):
    hook = definition.from_input
    definition.from_input = None
    try:
        yield
    finally:
        definition.from_input = hook


def build(concrete, value):
    graphql_type = schema._schema.type_map[concrete.definition.name]
    coerced = coerce_input_value(value, graphql_type)
    origin = concrete.definition.origin
    return convert_argument(coerced, origin, schema.schema_converter.scalar_registry, schema.config)


def test_every_plain_input_type_has_the_hook():
    names = {c.definition.name for c in HOOKED}
    assert len(names) >= 50 and {"CustomerCreateInput", "LedgerTransferInput"} <= names
    assert ONE_OF == {"CustomerLookup", "OrderLookup", "BulkCustomerSelection"}


@pytest.mark.parametrize("concrete", HOOKED, ids=lambda c: c.definition.name)
def test_built_as_strawberry_builds_it(concrete):
    graphql_type = schema._schema.type_map[concrete.definition.name]
    for value in shapes(graphql_type):
        fast = build(concrete, value)
        with strawberrys_own(concrete.definition):
            own = build(concrete, value)
        assert type(fast) is type(own)
        assert vars(fast) == vars(own), value
