"""Shared pieces of the typed schema: row -> type mapping, global IDs, Money."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

import strawberry
from strawberry import relay
from strawberry.extensions import FieldExtension
from strawberry.types import Info
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.lazy_type import LazyType
from strawberry.utils.str_converters import to_camel_case

from resolvers.context import viewer_of
from resolvers.errors import BadUserInput
from resolvers.global_ids import node_key

T = TypeVar("T")


@cache
def columns_of(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, column) pairs of a type: the attribute's name unless `__columns__` renames it.

    This is the one declaration of which column backs which field: `from_row` fills a type
    from it on the dataloader path, and the compiled path prints the same columns
    (resolvers/compiled/fields.scalar_columns).
    """
    renames = getattr(cls, "__columns__", {})
    return tuple((f.name, renames.get(f.name, f.name)) for f in dataclasses.fields(cls) if f.init)


def from_row(cls: type[T], row: Any) -> T:
    """Build a type from a row whose columns carry the fields' names."""
    mapping = row._mapping
    return cls(**{attr: mapping[col] for attr, col in columns_of(cls) if col in mapping})


def encode_id(type_name: str, pk: int) -> strawberry.ID:
    """The global ID of an object that is not a Relay node (a job): `decode_id` reads it."""
    return strawberry.ID(str(relay.GlobalID(type_name, str(pk))))


@strawberry.type(description="An exact amount of money in one ISO-4217 currency.")
class Money:
    amount: Decimal
    currency: str


def node_resolver(batch, *args):
    """`resolve_nodes` for relay `node`/`nodes`: the type's scoped by-id loader, in order."""

    async def resolve_nodes(cls, *, info, node_ids, required: bool = False):
        viewer_of(info)  # node/nodes are for signed-in users only, like every root field
        keys = [node_key(i, "id") for i in node_ids]
        rows = await info.context.loader(batch, *args).load_many(keys)
        return [from_row(cls, r) if r is not None else None for r in rows]

    return classmethod(resolve_nodes)


class NodeIds(FieldExtension):
    """Relay `node`/`nodes`: every ID checked before relay resolves it. Its key must be a
    bigint (the loaders compare it with one) and its type an object type that is a Node:
    relay would hand `Node:1` to the interface's own `resolve_nodes`, which raises."""

    def resolve(self, next_: Callable, source: Any, info: Info, **kwargs: Any) -> Any:
        self._check(info, kwargs)
        return next_(source, info, **kwargs)

    async def resolve_async(self, next_: Callable, source: Any, info: Info, **kwargs: Any):
        self._check(info, kwargs)
        result = next_(source, info, **kwargs)
        return await result if inspect.isawaitable(result) else result

    @staticmethod
    def _check(info: Info, kwargs: dict[str, Any]) -> None:
        for argument in ("id", "ids"):
            given = kwargs.get(argument)
            for gid in given if isinstance(given, list) else [given] if given else []:
                node_key(gid.node_id, argument, str(gid))
                if not _is_node_type(info, gid.type_name):
                    raise BadUserInput(
                        f"'{argument}' is not a valid global ID: {gid.type_name!r} is no"
                        " object type with an ID.",
                        argument=argument,
                    )


def _is_node_type(info: Info, type_name: str) -> bool:
    definition = info.schema.get_type_by_name(type_name)
    if not isinstance(definition, StrawberryObjectDefinition) or definition.is_interface:
        return False
    origin = definition.origin
    if isinstance(origin, LazyType):
        origin = origin.resolve_type()
    return isinstance(origin, type) and issubclass(origin, relay.Node)


_TYPES: dict[str, type] = {}


def registered(cls: type[T]) -> type[T]:
    """Register a type by name so related types can build it without circular imports."""
    _TYPES[cls.__name__] = cls
    return cls


def build(type_name: str, row: Any) -> Any:
    """Row -> instance of a registered type, or None for a missing (or out-of-scope) row."""
    return None if row is None else from_row(_TYPES[type_name], row)


def build_all(type_name: str, rows: Any) -> list:
    cls = _TYPES[type_name]
    return [from_row(cls, r) for r in rows]


def money_field(column: str, description: str, currency: str = "currency"):
    """A `Money` field over a private numeric attribute and the row's currency.

    The GraphQL field takes the column's name: `total` -> `total: Money!`.
    """

    def resolve(self) -> Money:
        return Money(amount=getattr(self, column), currency=getattr(self, currency))

    return strawberry.field(resolve, name=to_camel_case(column), description=description)
