"""The ASGI app: Starlette routes, GraphQL (with GraphiQL) at /graphql, /healthz."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET

from resolvers.context import Context
from schema import schema
from server.auth import viewer_for_token
from server.compiled import AUTH_KEY, CompiledGraphQL
from server.database import make_engine
from server.limits import BodyGuard
from server.notify import TimelineHub
from server.runtime import open_database_async
from server.settings import Settings, get_settings

log = logging.getLogger(__name__)


class GraphQLApp(GraphQL):
    def __init__(self, schema, engine_ref: dict, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=False,
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            connection_init_wait_timeout=timedelta(seconds=10),
        )
        self.max_subscriptions_per_connection = settings.subscriptions_per_connection

        self.engine_ref = engine_ref
        self.settings = settings

    def should_render_graphql_ide(self, request) -> bool:
        # A browser opening a shared GraphiQL link (/graphql?query=…) gets GraphiQL, not JSON.
        accept = request.headers.get("accept", "")
        return request.method == "GET" and (
            "text/html" in accept or super().should_render_graphql_ide(request)
        )

    def hub(self) -> TimelineHub:
        hub = self.engine_ref.get("hub")
        if hub is None:
            hub = self.engine_ref["hub"] = TimelineHub(
                self.engine_ref["engine"],
                max_pending=self.settings.subscription_max_pending,
                max_per_user=self.settings.subscriptions_per_user,
            )
        return hub

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        ctx = Context(
            engine=self.engine_ref["engine"],
            settings=self.settings,
            request=request,
            hub=self.hub(),
        )
        if isinstance(request, WebSocket):
            return ctx  # authenticated by connection_init (on_ws_connect)
        known = request.scope.get(AUTH_KEY)  # the compiled path already looked the token up
        if known is not None:
            viewer, ctx.token_error = known
            if viewer is not None:
                ctx.viewer = viewer
            return ctx
        await authenticate(ctx, request.headers.get("authorization", ""))
        return ctx

    async def on_ws_connect(self, context: Context):
        """graphql-transport-ws: the token travels in the connection_init payload."""
        params = context.connection_params or {}
        header = params.get("authorization") or params.get("Authorization") or ""
        await authenticate(context, str(header))
        if context.token_error and header:
            raise ConnectionRejectionError({"message": context.token_error})
        return UNSET

    def encode_json(self, data: object) -> str:
        # Text, not bytes: WebSocket clients (graphql-ws in GraphiQL) need text frames.
        return orjson.dumps(data).decode()


async def authenticate(ctx: Context, header: str) -> None:
    """Resolve `Bearer <token>` into ctx.viewer, or note why it failed in ctx.token_error."""
    scheme, _, raw = header.partition(" ")
    if header and scheme.lower() != "bearer":
        ctx.token_error = "Use 'Authorization: Bearer <token>'."
        return
    viewer = await viewer_for_token(ctx.engine, raw.strip() or None)
    if viewer is None:
        ctx.token_error = "The token is unknown, expired or revoked."
    else:
        ctx.viewer = viewer


def create_app(engine: AsyncEngine | None = None, settings: Settings | None = None) -> Starlette:
    """Build the app. Given no engine, the lifespan opens the configured database itself."""
    settings = settings or get_settings()
    engine_ref: dict[str, Any] = {"engine": engine}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if engine_ref["engine"] is not None:
            yield
            return
        db = await open_database_async(settings)
        engine_ref["engine"] = make_engine(db.app_url, pool_size=settings.pool_size)
        try:
            yield
        finally:
            if engine_ref.get("hub") is not None:
                await engine_ref["hub"].close()
            await engine_ref["engine"].dispose()
            db.stop()

    async def healthz(request: Request) -> JSONResponse:
        try:
            async with engine_ref["engine"].connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            log.exception("health check failed")
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    graphql = GraphQLApp(schema, engine_ref, settings)
    app = Starlette(
        routes=[
            Route(
                "/graphql", CompiledGraphQL(graphql, engine_ref, settings), methods=["GET", "POST"]
            ),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    if settings.gzip_level:
        # A nested customer page is hundreds of KB of JSON, a few dozen gzipped: what a
        # mobile app on a slow network waits for. Only clients that ask get it.
        app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=settings.gzip_level)
    app.state.schema = schema
    app.state.engine_ref = engine_ref
    return app
