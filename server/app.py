"""The ASGI app: Starlette routes, GraphQL (with GraphiQL) at /graphql, /healthz."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from strawberry.asgi import GraphQL

from resolvers.context import Context
from schema import schema
from server.auth import viewer_for_token
from server.compiled import AUTH_KEY, CompiledGraphQL
from server.database import make_engine
from server.runtime import open_database_async
from server.settings import Settings, get_settings

log = logging.getLogger(__name__)


class GraphQLApp(GraphQL):
    def __init__(self, schema, engine_ref: dict, settings: Settings) -> None:
        super().__init__(schema, graphql_ide="graphiql", allow_queries_via_get=False)
        self.engine_ref = engine_ref
        self.settings = settings

    async def get_context(self, request: Request, response: Any) -> Context:
        engine: AsyncEngine = self.engine_ref["engine"]
        header = request.headers.get("authorization", "")
        scheme, _, raw = header.partition(" ")
        ctx = Context(engine=engine, settings=self.settings, request=request)
        known = request.scope.get(AUTH_KEY)  # the compiled path already looked the token up
        if known is not None:
            viewer, ctx.token_error = known
            if viewer is not None:
                ctx.viewer = viewer
            return ctx
        if header and scheme.lower() != "bearer":
            ctx.token_error = "Use 'Authorization: Bearer <token>'."
            return ctx
        viewer = await viewer_for_token(engine, raw.strip() or None)
        if viewer is None:
            ctx.token_error = "The token is unknown, expired or revoked."
        else:
            ctx.viewer = viewer
        return ctx

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


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
        engine_ref["engine"] = make_engine(db.url, pool_size=settings.pool_size)
        try:
            yield
        finally:
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
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
    app.state.schema = schema
    app.state.engine_ref = engine_ref
    return app
