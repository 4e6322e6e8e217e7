"""Relay connections: edges with cursors, pageInfo, and a lazily counted totalCount."""

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import strawberry
from strawberry import relay
from strawberry.annotation import StrawberryAnnotation
from strawberry.extensions import FieldExtension
from strawberry.types import Info
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.field import StrawberryField

from resolvers.context import viewer_of
from resolvers.pagination import ROOT_PAGING, Page, Paging

NodeT = TypeVar("NodeT")


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: relay.PageInfo
    # totalCount costs a COUNT; it runs only when the client selects it.
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Number of items in the whole list, across all pages.")
    async def total_count(self) -> int:
        return await self.count()

    @strawberry.field(description="The nodes of this page, without edges.")
    def nodes(self) -> list[NodeT]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(
        cls,
        page: Page,
        make: Callable[[object], NodeT],
        count: Callable[[], Awaitable[int]],
    ) -> "Connection[NodeT]":
        edges = [Edge(cursor=page.cursor(row), node=make(row)) for row in page.rows]
        info = relay.PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return cls(edges=edges, page_info=info, count=count)


class PageArguments(FieldExtension):
    """first/after (and last/before) of a connection field, declared once: the resolver
    takes `page: PageArgs`, which becomes these arguments at its place, validated
    (`Paging.page`) before the resolver runs. The compiled path reads `paging` from the
    field's Strawberry definition."""

    def __init__(self, paging: Paging) -> None:
        super().__init__()
        self.paging = paging

    def apply(self, field: StrawberryField) -> None:
        arguments: list[StrawberryArgument] = []
        for argument in field.arguments:
            if argument.python_name != "page":
                arguments.append(argument)
                continue
            for name in self.paging.names:
                kind = int | None if name in ("first", "last") else str | None
                arguments.append(
                    StrawberryArgument(
                        python_name=name,
                        graphql_name=None,
                        type_annotation=StrawberryAnnotation(kind),
                        default=None,
                    )
                )
        field.arguments = arguments

    def _paged(self, info: Info, kwargs: dict[str, Any]) -> dict[str, Any]:
        viewer_of(info)  # signed in first: an anonymous request learns nothing of its input
        page = self.paging.page(kwargs)
        rest = {k: v for k, v in kwargs.items() if k not in self.paging.names}
        return {**rest, "page": page}

    def resolve(self, next_: Callable, source: Any, info: Info, **kwargs: Any) -> Any:
        return next_(source, info, **self._paged(info, kwargs))

    async def resolve_async(self, next_: Callable, source: Any, info: Info, **kwargs: Any):
        result = next_(source, info, **self._paged(info, kwargs))
        return await result if inspect.isawaitable(result) else result


def connection(description: str | None = None, paging: Paging = ROOT_PAGING) -> Any:
    """`@strawberry.field` for a connection: its resolver takes `page: PageArgs`."""
    return strawberry.field(description=description, extensions=[PageArguments(paging)])
