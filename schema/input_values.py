"""Input objects built from their GraphQL values without Strawberry's per-field walk.

Strawberry builds an input object (`strawberry.types.arguments.convert_argument`) by
walking every field of its type on every request: the field's GraphQL name, its resolved
type, whether that type is generic, then the value. For `customerCreate` that walk was
~11 % of a worker's CPU per request (py-spy, bench.compare e). `install` gives each of the
schema's input types a `from_input` (Strawberry's own hook for types that build their
value) that does the same from a plan made once per type: for each field, its GraphQL
name, its Python name and how its value converts. Only values Strawberry passes through
unchanged are taken here (scalars, enums, lists of them, all optional or not); anything
else (a nested input object, a GlobalID, `Maybe`) goes to `convert_argument` as before,
so the result is always the object Strawberry would build (tests/test_input_values.py
compares the two on every input type).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING
from typing import Any

from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext, convert_argument
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    StrawberryType,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

SAME = "same"  # the value as graphql-core coerced it
LIST = "list"  # a fresh list of such values (graphql-core shares defaults between requests)

# A field's plan: (GraphQL name, Python name, SAME | LIST | its resolved type).
Plan = tuple[tuple[str, str, Any], ...]


def _kind(type_: StrawberryType | type, scalars: Mapping) -> Any:
    """SAME, LIST, or None: Strawberry's convert_argument has to build it."""
    if isinstance(type_, StrawberryMaybe):
        return None
    if isinstance(type_, StrawberryOptional):
        return _kind(type_.of_type, scalars)
    if isinstance(type_, LazyType):
        return _kind(type_.resolve_type(), scalars)
    if isinstance(type_, StrawberryList):
        return LIST if _kind(type_.of_type, scalars) == SAME else None
    if type_ is GlobalID:
        return None
    if isinstance(type_, StrawberryEnumDefinition) or has_enum_definition(type_):
        return SAME
    return SAME if is_scalar(type_, scalars) else None


def _plan(cls: type, context: InputContext) -> tuple[dict[str, None], Plan]:
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    # As convert_argument: a field with no default is None unless the value names it.
    nones = {
        f.python_name: None
        for f in definition.fields
        if f.default_value is MISSING and f.default_factory is MISSING
    }
    fields = []
    for field in definition.fields:
        resolved = field.resolve_type(type_definition=definition)
        kind = _kind(resolved, context.scalar_registry)
        name = context.config.name_converter.from_field(field)
        fields.append((name, field.python_name, kind or resolved))
    return nones, tuple(fields)


def from_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
    """Strawberry's `from_input` hook: the input object `cls` for `value`."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _plan(cls, context)
    nones, fields = plan
    kwargs: dict[str, Any] = dict(nones)
    for name, python_name, kind in fields:
        if name not in value:
            continue
        given = value[name]
        if kind is SAME or given is None or given is UNSET:
            kwargs[python_name] = given
        elif kind is LIST:
            kwargs[python_name] = list(given)
        else:
            kwargs[python_name] = convert_argument(
                given,
                kind,
                context.scalar_registry,
                context.config,
                context.info,
                path=(*context.path, name),
            )
    return cls(**kwargs)


_PLANS: dict[type, tuple[dict[str, None], Plan]] = {}


def install(schema: Any) -> int:
    """Give every plain input type of `schema` (a strawberry.Schema) `from_input`; returns
    how many. Generic inputs and those with a hook of their own keep Strawberry's way."""
    count = 0
    for concrete in schema.schema_converter.type_map.values():
        definition = concrete.definition
        if (
            getattr(definition, "is_input", False)
            and not definition.is_graphql_generic
            and definition.from_input is None
            and not getattr(definition, "type_var_map", None)
        ):
            definition.from_input = from_input
            count += 1
    return count
