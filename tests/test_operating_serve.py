"""`customer-graph serve` as a real process (python -m server.cli serve): /metrics summed
over two workers, the request line carrying the client's X-Request-ID, and SIGTERM
draining: /readyz answers 503, a slow request in flight finishes, an open subscription is
closed with 1001, the process exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from server.runtime import APP_ROLE, with_user
from tests.factories import make_customer, make_user
from tests.test_subscriptions import ALL, Client

ROOT = Path(__file__).resolve().parent.parent
STARTUP = 90.0  # seconds: two spawned workers import the app on a loaded 2-core machine
PAGE = "query Page { customers(first: 5) { nodes { number } } }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(
    database_url: str, tmp_path: Path, workers: int, **env: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, Path]]:
    """The service on a free port: (process, host:port, its stderr log file)."""
    port = _free_port()
    log_path = tmp_path / f"serve-{port}.log"
    environment = {
        **os.environ,
        "DATABASE_URL": with_user(database_url, APP_ROLE),
        "CUSTOMER_GRAPH_MIGRATION_URL": database_url,
        "CUSTOMER_GRAPH_POOL_SIZE": "3",
        "CUSTOMER_GRAPH_LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{port}"),
        **env,
    }
    command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port)]
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *command,
            "--workers",
            str(workers),
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    address = f"127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            deadline = time.monotonic() + STARTUP
            while True:
                assert proc.returncode is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "serve did not become ready"
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        yield proc, address, log_path
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def request_lines(log_path: Path) -> list[dict]:
    lines = []
    for raw in log_path.read_text().splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            line = orjson.loads(raw)
            if line.get("event") == "request":
                lines.append(line)
    return lines


def samples(exposition: str) -> dict[tuple, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


async def test_metrics_are_summed_over_two_workers(engine, database_url, tmp_path):
    _, token = await make_user(engine, role="ADMIN", email="ops@example.com")
    async with serving(database_url, tmp_path, workers=2) as (_, address, log_path):
        auth = {"Authorization": f"Bearer {token}"}
        sent = 0
        pids: set[int] = set()
        # A new connection per request: the kernel hands them to either worker.
        while sent < 200 and (sent < 20 or len(pids) < 2):
            async with httpx.AsyncClient(base_url=f"http://{address}") as http:
                response = await http.post(
                    "/graphql",
                    json={"query": PAGE},
                    headers={**auth, "X-Request-ID": f"sum-{sent}"},
                )
            assert response.status_code == 200 and response.headers["x-request-id"] == f"sum-{sent}"
            sent += 1
            if sent % 10 == 0:
                await asyncio.sleep(0.3)  # the lines are written by the workers
                pids = {line["pid"] for line in request_lines(log_path)}
        assert len(pids) == 2, "both workers answered"
        key = (
            "customer_graph_requests_total",
            (
                ("code", "OK"),
                ("operation", "Page"),
                ("operation_type", "query"),
                ("read_path", "compiled"),
            ),
        )
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            for _ in range(6):  # whichever worker answers the scrape, the sum is the same
                scraped = samples((await http.get("/metrics")).text)
                assert scraped[key] == sent
                statements = (
                    "customer_graph_sql_statements_per_request_sum",
                    (("read_path", "compiled"),),
                )
                # a token lookup and the page, or (a session keeping the viewer) the page
                assert sent <= scraped[statements] <= 2 * sent
                assert ("customer_graph_pool_connections", (("state", "idle"),)) in scraped
        lines = {line["request_id"]: line for line in request_lines(log_path)}
        sums = sum(line["statements"] for rid, line in lines.items() if rid.startswith("sum-"))
        assert scraped[statements] == sums  # both workers' metrics, each request's line
        line = lines["sum-0"]  # the id the client sent, in the JSON line
        assert line["operation"] == "Page" and line["read_path"] == "compiled"
        assert line["role"] == "ADMIN" and line["status"] == 200 and line["statements"] == 2


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_drains(engine, database_url, tmp_path, workers):
    customer = await make_customer(engine)
    _, token = await make_user(engine, role="ADMIN", email="ops@example.com")
    env = {"CUSTOMER_GRAPH_DRAIN_DELAY_SECONDS": "2", "CUSTOMER_GRAPH_DRAIN_SECONDS": "15"}
    async with serving(database_url, tmp_path, workers, **env) as (proc, address, log_path):
        async with (
            Client.connect(address, token) as ws,
            httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as http,
        ):
            await ws.subscribe(ALL, {})
            auth = {"Authorization": f"Bearer {token}"}
            async with engine.connect() as locker:
                # Every read of customer waits for this lock: a request that stays in flight.
                await locker.execute(text("LOCK TABLE customer IN ACCESS EXCLUSIVE MODE"))
                slow = asyncio.create_task(
                    http.post("/graphql", json={"query": PAGE}, headers=auth)
                )
                await asyncio.sleep(1.0)
                assert not slow.done()
                proc.send_signal(signal.SIGTERM)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.ws.recv(), 10)
                assert closed.value.rcvd.code == 1001  # Going Away: resume with `since`
                # Still accepting during the delay, but no longer ready.
                async with httpx.AsyncClient(base_url=f"http://{address}") as fresh:
                    ready = await fresh.get("/readyz")
                assert ready.status_code == 503 and ready.json() == {"status": "draining"}
                assert not slow.done()
                await asyncio.sleep(1.5)  # past the delay: uvicorn stops accepting
                await locker.rollback()  # the slow request may go on now
            response = await slow
        assert response.status_code == 200, response.text
        assert response.json() == {"data": {"customers": {"nodes": [{"number": customer.number}]}}}
        code = await asyncio.wait_for(proc.wait(), 30)
        assert code == 0, log_path.read_text()[-3000:]
        async with httpx.AsyncClient(base_url=f"http://{address}") as late:
            with pytest.raises(httpx.ConnectError):
                await late.get("/livez")


async def test_granian_serves_the_same_app_and_stops_on_sigterm(engine, database_url, tmp_path):
    """`serve --server granian`: the same answers (compiled path, request line, metrics),
    and SIGTERM ends it with exit code 0."""
    _, token = await make_user(engine, role="ADMIN", email="granian@example.com")
    await make_customer(engine, last_name="Rust")
    env = {"CUSTOMER_GRAPH_SERVER": "granian"}
    async with serving(database_url, tmp_path, workers=1, **env) as (proc, address, log_path):
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            response = await http.post(
                "/graphql",
                json={"query": PAGE},
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": "granian-1"},
            )
            assert response.status_code == 200, response.text
            assert response.headers["server"] == "granian"
            assert response.headers["x-customer-graph-path"] == "compiled"
            assert response.json()["data"]["customers"]["nodes"][0]["number"].startswith("C-")
            # Counted when the request's coroutine ends, which under granian may be just
            # after the client has the whole answer.
            for _ in range(50):
                exposition = (await http.get("/metrics")).text
                if "customer_graph_requests_total{" in exposition:
                    break
                await asyncio.sleep(0.1)
        assert "customer_graph_requests_total{" in exposition
        await asyncio.sleep(0.3)
        assert any(line.get("request_id") == "granian-1" for line in request_lines(log_path))
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0, log_path.read_text()[-2000:]
