"""The ASGI app: Starlette routes, GraphQL (with GraphiQL) at /graphql, /healthz, and for
those who operate it /livez, /readyz and /metrics (server/health.py, server/metrics.py)."""

from __future__ import annotations

import asyncio
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
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET

from resolvers import bulk_updates, exports, import_jobs, telemetry
from resolvers.context import Context
from resolvers.errors import CodedError, ErrorCode, ServiceUnavailable, is_unavailable
from resolvers.tokens import (
    NOT_BEARER,
    UNKNOWN_TOKEN,
    ViewerCache,
    bearer,
    viewer_for_token,
)
from server import graphiql, health, logs, memory, metrics, observe, tracing
from server.api import schema
from server.budget import Budget, CostBudget, ThrottledTransportWS
from server.compiled import AUTH_KEY, CompiledGraphQL
from server.cors import Cors
from server.database import apply_role_settings, make_engine
from server.errors import DatabaseFailures
from server.graphql_http import GraphQLOverHTTP
from server.limits import BodyGuard
from server.notify import TimelineHub
from server.replicas import ENGINE_KEY, Replicas, replica_failed
from server.runtime import open_database_async, replica_engines
from server.settings import Settings, get_settings

log = logging.getLogger(__name__)


class GraphQLApp(GraphQL):
    # Charges each `subscribe` message to the client's cost budget (server/budget.py).
    graphql_transport_ws_handler_class = ThrottledTransportWS

    def __init__(self, schema, engine_ref: dict, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            # GraphQL over HTTP: plain GET /graphql?query=… for queries (a mutation is 405).
            allow_queries_via_get=True,
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            connection_init_wait_timeout=timedelta(seconds=10),
            # The CORS list (server/cors.py) is the handshake's list too; empty: same origin.
            allowed_origins=settings.cors_origins,
            # customerImportStart's file (GraphQL multipart request spec). Only requests with
            # a bearer token reach it, which browsers never send cross-site unasked: no CSRF.
            multipart_uploads_enabled=True,
        )
        self.max_subscriptions_per_connection = settings.subscriptions_per_connection
        self.budget: Budget | None = None  # set by create_app
        # Who tokens stand for, while the hub listens for revocations (resolvers/tokens).
        self.viewers = (
            ViewerCache(settings.token_cache_seconds) if settings.token_cache_seconds > 0 else None
        )

        self.engine_ref = engine_ref
        self.settings = settings
        self.drain: health.Drain | None = None  # set by create_app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket" and self.drain is not None and self.drain.draining:
            return await health.refuse_websocket(scope, receive, send)
        return await super().__call__(scope, receive, send)

    def should_render_graphql_ide(self, request) -> bool:
        # A browser opening a shared GraphiQL link (/graphql?query=…) gets GraphiQL, not JSON.
        accept = request.headers.get("accept", "")
        return request.method == "GET" and (
            "text/html" in accept or super().should_render_graphql_ide(request)
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our page: every asset from this service (server/graphiql.py), not from a CDN.
        return HTMLResponse(graphiql.PAGE)

    def hub(self) -> TimelineHub:
        hub = self.engine_ref.get("hub")
        if hub is None:
            hub = self.engine_ref["hub"] = TimelineHub(
                self.engine_ref["engine"],
                max_pending=self.settings.subscription_max_pending,
                max_per_user=self.settings.subscriptions_per_user,
                reconnect_seconds=self.settings.listen_reconnect_seconds,
                health_seconds=self.settings.listen_health_seconds,
                lease_seconds=self.settings.subscription_lease_seconds,
                listen_url=self.settings.listen_url,
            )
            hub.viewers = self.viewers
        return hub

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        ctx = Context(
            # Read replicas: the compiled front chose the engine of a query (ENGINE_KEY).
            engine=request.scope.get(ENGINE_KEY) or self.engine_ref["engine"],
            settings=self.settings,
            request=request,
            hub=self.hub(),
        )
        if isinstance(request, WebSocket):
            replicas = self.engine_ref.get("replicas")
            if replicas:  # a subscription replays old events from a replica
                ctx.read_replica = replicas.for_read
            if self.drain is not None:
                self.drain.track(request)  # closed with 1001 when the worker drains
            return ctx  # authenticated by connection_init (on_ws_connect)
        state = observe.current()
        if state is not None:  # the id the client sees in X-Request-ID and error answers
            ctx.request_id = state.request_id
        known = request.scope.get(AUTH_KEY)  # the compiled path already looked the token up
        if known is not None:
            viewer, ctx.token_error = known
            if viewer is not None:
                ctx.viewer = viewer
            return ctx
        await authenticate(ctx, request.headers.get("authorization", ""), self.viewers)
        request.scope[AUTH_KEY] = (ctx.viewer, ctx.token_error)  # the request line's role
        return ctx

    async def on_ws_connect(self, context: Context):
        """graphql-transport-ws: the token travels in the connection_init payload."""
        params = context.connection_params or {}
        header = params.get("authorization") or params.get("Authorization") or ""
        await authenticate(context, str(header), self.viewers)
        if context.token_error and header:
            raise ConnectionRejectionError({"message": context.token_error})
        return UNSET

    async def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        """An outage met by any resolver makes the whole answer a 503 (server.errors)."""
        result = await super().execute_operation(*args, **kwargs)
        result = await self._again_on_primary(result, args, kwargs)
        for error in getattr(result, "errors", None) or ():
            if (error.extensions or {}).get("code") == ErrorCode.SERVICE_UNAVAILABLE:
                raise ServiceUnavailable() from error.original_error
        return result

    async def _again_on_primary(self, result: Any, args: tuple, kwargs: dict) -> Any:
        """Read replicas: a query a replica failed to answer (down, or a conflict with
        recovery) runs again on the primary, with fresh loaders."""
        ctx, replicas = kwargs.get("context"), self.engine_ref.get("replicas")
        if not replicas or not isinstance(ctx, Context) or not replicas.is_replica(ctx.engine):
            return result
        failure = next(
            (
                e.original_error
                for e in getattr(result, "errors", None) or ()
                if e.original_error is not None and replica_failed(e.original_error)
            ),
            None,
        )
        if failure is None:
            return result
        replicas.failed(ctx.engine, failure)
        ctx.engine = self.engine_ref["engine"]
        ctx._loaders.clear()
        return await super().execute_operation(*args, **kwargs)

    def encode_json(self, data: object) -> str:
        # Every WebSocket message passes here: count the results subscribers are sent (not
        # an error a closing subscription reports, often to a socket already gone).
        if type(data) is dict and data.get("type") == "next" and self.settings.metrics:
            if not (data.get("payload") or {}).get("errors"):
                metrics.EVENTS.inc()
        # Text, not bytes: WebSocket clients (graphql-ws in GraphiQL) need text frames.
        return orjson.dumps(data).decode()


async def authenticate(ctx: Context, header: str, cache: ViewerCache | None = None) -> None:
    """Resolve `Bearer <token>` into ctx.viewer, or note why it failed in ctx.token_error."""
    raw = bearer(header)
    if raw is None:
        ctx.token_error = NOT_BEARER
        return
    viewer = await viewer_for_token(ctx.engine, raw or None, cache)
    if viewer is None:
        ctx.token_error = UNKNOWN_TOKEN
    else:
        ctx.viewer = viewer


async def _behind_transaction_pooler(db: Any, settings: Settings) -> None:
    """PgBouncer (transaction mode) takes no session settings at connect: they become the
    application role's defaults. LISTEN needs a direct connection of its own."""
    await apply_role_settings(db.app_url, settings.statement_timeout, owner_url=db.url)
    if not settings.listen_url:
        log.warning(
            "CUSTOMER_GRAPH_TRANSACTION_POOLER=1 without CUSTOMER_GRAPH_LISTEN_URL: the live"
            " timeline listens through the pooler and misses notifications; set it to a"
            " direct URL of the database"
        )


def _json_error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status
    )


def create_app(engine: AsyncEngine | None = None, settings: Settings | None = None) -> Starlette:
    """Build the app. Given no engine, the lifespan opens the configured database itself."""
    settings = settings or get_settings()
    if tracing.wanted():
        tracing.enable()  # OTEL_EXPORTER_OTLP_ENDPOINT or CUSTOMER_GRAPH_TRACING=1
    engine_ref: dict[str, Any] = {"engine": engine, "owner_url": settings.migration_url}
    # Read replicas (server/replicas.py): none unless DATABASE_REPLICA_URL is set.
    engine_ref["replicas"] = Replicas(
        lambda: engine_ref["engine"],
        replica_engines(settings),
        max_lag=settings.replica_max_lag,
        check_seconds=settings.replica_check_seconds,
    )
    drain = health.Drain(settings.drain_delay)
    if settings.metrics:
        telemetry.install(metrics.job_rows)

    def watch(engine: AsyncEngine) -> None:
        observe.watch_engine(engine)  # statements per request, for the line and metrics
        if settings.metrics:
            metrics.watch_ledger(engine)

    if engine is not None:
        watch(engine)
    for replica in engine_ref["replicas"].replicas:
        observe.watch_engine(replica.engine)  # a request's statements, on whichever server

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if engine_ref["engine"] is not None:
            yield
            return
        db = await open_database_async(settings, migrate=settings.migrate)
        if settings.transaction_pooler:
            await _behind_transaction_pooler(db, settings)
        engine_ref["owner_url"] = db.url if db.url != db.app_url else None
        engine_ref["engine"] = make_engine(
            db.app_url,
            pool_size=settings.pool_size,
            statement_timeout=settings.statement_timeout,
            connect_timeout=settings.connect_timeout,
        )
        watch(engine_ref["engine"])
        if engine_ref["replicas"]:  # first check before serving: reads use them at once
            await engine_ref["replicas"].check()
            engine_ref["replicas"].start()
        drain.install()  # SIGTERM drains first (server/health.py)
        metrics.forget_crashed_workers()
        sampler = asyncio.create_task(_sample_pool(engine_ref["engine"], settings.metrics))
        # Imports a stopped process left unfinished go on after their last committed batch.
        resumed = asyncio.create_task(import_jobs.resume_jobs(engine_ref["engine"]))
        # So do bulk updates (each batch a transaction: none is half-applied).
        resumed_bulk = asyncio.create_task(bulk_updates.resume_jobs(engine_ref["engine"]))
        # Listen from the start: token revocations too (the cache of who tokens stand for
        # is used only while listening).
        listening = asyncio.create_task(graphql.hub().listening())
        logs.write_request_lines_directly()  # when the logging set-up is serve's own
        memory.tune_gc(settings.gc_threshold)  # all that lives as long as the worker exists
        try:
            yield
        finally:
            logs.reset_request_lines()  # what is batched is written
            sampler.cancel()
            listening.cancel()
            resumed.cancel()
            resumed_bulk.cancel()
            metrics.mark_process_dead()
            if engine_ref.get("hub") is not None:
                await engine_ref["hub"].close()
            await engine_ref["replicas"].close()
            await engine_ref["engine"].dispose()
            db.stop()

    async def healthz(request: Request) -> JSONResponse:
        try:
            async with engine_ref["engine"].connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as error:
            if is_unavailable(error):
                raise  # DatabaseFailures answers 503 and logs the outage once
            log.exception("health check failed")
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    sdl = schema.as_str() + "\n"

    async def schema_sdl(request: Request) -> Response:
        # The printed schema for codegen tools; hidden like introspection when that is off.
        if not settings.introspection:
            return JSONResponse(
                {
                    "errors": [
                        {"message": "Not found.", "extensions": {"code": ErrorCode.NOT_FOUND}}
                    ]
                },
                status_code=404,
            )
        return PlainTextResponse(sdl)

    async def import_errors(request: Request) -> Response:
        """An import's rejected rows as CSV, for its owner or an admin (bearer token)."""
        ctx = Context(engine=engine_ref["engine"], settings=settings, request=request)
        await authenticate(ctx, request.headers.get("authorization", ""), graphql.viewers)
        if not ctx.viewer.is_authenticated:
            return JSONResponse(
                {
                    "errors": [
                        {"message": "Sign in.", "extensions": {"code": ErrorCode.UNAUTHENTICATED}}
                    ]
                },
                status_code=401,
            )
        job_id = int(request.path_params["job_id"])
        job = await import_jobs.job_by_id(ctx, job_id)
        if job is None:
            return JSONResponse(
                {
                    "errors": [
                        {"message": "No such import.", "extensions": {"code": ErrorCode.NOT_FOUND}}
                    ]
                },
                status_code=404,
            )
        return StreamingResponse(
            import_jobs.error_csv(ctx.engine, job_id, job.header),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="import-{job_id}-errors.csv"'},
        )

    async def export_download(request: Request) -> Response:
        """An export job's customers, streamed to its owner (bearer token), through the
        owner's scope, until the job expires."""
        ctx = Context(engine=engine_ref["engine"], settings=settings, request=request)
        await authenticate(ctx, request.headers.get("authorization", ""), graphql.viewers)
        if not ctx.viewer.is_authenticated:
            return _json_error(401, "Sign in.", ErrorCode.UNAUTHENTICATED)
        job = await exports.export_for(ctx, int(request.path_params["job_id"]))
        if job is None:
            return _json_error(404, "No such export.", ErrorCode.NOT_FOUND)
        if job.expired:
            return _json_error(410, "This export expired: start another.", ErrorCode.EXPIRED)
        criteria = exports.criteria_of(job.criteria)
        chunks = exports.export_chunks(ctx, criteria=criteria, fmt=job.format)
        try:  # the filter is checked again now (a sales channel deleted meanwhile)
            first = await anext(chunks)
        except CodedError as exc:
            return _json_error(
                400, exc.message, exc.extensions.get("code", ErrorCode.BAD_USER_INPUT)
            )

        async def body():
            yield first[0]
            telemetry.job_rows("export", "exported", first[1])
            async for chunk, rows in chunks:
                yield chunk
                telemetry.job_rows("export", "exported", rows)

        kind = "text/csv" if job.format == "csv" else "application/x-ndjson"
        name = f"customers-{job.id}.{job.format}"
        return StreamingResponse(
            body(),
            media_type=f"{kind}; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    async def home(request: Request) -> Response:
        return RedirectResponse("/graphql", status_code=307)

    graphql = GraphQLApp(schema, engine_ref, settings)
    graphql.drain = drain
    # One cost budget for HTTP (CostBudget below) and WebSocket operations.
    graphql.budget = budget = Budget(engine_ref=engine_ref, settings=settings, schema=schema)
    livez, readyz = health.endpoints(
        engine_ref, drain, graphql.hub, timeout=settings.connect_timeout or 5.0
    )
    operating = [Route("/livez", livez), Route("/readyz", readyz)]
    if settings.metrics:
        operating.append(Route("/metrics", metrics.endpoint(engine_ref, settings.metrics_token)))
    app = Starlette(
        routes=[
            Route(
                "/graphql", CompiledGraphQL(graphql, engine_ref, settings), methods=["GET", "POST"]
            ),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/schema.graphql", schema_sdl),
            Route("/imports/{job_id:int}/errors.csv", import_errors),
            Route("/exports/{job_id:int}", export_download),
            Route("/", home),
            Mount(graphiql.ASSETS_PATH, graphiql.assets_app()),
            *operating,
        ],
        lifespan=lifespan,
    )
    app.add_middleware(
        BodyGuard, max_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes
    )
    # Cost and budget per client (server/budget.py): inside DatabaseFailures, so an outage
    # met by the bucket's statement answers 503 like any other.
    app.add_middleware(CostBudget, budget=budget)
    app.add_middleware(
        DatabaseFailures, engine_ref=engine_ref, budget=2 * settings.statement_timeout
    )
    # The graphql-over-http spec's media types and status codes (server/graphql_http.py).
    app.add_middleware(GraphQLOverHTTP)
    # Outside the body checks: a preflight never reaches them.
    app.add_middleware(Cors, origins=settings.cors_origins)
    # Request id, request line and request metrics; inside gzip, so it reads plain bodies.
    app.add_middleware(observe.Observe, access_log=settings.access_log, metrics=settings.metrics)
    if settings.gzip_level:
        # A nested customer page is hundreds of KB of JSON, a few dozen gzipped: what a
        # mobile app on a slow network waits for. Only clients that ask get it.
        app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=settings.gzip_level)
    if tracing.enabled():
        middleware, options = tracing.middleware()
        app.add_middleware(middleware, **options)  # outermost: the whole request's span
    app.state.schema = schema
    app.state.engine_ref = engine_ref
    app.state.drain = drain
    return app


async def _sample_pool(engine: AsyncEngine, enabled: bool, every: float = 2.0) -> None:
    """This worker's pool gauges, kept fresh for scrapes answered by another worker."""
    while enabled:
        metrics.sample_pool(engine)
        await asyncio.sleep(every)
