"""Strawberry input objects to and from their GraphQL JSON (camelCase keys, enum names).

Two callers need this outside Strawberry's own argument coercion: the compiled read path,
which gets graphql-core's argument dicts (nested inputs stay dicts), and saved searches,
which store a `CustomerFilter` as JSON and rebuild it when run. Both walk the input's
Strawberry definition (`__strawberry_definition__`), so a new input field needs nothing here.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from strawberry.types.base import StrawberryList, StrawberryOptional
from strawberry.types.enum import StrawberryEnumDefinition
from strawberry.utils.str_converters import to_camel_case

T = TypeVar("T")


def _fields(cls: type) -> list[tuple[str, str, Any]]:
    return [
        (f.python_name, f.graphql_name or to_camel_case(f.python_name), f.type)
        for f in cls.__strawberry_definition__.fields
    ]


def _unwrap(kind: Any) -> Any:
    return kind.of_type if isinstance(kind, StrawberryOptional) else kind


def _value_in(kind: Any, value: Any) -> Any:
    kind = _unwrap(kind)
    if value is None:
        return None
    if isinstance(kind, StrawberryList):
        return [_value_in(kind.of_type, v) for v in value]
    if isinstance(kind, StrawberryEnumDefinition):
        return value if isinstance(value, kind.wrapped_cls) else kind.wrapped_cls[value]
    if hasattr(kind, "__strawberry_definition__"):
        return value if isinstance(value, kind) else from_json(kind, value)
    return value


def from_json(cls: type[T], raw: dict[str, Any]) -> T:
    """An input object from GraphQL-shaped values (keys as the schema prints them);
    absent keys take the input's defaults. Unknown keys are a ValueError."""
    unknown = set(raw) - {name for _, name, _ in _fields(cls)}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    kwargs = {
        python: _value_in(kind, raw[name]) for python, name, kind in _fields(cls) if name in raw
    }
    return cls(**kwargs)


def _value_out(value: Any) -> Any:
    if isinstance(value, list):
        return [_value_out(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.name
    if hasattr(value, "__strawberry_definition__"):
        return to_json(value)
    return value


def to_json(obj: Any) -> dict[str, Any]:
    """The GraphQL JSON of an input object: the fields set to other than their default."""
    defaults = {f.python_name: f.default for f in type(obj).__strawberry_definition__.fields}
    return {
        name: _value_out(value)
        for python, name, _ in _fields(type(obj))
        if (value := getattr(obj, python)) is not None and value != defaults[python]
    }
