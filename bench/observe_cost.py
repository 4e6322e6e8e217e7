"""What the request line and the request metrics cost per request, in process.

python -m bench.observe_cost [--requests 20000] [--through-logging]

An ASGI app that answers at once with a 225 KB body (the compiled page's size) and the
compiled path's header is called directly, bare and then wrapped in server.observe's
Observe middleware with metrics on (multiprocess files on tmpfs) and the request line on
(JSON, `serve`'s logging set-up with stderr a file), the way `serve` wires them. The
difference per request is what observing costs; compare it with a request's own time
(bench.compare: ~1.2 ms for the mobile view at one connection, ~8 ms for the heavy
page). For the whole service, `python -m bench.compare --compare-observe --fresh`.
Runs without a database: a GraphQL request's statements are counted by SQLAlchemy events
whose cost is one context-variable read per statement.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import sys
import tempfile
import time

# As `serve` runs them: prometheus-client's multiprocess mode, its files in memory (set
# before server.metrics imports prometheus-client).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cg-bench-metrics-", dir=shm)

from server import logs
from server.observe import Observe, sql

BODY = b'{"data":' + b"x" * 225_000 + b"}"
HEADERS = [(b"content-type", b"application/json"), (b"x-customer-graph-path", b"compiled")]


async def app(scope, receive, send) -> None:
    sql(0.004)  # the compiled front notes its statements
    sql(0.001)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def scope() -> dict:
    return {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": [(b"authorization", b"Bearer x"), (b"content-type", b"application/json")],
    }


async def run(handler, n: int) -> float:
    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message) -> None:
        return None

    started = time.perf_counter()
    for _ in range(n):
        await handler(scope(), receive, send)
    return (time.perf_counter() - started) / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.observe_cost", description=__doc__)
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument(
        "--through-logging",
        action="store_true",
        help="the request line through the standard library's logging, as when an operator"
        " configures handlers of their own (serve's own set-up writes it with structlog)",
    )
    args = p.parse_args(argv)
    # serve's logging set-up (server/logs.dict_config: one JSON handler on stderr), with
    # stderr a file; then the request line's path as under serve.
    log_file = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    real_stderr, sys.stderr = sys.stderr, log_file
    try:
        logging.config.dictConfig(logs.dict_config("json"))
    finally:
        sys.stderr = real_stderr
    direct = logs.write_request_lines_directly() and not args.through_logging
    if not direct:
        logs.reset_request_lines()
    observed = Observe(app, access_log=True, metrics=True)
    quiet = Observe(app, access_log=False, metrics=False)
    for _ in range(2):  # warm up, then measure each twice, interleaved
        bare = asyncio.run(run(app, args.requests))
        off = asyncio.run(run(quiet, args.requests))
        on = asyncio.run(run(observed, args.requests))
    print(f"bare app:                          {bare * 1e6:7.1f} µs per request")
    print(f"Observe, metrics and line off:     {off * 1e6:7.1f} µs per request")
    print(f"Observe, metrics and JSON line on: {on * 1e6:7.1f} µs per request")
    print(f"cost of metrics + request line:    {(on - bare) * 1e6:7.1f} µs per request")
    how = "structlog directly" if direct else "the standard library's logging"
    print(f"request lines written to {log_file.name} through {how}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
