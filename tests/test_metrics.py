"""GET /metrics after real traffic: each family moves by what the requests did.

The figures are this test process's (prometheus-client's default registry, shared by
every app built here), so each test compares a scrape before and after its traffic.
tests/test_operating_serve.py checks the sum over two `serve` workers."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from resolvers.timeline import record
from server import metrics
from server.app import create_app
from server.settings import Settings
from tests.conftest import gid, serve
from tests.factories import make_customer
from tests.test_bulk_updates import run as run_bulk
from tests.test_export_jobs import START as EXPORT
from tests.test_import_jobs import CSV, upload
from tests.test_import_jobs import finished as import_finished
from tests.test_ledger import TRANSFER as LEDGER_TRANSFER
from tests.test_ledger import post as ledger_post
from tests.test_subscriptions import ALL, Client

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DEPLOY_FILES = [(DEPLOY / name).read_text() for name in ("grafana-dashboard.json", "alerts.yml")]
PAGE = "query Page { customers(first: 5) { nodes { number } } }"
COSTLY = "{ customers(first: 100) { nodes { orders(first: 100) { nodes { number } } } } }"


async def scrape(http: httpx.AsyncClient, **headers: str) -> dict[tuple, float]:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


COMPILED = pytest.mark.parametrize("settings", ["compiled"], indirect=True)


@COMPILED
async def test_requests_latency_sql_limits_ledger_and_jobs(client, gql, engine):
    customer = await make_customer(engine, last_name="Metric")
    before = await scrape(client)

    assert (await gql.data(PAGE))["customers"]["nodes"]  # compiled
    body = await gql(COSTLY)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    await ledger_post(gql, "ledgerCharge", customer, "10.00")  # a mutation: field by field
    refused = await ledger_post(gql, "ledgerCharge", customer, "-1")  # rolled back: not posted
    assert refused["userErrors"]
    job = await run_bulk(
        gql, customers={"ids": [gid("Customer", customer.id)]}, set={"status": "ARCHIVED"}
    )
    assert job["changed"] == 1
    export = (await gql.data(EXPORT, {"input": {}}))["customerExportStart"]
    auth = {"Authorization": f"Bearer {gql.token}"}
    assert (await client.get(export["job"]["downloadUrl"], headers=auth)).status_code == 200
    taker = await make_customer(engine, last_name="Taker")
    moved_credit = {
        "fromCustomerId": gid("Customer", customer.id),
        "toCustomerId": gid("Customer", taker.id),
        "amount": "1.00",
        "currency": "USD",
        "allowOverdraft": True,
    }
    transfer = (await gql.data(LEDGER_TRANSFER, {"input": moved_credit}))["ledgerTransfer"]
    assert transfer["userErrors"] == []  # two entries in one INSERT: both counted

    imported = (await upload(client, gql.token, CSV.encode()))["data"]["customerImportStart"]
    assert (await import_finished(gql, imported["job"]["id"]))["created"] == 2

    after = await scrape(client)
    total = "customer_graph_requests_total"
    page = dict(operation="Page", operation_type="query", read_path="compiled", code="OK")
    assert moved(before, after, total, **page) == 1
    costly = dict(operation_type="query", read_path="field_by_field", code="QUERY_TOO_COSTLY")
    assert moved(before, after, total, operation="-", **costly) == 1
    writes = dict(operation_type="mutation", read_path="field_by_field", code="OK")
    assert moved(before, after, total, operation="-", **writes) >= 3
    rejected = "customer_graph_rejected_requests_total"
    assert moved(before, after, rejected, code="QUERY_TOO_COSTLY") == 1
    latency = "customer_graph_request_duration_seconds"
    assert moved(before, after, f"{latency}_count", operation="Page", read_path="compiled") == 1
    assert 0 < moved(before, after, f"{latency}_sum", operation="Page", read_path="compiled") < 5
    # The compiled page: the token lookup and the one statement.
    statements = "customer_graph_sql_statements_per_request"
    assert moved(before, after, f"{statements}_count", read_path="compiled") == 1
    assert moved(before, after, f"{statements}_sum", read_path="compiled") == 2
    sql_seconds = "customer_graph_sql_seconds_per_request_count"
    assert moved(before, after, sql_seconds, read_path="compiled") == 1
    assert moved(before, after, "customer_graph_ledger_postings_total", kind="CHARGE") == 1
    for kind in ("TRANSFER_OUT", "TRANSFER_IN"):
        assert moved(before, after, "customer_graph_ledger_postings_total", kind=kind) == 1
    rows = "customer_graph_job_rows_total"
    assert moved(before, after, rows, job="bulk", outcome="changed") == 1
    assert moved(before, after, rows, job="export", outcome="exported") == 1
    assert moved(before, after, rows, job="import", outcome="created") == 2
    assert moved(before, after, rows, job="import", outcome="rejected") == 1
    assert ("customer_graph_pool_connections", (("state", "idle"),)) in after
    assert ("customer_graph_pool_waiting", ()) in after


@COMPILED
async def test_operation_names_are_capped(client, gql, monkeypatch):
    monkeypatch.setattr(metrics, "OPERATIONS", metrics.BoundedLabel(1))
    before = await scrape(client)
    for name in ("First", "Second", "Third"):
        await gql.data(f"query {name} {{ salesChannels {{ code }} }}")
    after = await scrape(client)
    total = "customer_graph_requests_total"
    kept = dict(operation_type="query", read_path="compiled", code="OK")
    assert moved(before, after, total, operation="First", **kept) == 1
    assert moved(before, after, total, operation="other", **kept) == 2
    assert not any(labels and ("operation", "Second") in labels for _, labels in after)


async def test_a_metrics_token_guards_the_scrape(app_engine):
    settings = Settings(database_url="unused", metrics_token="s3cret")
    transport = httpx.ASGITransport(app=create_app(engine=app_engine, settings=settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        refused = await http.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert await scrape(http, authorization="Bearer s3cret")


async def test_metrics_can_be_turned_off(app_engine):
    settings = Settings(database_url="unused", metrics=False)
    transport = httpx.ASGITransport(app=create_app(engine=app_engine, settings=settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/metrics")).status_code == 404


@COMPILED
async def test_open_subscriptions_and_events_delivered(app_engine, engine, settings, admin_token):
    customer = await make_customer(engine)
    app = create_app(engine=app_engine, settings=settings)
    async with serve(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            before = await scrape(http)
            async with Client.connect(address, admin_token) as ws:
                await ws.subscribe(ALL, {})
                for _ in range(100):  # the subscription is open once the hub listens
                    during = await scrape(http)
                    if moved(before, during, "customer_graph_subscriptions_open") == 1:
                        break
                    await asyncio.sleep(0.05)
                assert moved(before, during, "customer_graph_subscriptions_open") == 1
                # The gauge counts from the operation's start; the subscription reads
                # "from now" a moment later: an event recorded in between is before it.
                # Record until one arrives; only what arrives is counted.
                for _ in range(20):
                    async with engine.begin() as conn:
                        await record(conn, customer.id, "NOTE_ADDED", "hello", actor_id=None)
                    if not await ws.nothing_within(1.0):
                        break
                else:
                    raise AssertionError("no event reached the subscriber")
            for _ in range(100):  # closed: the operation ends on the server soon after
                after = await scrape(http)
                if moved(before, after, "customer_graph_subscriptions_open") == 0:
                    break
                await asyncio.sleep(0.05)
    assert moved(before, after, "customer_graph_subscriptions_open") == 0
    assert moved(before, after, "customer_graph_subscription_events_total") == 1


async def test_the_dashboard_and_alerts_name_real_metrics(client):
    """deploy/ names only families /metrics serves (a renamed metric breaks this test)."""
    exposition = (await client.get("/metrics")).text
    named = set()
    for text in DEPLOY_FILES:
        named |= set(re.findall(r"customer_graph_[a-z_]+", text))
    assert len(named) >= 10
    for name in named:
        family = re.sub(r"_(bucket|sum|count)$", "", name)  # a histogram's series
        assert f"# TYPE {family} " in exposition, name


def test_serve_keeps_the_multiprocess_files_in_memory(monkeypatch):
    """Every count is a write to a memory-mapped file: on a disk, writeback stalls them."""
    import os
    import shutil

    from server.cli import _metrics_dir

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    made, ours = _metrics_dir()
    try:
        assert ours
        if os.path.isdir("/dev/shm"):
            assert made.startswith("/dev/shm/customer-graph-metrics-")
    finally:
        shutil.rmtree(made, ignore_errors=True)
