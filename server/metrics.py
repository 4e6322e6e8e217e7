"""Prometheus metrics (prometheus-client), served at GET /metrics.

`serve` runs prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set before
any worker imports this module): each worker writes its figures to files in that
directory and whichever worker answers /metrics sums them all, so one scrape sees the
whole service. Without it (tests, an app built in process) the figures are this
process's. Gauges of things that live in a worker (pool connections, open subscriptions)
are summed over live workers (`livesum`).

Label values are bounded: operation names are the client's, so the first
`CUSTOMER_GRAPH_METRICS_MAX_OPERATIONS` (per worker) valid GraphQL names are kept and any
other is "other"; codes are ours; everything else is a small fixed set.
"""

from __future__ import annotations

import hmac
import os
import re
import threading
import weakref
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from resolvers.errors import ErrorCode

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# Request latency: a compiled page answers in milliseconds, a heavy field-by-field one in
# seconds; the budget cancels at twice the statement timeout (10 s by default).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STATEMENT_BUCKETS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144)

REQUESTS = Counter(
    "customer_graph_requests",
    "GraphQL requests over HTTP by operation, operation type, read path and outcome code",
    ["operation", "operation_type", "read_path", "code"],
)
LATENCY = Histogram(
    "customer_graph_request_duration_seconds",
    "Time from the request's arrival to its last byte, by operation and read path",
    ["operation", "read_path"],
    buckets=LATENCY_BUCKETS,
)
SQL_STATEMENTS = Histogram(
    "customer_graph_sql_statements_per_request",
    "SQL statements one GraphQL request ran (transaction preambles included)",
    ["read_path"],
    buckets=STATEMENT_BUCKETS,
)
SQL_SECONDS = Histogram(
    "customer_graph_sql_seconds_per_request",
    "Time one GraphQL request spent waiting on SQL statements (summed; they may overlap)",
    ["read_path"],
    buckets=LATENCY_BUCKETS,
)
REJECTED = Counter(
    "customer_graph_rejected_requests",
    "Requests refused by a limit, by the limit's code",
    ["code"],
)
POOL = Gauge(
    "customer_graph_pool_connections",
    "Database connections of the workers' pools: in_use (checked out) or idle",
    ["state"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "customer_graph_pool_waiting",
    "Requests waiting for a pooled connection (the pool and its overflow are all in use)",
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS = Gauge(
    "customer_graph_subscriptions_open",
    "GraphQL subscriptions running over WebSockets",
    multiprocess_mode="livesum",
)
EVENTS = Counter(
    "customer_graph_subscription_events",
    "Results sent to subscribers (timeline events, job progress)",
)
LEDGER = Counter(
    "customer_graph_ledger_postings",
    "Ledger entries committed, by kind",
    ["kind"],
)
JOB_ROWS = Counter(
    "customer_graph_job_rows",
    "Rows handled by import, export and bulk update jobs, by outcome",
    ["job", "outcome"],
)

# Codes of the request limits (server/limits.py, server/errors.py, subscriptions): a
# request refused by one of these counts in customer_graph_rejected_requests_total too.
LIMIT_CODES = frozenset(
    (
        ErrorCode.REQUEST_TOO_LARGE,
        ErrorCode.BATCH_NOT_SUPPORTED,
        ErrorCode.TOO_MANY_TOKENS,
        ErrorCode.QUERY_TOO_DEEP,
        ErrorCode.TOO_MANY_ALIASES,
        ErrorCode.QUERY_TOO_COSTLY,
        ErrorCode.SELECTION_LIMIT_EXCEEDED,
        ErrorCode.INTROSPECTION_DISABLED,
        ErrorCode.OPERATION_NAME_REQUIRED,
        ErrorCode.RATE_LIMITED,
        ErrorCode.THROTTLED,
    )
)

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")


class BoundedLabel:
    """A label fed by clients: the first `cap` distinct valid values are kept, anything
    else (past the cap, or not a GraphQL name) is "other". A series per value lives for
    the whole process, so an unbounded label would grow the scrape without limit."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        if not value:
            return "-"  # an anonymous operation, or none known
        if value in self.seen:
            return value
        if not _NAME.fullmatch(value):
            return "other"
        with self._lock:
            if len(self.seen) >= self.cap:
                return "other"
            self.seen.add(value)
        return value


OPERATIONS = BoundedLabel(int(os.environ.get("CUSTOMER_GRAPH_METRICS_MAX_OPERATIONS") or 100))
CODES = BoundedLabel(200)  # ours; bounded all the same, in case a code were ever computed


def observe_request(
    *,
    operation: str | None,
    operation_type: str | None,
    read_path: str,
    codes: list[str],
    seconds: float,
    statements: int,
    sql_seconds: float,
) -> None:
    name = OPERATIONS(operation)
    code = CODES(codes[0]) if codes else "OK"
    key = (name, operation_type or "-", read_path, code)
    series = _SERIES.get(key)
    if series is None:
        series = _SERIES[key] = (
            REQUESTS.labels(*key),
            LATENCY.labels(name, read_path),
            SQL_STATEMENTS.labels(read_path),
            SQL_SECONDS.labels(read_path),
        )
    requests, latency, statements_, sql = series
    requests.inc()
    latency.observe(seconds)
    statements_.observe(statements)
    sql.observe(sql_seconds)
    for limit in {c for c in codes if c in LIMIT_CODES}:
        REJECTED.labels(limit).inc()


# A request's series by its labels: `labels()` takes a lock and builds its key each call;
# bounded as the labels are (operations and codes are capped).
_SERIES: dict[tuple[str, str, str, str], tuple[Any, Any, Any, Any]] = {}


def sample_pool(engine: AsyncEngine | None) -> None:
    """This worker's pool gauges, read off SQLAlchemy's QueuePool."""
    if engine is None:
        return
    pool: Any = engine.sync_engine.pool
    checked_out = getattr(pool, "checkedout", lambda: 0)()
    idle = getattr(pool, "checkedin", lambda: 0)()
    POOL.labels("in_use").set(checked_out)
    POOL.labels("idle").set(idle)
    # asyncio.Queue keeps its waiting getters in `_getters`: the one place that knows how
    # many checkouts are queued (the pool and its overflow all in use). 0 if it moved.
    queue = getattr(getattr(pool, "_pool", None), "__dict__", {}).get("_queue")
    POOL_WAITING.set(len(getattr(queue, "_getters", ()) or ()))


def job_rows(job: str, outcome: str, count: int) -> None:
    if count > 0:
        JOB_ROWS.labels(job, outcome).inc(count)


def exposition() -> bytes:
    """The Prometheus text of every worker (multiprocess) or of this process."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def endpoint(engine_ref: dict, token: str | None):
    """GET /metrics; with a token configured, only `Authorization: Bearer <token>`."""

    async def metrics(request: Request) -> Response:
        if token:
            sent = request.headers.get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                return JSONResponse(
                    {
                        "errors": [
                            {
                                "message": "Metrics need the metrics token.",
                                "extensions": {"code": ErrorCode.UNAUTHENTICATED},
                            }
                        ]
                    },
                    status_code=401,
                    headers={"www-authenticate": "Bearer"},
                )
        sample_pool(engine_ref.get("engine"))
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics


def mark_process_dead() -> None:
    """A stopping worker's live gauges leave the sum (multiprocess mode)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())


def forget_crashed_workers() -> list[int]:
    """At a worker's start: the live gauges of workers that died without stopping (killed,
    crashed; the server starts others in their place) leave the sum too. Their counters
    stay: what they counted happened."""
    if not MULTIPROCESS:
        return []
    import psutil

    gone = set()
    for path in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            gone.add(int(pid))
    for pid in gone:
        multiprocess.mark_process_dead(pid)
    return sorted(gone)


# Ledger postings count when their transaction commits (a refused mutation rolls its
# entries back): noted per connection on INSERT, added up on COMMIT, dropped otherwise.
# Kept beside the Connection, never in `conn.info`: that reaches the DBAPI connection,
# which an invalidated connection refuses (during an outage, in the middle of ROLLBACK).
_PENDING: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()


def _ledger_insert(conn, cursor, statement, parameters, context, executemany) -> None:
    compiled = getattr(context, "compiled", None)
    table = getattr(getattr(compiled, "statement", None), "table", None)
    if not (getattr(context, "isinsert", False) and getattr(table, "name", None) == LEDGER_TABLE):
        return
    pending = _PENDING.setdefault(conn, [])
    for params in context.compiled_parameters or ():
        # One entry per row: "kind", or "kind_1", "kind_2" (a transfer's two in one INSERT).
        kinds = [v for k, v in params.items() if k == "kind" or k.startswith("kind_")]
        for kind in kinds or [None]:
            pending.append(str(getattr(kind, "value", kind) or "UNKNOWN"))


def _ledger_commit(conn) -> None:
    for kind in _PENDING.pop(conn, ()):
        LEDGER.labels(kind).inc()


def _ledger_forget(conn, *_: Any) -> None:
    _PENDING.pop(conn, None)


LEDGER_TABLE = "ledger_transaction"


def watch_ledger(engine: AsyncEngine) -> None:
    """Count committed ledger entries of this engine's transactions (once per engine)."""
    from sqlalchemy import event

    sync = engine.sync_engine
    if event.contains(sync, "commit", _ledger_commit):
        return
    event.listen(sync, "after_cursor_execute", _ledger_insert)
    event.listen(sync, "commit", _ledger_commit)
    event.listen(sync, "begin", _ledger_forget)
    event.listen(sync, "rollback", _ledger_forget)
