"""Tags: the catalogue with customer counts, and the filter input (the field itself is
`Customer.tags`)."""

from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import tags as q
from resolvers.context import viewer_of
from resolvers.errors import BadUserInput


@strawberry.type(description="A tag and how many of your live customers carry it.")
class TagCount:
    name: str
    customer_count: int


@strawberry.input(
    description="Tags compare without regard to case. Lists combine with AND; an unknown "
    "tag matches no one in `any`/`all` and excludes no one in `none`."
)
class TagFilter:
    any: list[str] | None = strawberry.field(default=None, description="At least one of these.")
    all: list[str] | None = strawberry.field(default=None, description="Every one of these.")
    none: list[str] | None = strawberry.field(default=None, description="None of these.")

    def criteria(self) -> q.TagFilter:
        return q.TagFilter(any=self.any or [], all=self.all or [], none=self.none or [])


@strawberry.type
class TagQueries:
    @strawberry.field(
        description="Tags in use, by name, with how many customers carry each (a sales rep "
        f"counts their own customers). At most {q.MAX_LISTED}."
    )
    async def tags(
        self,
        info: Info,
        prefix: Annotated[
            str | None, strawberry.argument(description="Only tags starting with this (any case).")
        ] = None,
        first: int = 100,
    ) -> list[TagCount]:
        viewer_of(info)
        if not 0 <= first <= q.MAX_LISTED:
            raise BadUserInput(f"'first' must be 0 to {q.MAX_LISTED}.", argument="first")
        rows = await q.tag_counts(info.context, prefix, first)
        return [TagCount(name=name, customer_count=n) for name, n in rows]
