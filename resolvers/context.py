"""Per-request context: engine, viewer, and the request's dataloaders (never shared)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiodataloader import DataLoader
from sqlalchemy import Executable, Row
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.types import Info

from resolvers.errors import Unauthenticated
from resolvers.rls import set_viewer
from resolvers.viewer import ANONYMOUS, Viewer

BatchFn = Callable[..., Awaitable[Sequence[Any]]]


class Settings(Protocol):
    """What resolvers read of the service's settings: server/settings.Settings has these
    (server/ builds the Context; resolvers never import it)."""

    search_cap: int
    max_upload_bytes: int
    debug: bool


@dataclass
class Context:
    engine: AsyncEngine
    settings: Settings
    viewer: Viewer = ANONYMOUS
    request: Any = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    token_error: str | None = None  # a bad token is reported only where a viewer is needed
    hub: Any = None  # server.notify.TimelineHub: live timeline fan-out of this worker
    connection_params: dict | None = None  # graphql-transport-ws connection_init payload
    # Read replicas (server/replicas.py): a replica for replaying a subscription's old
    # events, or None (the primary: `engine`).
    read_replica: Callable[[], AsyncEngine | None] | None = None
    _loaders: dict[tuple, DataLoader] = field(default_factory=dict)

    def loader(self, batch: BatchFn, *args: Any) -> DataLoader:
        """One DataLoader per (batch function, arguments) per request.

        `batch(ctx, *args, keys)` returns one result per key, in key order. Arguments such as
        `first`/`after` are part of the identity so differently paged children never mix.
        """
        key = (batch, args)
        loader = self._loaders.get(key)
        if loader is None:
            loader = DataLoader(functools.partial(batch, self, *args))
            self._loaders[key] = loader
        return loader

    def fresh(self, engine: AsyncEngine | None = None) -> Context:
        """Same viewer, empty loader caches: a long-lived subscription reads current data
        (on `engine`, a read replica, if given)."""
        return Context(
            engine=engine or self.engine,
            settings=self.settings,
            viewer=self.viewer,
            request=self.request,
            hub=self.hub,
        )

    async def rows(self, stmt: Executable) -> Sequence[Row]:
        # A pooled connection per statement: concurrent loaders never share one asyncpg
        # connection (which cannot run two queries at once). The transaction SQLAlchemy
        # begins (and rolls back on release) first sets the viewer for row-level security.
        async with self.engine.connect() as conn:
            await set_viewer(conn, self.viewer)
            return (await conn.execute(stmt)).all()


def ctx_of(info: Info) -> Context:
    return info.context


def viewer_of(info: Info) -> Viewer:
    ctx = info.context
    if ctx.token_error:
        raise Unauthenticated(ctx.token_error)
    if not ctx.viewer.is_authenticated:
        raise Unauthenticated("Sign in: send 'Authorization: Bearer <token>'.")
    return ctx.viewer
