"""Configuration from environment variables (documented in the README's table)."""

import os
from dataclasses import dataclass, field
from pathlib import Path


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _origins(raw: str | None) -> tuple[str, ...]:
    return tuple(o.strip().rstrip("/") for o in (raw or "").split(",") if o.strip())


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def cost_budget(text: str) -> tuple[float, float]:
    """`maximum/rate` (points, points a second), both > 0: a role's or a token's budget."""
    maximum, sep, rate = text.partition("/")
    try:
        pair = (float(maximum), float(rate))
    except ValueError:
        pair = (0.0, 0.0)
    if not sep or not all(0 < v < float("inf") for v in pair):
        raise ValueError(f"a cost budget is maximum/rate, both > 0 (e.g. 5000/100); got {text!r}")
    return pair


def _budgets(raw: str | None) -> tuple[tuple[str, float, float], ...]:
    """`ROLE=maximum/rate,…` (CUSTOMER_GRAPH_COST_BUDGETS) as (role, maximum, rate)."""
    budgets = []
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        role, _, limits = item.partition("=")
        try:
            maximum, rate = cost_budget(limits)
        except ValueError as error:
            raise ValueError(f"CUSTOMER_GRAPH_COST_BUDGETS: {item!r}: {error}") from None
        budgets.append((role.strip().upper(), maximum, rate))
    return tuple(budgets)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "customer-graph"


@dataclass(frozen=True)
class Settings:
    database_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_URL") or None)
    # The owner's URL (migrations, CLI administration); unset: DATABASE_URL.
    migration_url: str | None = field(
        default_factory=lambda: os.environ.get("CUSTOMER_GRAPH_MIGRATION_URL") or None
    )
    data_dir: Path = field(
        default_factory=lambda: Path(
            os.environ.get("CUSTOMER_GRAPH_DATA_DIR") or default_data_dir()
        ).expanduser()
    )
    debug: bool = field(default_factory=lambda: _bool("CUSTOMER_GRAPH_DEBUG", False))
    introspection: bool = field(default_factory=lambda: _bool("CUSTOMER_GRAPH_INTROSPECTION", True))
    max_page_size: int = 100
    max_body_bytes: int = field(
        default_factory=lambda: _int("CUSTOMER_GRAPH_MAX_BODY_BYTES", 100 * 1024)
    )
    # A customer import's file (customerImportStart, a multipart request).
    max_upload_bytes: int = field(
        default_factory=lambda: _int("CUSTOMER_GRAPH_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
    )
    max_tokens: int = field(default_factory=lambda: _int("CUSTOMER_GRAPH_MAX_TOKENS", 5000))
    max_depth: int = field(default_factory=lambda: _int("CUSTOMER_GRAPH_MAX_DEPTH", 10))
    max_aliases: int = field(default_factory=lambda: _int("CUSTOMER_GRAPH_MAX_ALIASES", 30))
    max_cost: int = field(default_factory=lambda: _int("CUSTOMER_GRAPH_MAX_COST", 6_000))
    max_selections: int = field(
        default_factory=lambda: _int("CUSTOMER_GRAPH_MAX_SELECTIONS", 10_000)
    )
    # Each client's leaky bucket of query cost points (server/budget.py): the most it
    # holds, and the points that flow back each second. 0 turns budgets (and
    # `extensions.cost`) off.
    cost_budget: int = field(default_factory=lambda: _int("CUSTOMER_GRAPH_COST_BUDGET", 60_000))
    cost_restore_rate: float = field(
        default_factory=lambda: _float("CUSTOMER_GRAPH_COST_RESTORE_RATE", 10_000.0)
    )
    # Per role (ADMIN, SALES_REP, CUSTOMER, ANONYMOUS): `ROLE=maximum/rate,…`.
    cost_budgets: tuple[tuple[str, float, float], ...] = field(
        default_factory=lambda: _budgets(os.environ.get("CUSTOMER_GRAPH_COST_BUDGETS"))
    )
    default_page_size: int = 20
    # `serve` sets it from the server's max_connections and --workers unless given.
    pool_size: int = field(default_factory=lambda: _int("CUSTOMER_GRAPH_POOL_SIZE", 10))
    # Reads of plain data answered by one SQL statement (server/compiled.py); 0 disables.
    compiled_reads: bool = field(default_factory=lambda: _bool("CUSTOMER_GRAPH_COMPILED", True))
    # gzip for clients that send Accept-Encoding: gzip (1-9; 0 turns it off).
    gzip_level: int = field(default_factory=lambda: _int("CUSTOMER_GRAPH_GZIP_LEVEL", 5))
    search_cap: int = field(default_factory=lambda: _int("CUSTOMER_GRAPH_SEARCH_CAP", 400))
    subscriptions_per_connection: int = field(
        default_factory=lambda: _int("CUSTOMER_GRAPH_SUBSCRIPTIONS_PER_CONNECTION", 100)
    )
    subscriptions_per_user: int = field(
        default_factory=lambda: _int("CUSTOMER_GRAPH_SUBSCRIPTIONS_PER_USER", 200)
    )
    # The per-user limit counts every instance through subscription_lease rows, which each
    # worker renews every third of this; a dead instance's rows stop counting after it.
    subscription_lease_seconds: float = field(
        default_factory=lambda: _float("CUSTOMER_GRAPH_SUBSCRIPTION_LEASE_SECONDS", 30.0)
    )
    # Events a subscriber may fall behind before its connection is closed (slow consumer).
    subscription_max_pending: int = field(
        default_factory=lambda: _int("CUSTOMER_GRAPH_SUBSCRIPTION_MAX_PENDING", 1000)
    )
    # Origins of browser apps allowed to call the API (CORS and WebSockets); empty: same origin.
    cors_origins: tuple[str, ...] = field(
        default_factory=lambda: _origins(os.environ.get("CUSTOMER_GRAPH_CORS_ORIGINS"))
    )
    # Behind a pooler in transaction mode (PgBouncer): no prepared statements kept, session
    # settings as the role's defaults (server/database.py make_engine, apply_role_settings).
    transaction_pooler: bool = field(
        default_factory=lambda: _bool("CUSTOMER_GRAPH_TRANSACTION_POOLER", False)
    )
    # The live timeline's LISTEN connection needs a session of its own: behind a transaction
    # pooler, a direct URL to PostgreSQL (same role and database). Unset: DATABASE_URL's pool.
    listen_url: str | None = field(
        default_factory=lambda: os.environ.get("CUSTOMER_GRAPH_LISTEN_URL") or None
    )
    # The live timeline's LISTEN connection: how long to try again after losing it before
    # subscribers' sockets are closed (1012), and how often to check it still answers.
    listen_reconnect_seconds: float = field(
        default_factory=lambda: _float("CUSTOMER_GRAPH_LISTEN_RECONNECT_SECONDS", 30.0)
    )
    listen_health_seconds: float = field(
        default_factory=lambda: _float("CUSTOMER_GRAPH_LISTEN_HEALTH_SECONDS", 5.0)
    )
    # Who a token stands for, kept per worker this many seconds while the worker listens
    # for revocations (resolvers/tokens.ViewerCache); 0 looks every token up every time.
    token_cache_seconds: float = field(
        default_factory=lambda: _float("CUSTOMER_GRAPH_TOKEN_CACHE_SECONDS", 60.0)
    )
    # Migrate at start-up (`serve`, or the app's lifespan); 0: like `serve --no-migrate`.
    migrate: bool = field(default_factory=lambda: _bool("CUSTOMER_GRAPH_MIGRATE", True))
    # Byte budgets of the per-worker caches in front of Strawberry (server/compiled.py);
    # only signed-in requests fill them.
    document_cache_bytes: int = field(
        default_factory=lambda: _int("CUSTOMER_GRAPH_DOCUMENT_CACHE_BYTES", 64 * 2**20)
    )
    statement_cache_bytes: int = field(
        default_factory=lambda: _int("CUSTOMER_GRAPH_STATEMENT_CACHE_BYTES", 32 * 2**20)
    )
    persisted_cache_bytes: int = field(
        default_factory=lambda: _int("CUSTOMER_GRAPH_PERSISTED_CACHE_BYTES", 16 * 2**20)
    )
    # APQ's table in PostgreSQL, shared by every instance (server/persisted.py): the most
    # bytes of query text it keeps (least recently used evicted); 0: per-process only.
    persisted_store_bytes: int = field(
        default_factory=lambda: _int("CUSTOMER_GRAPH_PERSISTED_STORE_BYTES", 64 * 2**20)
    )
    # Seconds one SQL statement may run (PostgreSQL statement_timeout); a query's whole
    # execution gets twice that (server/errors.DatabaseFailures). 0 turns both off.
    statement_timeout: float = field(
        default_factory=lambda: _float("CUSTOMER_GRAPH_STATEMENT_TIMEOUT", 5.0)
    )
    # Seconds to open a connection or wait for a pooled one before answering 503.
    connect_timeout: float = field(
        default_factory=lambda: _float("CUSTOMER_GRAPH_CONNECT_TIMEOUT", 5.0)
    )
    # Operating (README "Operating"): GET /metrics (0 turns it off) and its optional
    # bearer token; the request line per request (`serve --no-access-log` turns it off).
    metrics: bool = field(default_factory=lambda: _bool("CUSTOMER_GRAPH_METRICS", True))
    metrics_token: str | None = field(
        default_factory=lambda: os.environ.get("CUSTOMER_GRAPH_METRICS_TOKEN") or None
    )
    access_log: bool = field(default_factory=lambda: _bool("CUSTOMER_GRAPH_ACCESS_LOG", False))
    # On SIGTERM: how long /readyz answers 503 while requests are still served (for a load
    # balancer to notice), then how long in-flight requests may take to finish.
    drain_delay: float = field(
        default_factory=lambda: _float("CUSTOMER_GRAPH_DRAIN_DELAY_SECONDS", 0.0)
    )
    drain_seconds: float = field(
        default_factory=lambda: _float("CUSTOMER_GRAPH_DRAIN_SECONDS", 25.0)
    )
    # Python's collector in each worker (server/memory.py): what startup built is frozen
    # out of collections, and the youngest generation is collected after this many
    # allocations (CPython's default is 700). 0 leaves the collector as Python sets it.
    gc_threshold: int = field(default_factory=lambda: _int("CUSTOMER_GRAPH_GC_THRESHOLD", 50_000))
    # Read replicas (server/replicas.py, docs/scaling.md): the application's URLs on
    # streaming replicas, comma-separated; how many seconds behind the primary one may be
    # and still answer reads; how often each worker checks them.
    replica_urls: tuple[str, ...] = field(
        default_factory=lambda: _replica_urls(os.environ.get("DATABASE_REPLICA_URL"))
    )
    replica_max_lag: float = field(
        default_factory=lambda: _float("CUSTOMER_GRAPH_REPLICA_MAX_LAG", 5.0)
    )
    replica_check_seconds: float = field(
        default_factory=lambda: _float("CUSTOMER_GRAPH_REPLICA_CHECK_SECONDS", 1.0)
    )


def _replica_urls(raw: str | None) -> tuple[str, ...]:
    """DATABASE_REPLICA_URL: URLs separated by commas. A comma not followed by a new URL
    belongs to the URL before it (a libpq multi-host list)."""
    urls: list[str] = []
    for piece in (raw or "").split(","):
        piece = piece.strip()
        if not piece:
            continue
        if "://" in piece or not urls:
            urls.append(piece)
        else:
            urls[-1] += "," + piece
    return tuple(urls)


def get_settings() -> Settings:
    return Settings()
