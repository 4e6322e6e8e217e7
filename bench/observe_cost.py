"""What the request line and the request metrics cost per request, in process.

python -m bench.observe_cost [--requests 20000]

An ASGI app that answers at once with a 225 KB body (the compiled page's size) and the
compiled path's header is called directly, bare and then wrapped in server.observe's
Observe middleware with metrics on and the request line on (rendered as JSON by `serve`'s
formatter, to a file), the way `serve` wires them. The difference per request is what
observing costs; compare it with a request's own time (bench.compare: ~8 ms at one
connection). Runs without a database: a GraphQL request's statements are counted by
SQLAlchemy events whose cost is one context-variable read per statement.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
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
    args = p.parse_args(argv)
    log_file = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    handler = logging.StreamHandler(log_file)
    handler.setFormatter(logs.formatter("json"))
    request_logger = logging.getLogger(logs.REQUEST_LOGGER)
    request_logger.addHandler(handler)
    request_logger.setLevel(logging.INFO)
    request_logger.propagate = False
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
    print(f"request lines written to {log_file.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
