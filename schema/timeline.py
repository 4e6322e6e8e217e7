"""Timeline events: everything important that happened to a customer."""

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from starlette.websockets import WebSocket
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import users as user_q
from resolvers.children import child_by_id
from resolvers.context import viewer_of
from resolvers.errors import NotFound, RateLimited, Unavailable
from resolvers.global_ids import decode_id
from resolvers.pagination import decode_cursor, encode_cursor
from resolvers.timeline import (
    CLOSE_RECONNECT,
    NEWEST_FIRST,
    ListenLost,
    SlowConsumerError,
    TooManySubscriptions,
    follow,
    latest_event_id,
    timeline_event,
)
from schema.base import build, node_resolver, registered
from schema.users import User

if TYPE_CHECKING:
    from schema.customers import Customer


@registered
@strawberry.type(description="Something that happened to a customer, recorded with the change.")
class TimelineEvent(relay.Node):
    id: relay.NodeID[int]
    kind: str = strawberry.field(description="e.g. CUSTOMER_CREATED, ORDER_PLACED, NOTE_ADDED.")
    occurred_at: datetime
    summary: str
    data: JSON
    customer_id: strawberry.Private[int]
    actor_id: strawberry.Private[int | None]

    resolve_nodes = node_resolver(child_by_id, timeline_event)

    @strawberry.field(description="Position in the timeline: pass it as `since` to resume.")
    def cursor(self) -> str:
        return encode_cursor(NEWEST_FIRST, self)

    @strawberry.field(description="Who did it; null for the system or an unknown actor.")
    async def actor(self, info: Info) -> User | None:
        return build("User", await user_q.ACTOR.load(info.context, self.actor_id))

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated["Customer", strawberry.lazy("schema.customers")] | None:
        return build("Customer", await customer_q.OWNER.load(info.context, self.customer_id))


@strawberry.input
class TimelineEventFilter:
    kinds: list[str] | None = strawberry.field(default=None, description="e.g. ORDER_PLACED")
    sales_channels: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only customers in any of these sales channels."
    )


def _since(since: str | None) -> int | None:
    if since is None:
        return None
    return decode_cursor(NEWEST_FIRST, since, "since")[0]


async def _live(info: Info, since: str | None, **filters) -> AsyncGenerator[TimelineEvent, None]:
    """Replay events after `since` (or start now), then live ones, through the viewer's scope."""
    viewer = viewer_of(info)
    ctx = info.context
    after = _since(since)
    try:
        async with ctx.hub.subscribe(viewer.user_id, filters.get("customer_id")) as sub:
            start = after if after is not None else await latest_event_id(ctx)
            async for row in follow(ctx, sub, start, replay=after is not None, **filters):
                yield build("TimelineEvent", row)
    except TooManySubscriptions as exc:
        raise RateLimited(str(exc)) from exc
    except SlowConsumerError as exc:
        websocket = ctx.request
        if isinstance(websocket, WebSocket):
            # 1013 "try again later": the client reconnects and resumes with `since`.
            await websocket.close(code=1013, reason=str(exc)[:120])
        raise RateLimited(str(exc)) from exc
    except ListenLost as exc:
        # The database stayed out of reach (server.notify): every timeline subscription of
        # this worker is deaf, so the socket closes and the client resumes with `since`.
        if isinstance(ctx.request, WebSocket):
            await ctx.request.close(code=CLOSE_RECONNECT, reason=str(exc)[:120])
        raise Unavailable(str(exc)) from exc


@strawberry.type
class TimelineSubscriptions:
    @strawberry.subscription(
        description="A customer's timeline as it happens. `since` (an event `cursor`) first "
        "replays every event after it, in order, then continues live without gaps or repeats."
    )
    async def customer_timeline(
        self, info: Info, customer_id: strawberry.ID, since: str | None = None
    ) -> AsyncGenerator[TimelineEvent, None]:
        viewer_of(info)
        pk = decode_id(customer_id, "Customer", "customerId")
        if await info.context.loader(customer_q.customers_by_id).load(pk) is None:
            raise NotFound("No such customer.", argument="customerId")
        async for event in _live(info, since, customer_id=pk):
            yield event

    @strawberry.subscription(
        description="Events of every customer you may see, optionally filtered by kind or "
        "sales channel; `since` replays as for customerTimeline."
    )
    async def timeline_events(
        self, info: Info, filter: TimelineEventFilter | None = None, since: str | None = None
    ) -> AsyncGenerator[TimelineEvent, None]:
        filter = filter or TimelineEventFilter()
        channels = [
            decode_id(c, "SalesChannel", "salesChannels") for c in filter.sales_channels or []
        ]
        async for event in _live(info, since, kinds=filter.kinds, channel_ids=channels):
            yield event
