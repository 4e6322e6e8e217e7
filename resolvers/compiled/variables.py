"""Variable values the planner may not read: what lets one compiled statement serve every
request whose variables have the same shape (server/compiled.py caches it so).

Before a traced compile, each String or ID variable leaf the request sends (a customer's
global ID, a search prefix, a cursor) is wrapped in a `Var`: opaque to the planner, which
can only hand it to `Builder.recorded`. There a producer (decode the ID, print the
filter's clauses, the cursor's keyset predicate) reads the real value and appends its
parameters; the producer, its inputs and its result (the SQL text, and any fact the
planner branches on, such as a global ID's type) are recorded as a `Segment`. Any other
use of a `Var` (str(), ==, `if v`, .strip(), an attribute) raises `RawRead`: that leaf is
then read by value, and its value keys the statement as before.

A later request re-runs each segment's producer on its own values (`Segment.replay`); the
statement serves it only if every producer answers the same result and parameter count,
so the SQL text the planner built around them is the text it would build again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    type_from_ast,
)

Path = tuple[str | int, ...]
# The scalars whose coercion of a JSON string is the string itself: a wrapped leaf and
# the request's raw value are then the same value.
TRACED_SCALARS = frozenset(("String", "ID"))


class RawRead(BaseException):
    """The planner used a `Var` other than through `Builder.recorded`. A BaseException, so
    no `except Exception` on the way swallows it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.path = path


class Mismatch(Exception):
    """A request's values do not fit a statement's segments: compile for them."""


def _read(self: Var, *_args: Any, **_kwargs: Any) -> Any:
    raise RawRead(object.__getattribute__(self, "_Var__path"))


class Var:
    """A traced variable leaf: its value is reachable only through `real` (which
    `Builder.recorded` calls); every other use raises RawRead."""

    __slots__ = ("__path", "__value")

    def __init__(self, path: Path, value: str) -> None:
        object.__setattr__(self, "_Var__path", path)
        object.__setattr__(self, "_Var__value", value)

    def real(self, paths: set[Path]) -> str:
        paths.add(object.__getattribute__(self, "_Var__path"))
        return object.__getattribute__(self, "_Var__value")

    @property
    def path(self) -> Path:
        return object.__getattribute__(self, "_Var__path")

    __getattr__ = _read
    __setattr__ = _read
    __str__ = __repr__ = __format__ = __bytes__ = _read
    __bool__ = __len__ = __iter__ = __contains__ = __getitem__ = _read
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _read  # type: ignore[assignment]
    __add__ = __radd__ = __mul__ = __rmul__ = __mod__ = __rmod__ = _read
    __int__ = __float__ = __index__ = __complex__ = _read
    __reduce__ = __reduce_ex__ = __copy__ = __deepcopy__ = _read


def unwrap(value: Any, paths: set[Path]) -> Any:
    """`value` with every Var replaced by its real value (their paths added to `paths`)."""
    if type(value) is Var:
        return value.real(paths)
    if type(value) is dict:
        return {k: unwrap(v, paths) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(unwrap(v, paths) for v in value)
    return value


def substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    """`value` with every Var replaced by the request's string at the Var's path."""
    if type(value) is Var:
        found = at(variables, value.path)
        if type(found) is not str:
            raise Mismatch(value.path)
        return found
    if type(value) is dict:
        return {k: substitute(v, variables) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(substitute(v, variables) for v in value)
    return value


_ABSENT = object()


def at(variables: Any, path: Path) -> Any:
    """The raw (JSON) variable value at `path`, or an absent marker."""
    value = variables
    for step in path:
        if isinstance(step, int):
            if type(value) is not list or not 0 <= step < len(value):
                return _ABSENT
        elif type(value) is not dict or step not in value:
            return _ABSENT
        value = value[step]
    return value


def traced(
    schema, definitions, coerced: Any, raw: Mapping[str, Any], skip: set[Path]
) -> tuple[Any, frozenset[Path]]:
    """The coerced variables (graphql-core's VariableValues) with each String/ID leaf the
    request sent as a string (and not in `skip`) wrapped in a Var; and the wrapped paths."""
    wrapped: set[Path] = set()

    def walk(value: Any, gtype: Any, raw_value: Any, path: Path) -> Any:
        if isinstance(gtype, GraphQLNonNull):
            gtype = gtype.of_type
        if isinstance(gtype, GraphQLScalarType):
            if (
                gtype.name in TRACED_SCALARS
                and type(value) is str
                and type(raw_value) is str
                and value == raw_value
                and path not in skip
            ):
                wrapped.add(path)
                return Var(path, value)
            return value
        if isinstance(gtype, GraphQLList) and type(value) is list and type(raw_value) is list:
            if len(value) != len(raw_value):
                return value
            pairs = enumerate(zip(value, raw_value, strict=True))
            return [walk(v, gtype.of_type, r, (*path, i)) for i, (v, r) in pairs]
        if isinstance(gtype, GraphQLInputObjectType) and type(value) is dict:
            if type(raw_value) is not dict:
                return value
            out = dict(value)
            for name, fdef in gtype.fields.items():
                key = fdef.out_name or name
                if key in out and name in raw_value:
                    out[key] = walk(out[key], fdef.type, raw_value[name], (*path, name))
            return out
        return value

    values = dict(coerced.coerced)
    for definition in definitions or ():
        name = definition.variable.name.value
        if name in values and name in raw:
            gtype = type_from_ast(schema, definition.type)
            values[name] = walk(values[name], gtype, raw[name], (name,))
    return coerced._replace(coerced=values), frozenset(wrapped)


@dataclass(slots=True)
class Trace:
    """What a traced compile's producers read: every variable path (`read`), and those
    whose producer refused the value or whose root field fell back (`dropped`): the
    outcome depended on those values, so they key the statement by value."""

    read: set[Path] = field(default_factory=set)
    dropped: set[Path] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Segment:
    """A producer run on variable values during the compile: it appended the parameters
    [start, end) and returned `result`, which the planner built the SQL around."""

    start: int
    end: int
    produce: Callable[..., Any]
    inputs: tuple[Any, ...]  # with the Vars, substituted per request
    result: Any
    paths: frozenset[Path]
    viewer_slots: tuple[int, ...] = ()

    def replay(self, replayer_type: Callable[[int], Any], variables: Mapping[str, Any]) -> list:
        """This segment's parameters for the request's `variables`; Mismatch unless the
        producer answers as it did when the statement was compiled."""
        inputs = substitute(self.inputs, variables)
        replayer = replayer_type(self.start)
        try:
            result = self.produce(replayer, *inputs)
        except Exception as exc:  # bad input now (a malformed ID): compile for it
            raise Mismatch(self.paths) from exc
        if (
            result != self.result
            or len(replayer.params) != self.end
            or tuple(replayer.viewer_slots) != self.viewer_slots
        ):
            raise Mismatch(self.paths)
        return replayer.params[self.start :]


def replaced(variables: Any, path: Path, value: Any) -> Any:
    """A copy of `variables` with `value` at `path` (only the containers on the way are
    copied)."""
    if not path:
        return value
    step, rest = path[0], path[1:]
    out = list(variables) if type(variables) is list else dict(variables)
    out[step] = replaced(variables[step], rest, value)
    return out
