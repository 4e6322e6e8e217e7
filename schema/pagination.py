"""Relay connections: edges with cursors, pageInfo, and a lazily counted totalCount."""

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import strawberry
from strawberry import relay

from resolvers.pagination import Page

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
