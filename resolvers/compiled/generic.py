"""One statement per variable shape: compile with the String/ID values traced
(resolvers/compiled/variables.py), then prove the statement serves other values before
anyone reuses it.

`compile_reusable` returns the statement and the variable paths (`generic`) whose string
values it serves beyond this request's: server/compiled.py keys it by the other
variables' values only, and `Statement.rebound` computes a later request's parameters.

Proof, on the first compile of a shape (three compiles instead of one, once):
1. the traced compile equals an ordinary compile on the real values (SQL text,
   parameters, slots): tracing changed nothing;
2. each generic value is perturbed into another of the same shape (another key of the
   same node type, another cursor of the same columns, another prefix), chosen so that
   the segments replay; an ordinary compile on the perturbed values must print the same
   SQL text, its parameters those the segments computed, the others unchanged.
A value that cannot be perturbed is read by value instead; a failed proof keys the
whole statement by value (as before this module) and logs it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import string
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from graphql.execution.values import get_variable_values

from resolvers.compiled import compile_operation
from resolvers.compiled.statement import NotCompilable, Statement
from resolvers.compiled.variables import (
    Mismatch,
    Path,
    RawRead,
    Trace,
    at,
    replaced,
    traced,
)
from resolvers.errors import CodedError
from resolvers.global_ids import decode_global_id
from resolvers.viewer import Viewer

log = logging.getLogger(__name__)

NO_PATHS: frozenset[Path] = frozenset()


@dataclass(frozen=True, slots=True)
class Compiled:
    statement: Statement | None  # None: the operation does not compile
    generic: frozenset[Path]  # variable paths it holds for any string there


def compile_reusable(
    schema,
    document,
    operation,
    coerced: dict[str, Any],
    variables: dict[str, Any],
    viewer: Viewer,
    *,
    search_cap: int = 400,
) -> Compiled:
    """The statement for `coerced` (the request's `variables`, coerced), reusable for the
    values at its `generic` paths when the proof holds; else for these values only."""

    def plain(values: dict[str, Any]) -> Statement:
        return compile_operation(schema, document, operation, values, viewer, search_cap=search_cap)

    skip: set[Path] = set()
    definitions = operation.variable_definitions
    while True:
        values, wrapped = traced(schema, definitions, coerced, variables, skip)
        if not wrapped:
            break
        trace = Trace()
        try:
            statement = compile_operation(
                schema, document, operation, values, viewer, search_cap=search_cap, trace=trace
            )
        except RawRead as read:  # used outside a producer: keyed by value from now on
            skip.add(read.path)
            continue
        except NotCompilable:
            try:
                plain(coerced)
            except NotCompilable:  # as traced: no value it did not read matters
                return Compiled(None, wrapped - trace.read)
            log.warning("a traced compile refused what compiles; keyed by value")
            break
        generic = wrapped - trace.dropped
        proof = _proof(statement, generic, variables, plain, schema, definitions)
        if isinstance(proof, tuple):  # a value that cannot be perturbed: by value
            skip.add(proof)
            continue
        if proof:
            return Compiled(replace(statement, generic=generic), generic)
        log.warning("a compiled statement failed its proof for other values; keyed by value")
        break
    try:
        return Compiled(plain(coerced), NO_PATHS)
    except NotCompilable:
        return Compiled(None, NO_PATHS)


def _proof(statement, generic, variables, plain, schema, definitions) -> bool | Path:
    """True when the statement holds for other values of its generic paths; a path whose
    value no perturbation fits; False when an ordinary compile disagrees."""
    coerced = get_variable_values(schema, definitions or (), variables)
    try:
        if isinstance(coerced, list) or not same(plain(coerced), statement):
            return False
    except NotCompilable:
        return False
    perturbed = variables
    for path in sorted(generic, key=repr):
        segments = [s for s in statement.segments if path in s.paths]
        before = _params(statement, perturbed)
        for candidate in _candidates(at(variables, path)):
            trial = replaced(perturbed, path, candidate)
            params = _params(statement, trial)
            if params is None:  # the segments refuse it, or print other SQL
                continue
            if not segments or any(
                params[s.start : s.end] != before[s.start : s.end] for s in segments
            ):
                perturbed = trial
                break
        else:
            return path
    coerced = get_variable_values(schema, definitions or (), perturbed)
    if isinstance(coerced, list):
        return False
    try:
        return same(plain(coerced), statement.rebound(perturbed))
    except (NotCompilable, Mismatch):
        return False


def _params(statement: Statement, variables: dict[str, Any]) -> tuple | None:
    try:
        return statement.rebound(variables).params
    except Mismatch:
        return None


def same(a: Statement, b: Statement) -> bool:
    """The same SQL, parameters (type and value) and slots."""
    return (
        a.sql == b.sql
        and len(a.params) == len(b.params)
        and all(type(x) is type(y) and x == y for x, y in zip(a.params, b.params, strict=True))
        and (a.viewer_slot, a.today_slot, a.viewer_slots)
        == (b.viewer_slot, b.today_slot, b.viewer_slots)
        and (a.keys, a.rest, a.order) == (b.keys, b.rest, b.order)
    )


# ---------------------------------------------------------------------------------------
# Perturbations: other values of the same shape


def _candidates(value: str) -> Iterator[str]:
    """Other strings likely to be read the same way as `value`: first by what it looks
    like (a global ID, a cursor), then by changing a character in place."""
    try:
        type_name, pk = decode_global_id(value, "id")
    except CodedError:
        pass
    else:
        other = pk + 1 if pk < 2**63 - 1 else pk - 1
        yield base64.b64encode(f"{type_name}:{other}".encode()).decode()
    cursor = _cursor(value)
    if cursor is not None:
        for keep_text in (True, False):
            yield (
                base64.urlsafe_b64encode(orjson.dumps([_other(v, keep_text) for v in cursor]))
                .decode()
                .rstrip("=")
            )
    yield value + "x"
    for i in {len(value) - 1, 0} if value else ():
        for c in _same_class(value[i]):
            if c != value[i]:
                yield value[:i] + c + value[i + 1 :]


def _same_class(c: str) -> str:
    for alphabet in (string.ascii_uppercase, string.ascii_lowercase, string.digits):
        if c in alphabet:
            return alphabet
    return "x"


def _cursor(value: str) -> list | None:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return None
    return raw if isinstance(raw, list) and raw else None


def _other(value: Any, keep_text: bool) -> Any:
    """Another cursor value of the same kind: integers and decimals moved by one, text
    extended (unless `keep_text`), timestamps and nulls kept."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value + 1 if value < 2**31 - 1 else value - 1
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
            return value
        except ValueError:
            pass
        try:
            return str(Decimal(value) + 1)
        except InvalidOperation:
            return value if keep_text else value + "x"
    return value
