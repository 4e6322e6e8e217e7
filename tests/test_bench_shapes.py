"""bench.compare's shapes: our queries answer, the normalisers see the same data as the
peer would return, and the check fails when one value differs.

The peer's answer is built here from SQL over the same rows, in PostGraphile's shape (its
field names, numbers as strings), so the equality check runs without node. The end-to-end
run against the real peer (`python -m bench.compare` in a subprocess) needs node, npm's
postgraphile and wrk: `BENCH_PEER=1 pytest tests/test_bench_shapes.py -k peer`.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import compare
from bench import shapes as S
from bench.seed import seed
from server.app import create_app
from server.settings import Settings
from tests.conftest import serve

BOTH_PATHS = True  # our answers are read on both read paths
CUSTOMERS = 300
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """conftest's, with the cost limit the benchmark serves with (its pages cost more than
    the default 6,000)."""
    path = getattr(request, "param", "field_by_field")
    return Settings(
        database_url="unused", debug=False, compiled_reads=path == "compiled", max_cost=1_000_000
    )


@pytest.fixture
async def seeded(engine: AsyncEngine) -> AsyncEngine:
    await seed(engine, CUSTOMERS)
    return engine


async def _rows(engine: AsyncEngine, sql: str, **params) -> list:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).mappings().all()


async def _peer_customer(engine: AsyncEngine, c, orders: int, lines: bool) -> dict:
    """One customer as PostGraphile prints it (numbers as strings, its field names)."""
    found = await _rows(
        engine,
        "SELECT * FROM orders WHERE customer_id = :id ORDER BY placed_at DESC, id DESC LIMIT :n",
        id=c["id"],
        n=orders,
    )
    out_orders = []
    for o in found:
        order = {
            "number": o["number"],
            "status": o["status"],
            "placedAt": o["placed_at"].isoformat(),
            "total": str(o["total"]),
            "currency": o["currency"],
        }
        if lines:
            rows = await _rows(
                engine,
                "SELECT * FROM order_line WHERE order_id = :id ORDER BY position, id",
                id=o["id"],
            )
            order["orderLinesByOrderId"] = {
                "nodes": [
                    {
                        "position": r["position"],
                        "sku": r["sku"],
                        "description": r["description"],
                        "quantity": r["quantity"],
                        "lineTotal": str(r["line_total"]),
                    }
                    for r in rows
                ]
            }
        out_orders.append(order)
    return {
        "number": c["number"],
        "firstName": c["first_name"],
        "lastName": c["last_name"],
        "email": c["email"],
        "phone": c["phone"],
        "status": c["status"],
        "ordersByCustomerId": {"nodes": out_orders},
    }


async def test_light_page_is_the_same_data(seeded: AsyncEngine, gql) -> None:
    page = await _rows(seeded, "SELECT * FROM customer ORDER BY sort_name, id LIMIT 50")
    peer = []
    for c in page:
        node = await _peer_customer(seeded, c, 10, lines=False)
        addresses = await _rows(
            seeded, "SELECT * FROM address WHERE customer_id = :id ORDER BY id", id=c["id"]
        )
        ledger = await _rows(
            seeded,
            "SELECT * FROM ledger_transaction WHERE customer_id = :id ORDER BY id DESC LIMIT 10",
            id=c["id"],
        )
        node["addressesByCustomerId"] = {
            "nodes": [{"city": a["city"], "postalCode": a["postal_code"]} for a in addresses]
        }
        node["ledgerTransactionsByCustomerId"] = {
            "nodes": [{"kind": t["kind"], "amount": str(t["amount"])} for t in ledger]
        }
        peer.append(node)
    assert sum(len(n["ledgerTransactionsByCustomerId"]["nodes"]) for n in peer) > 100

    ours = S.light_ours(await gql.data(S.LIGHT_OURS, {"after": None}))
    assert len(ours) == 50
    assert S.difference(ours, S.light_peer({"allCustomers": {"nodes": peer}})) is None

    # The check can fail: one ledger amount off by a thousandth is found, and named.
    i = next(i for i, n in enumerate(peer) if n["ledgerTransactionsByCustomerId"]["nodes"])
    peer[i]["ledgerTransactionsByCustomerId"]["nodes"][0]["amount"] += "1"
    found = S.difference(ours, S.light_peer({"allCustomers": {"nodes": peer}}))
    assert found is not None and found.startswith(f"[{i}].ledger[0][1]:"), found


async def test_mobile_view_is_the_same_data(seeded: AsyncEngine, gql) -> None:
    params = await S.mobile_params(seeded, 5, random.Random(3))
    assert len(params) == 5
    with_lines = 0
    for ours_vars, peer_vars in params:
        (c,) = await _rows(
            seeded, "SELECT * FROM customer WHERE id = :id", id=int(peer_vars["rowId"])
        )
        peer = await _peer_customer(seeded, c, 5, lines=True)
        ours = S.mobile_ours(await gql.data(S.MOBILE_OURS, ours_vars))
        assert S.difference(ours, S.mobile_peer({"customerByRowId": peer})) is None
        with_lines += sum(len(o[5]) for o in ours["orders"])
        if peer["ordersByCustomerId"]["nodes"]:
            peer["ordersByCustomerId"]["nodes"][-1]["placedAt"] = "2001-01-01T00:00:00+00:00"
            found = S.difference(ours, S.mobile_peer({"customerByRowId": peer}))
            assert found is not None and ".orders[" in found, found
    assert with_lines > 0
    # A customer the peer does not find (None) is not the same as one ours finds.
    assert S.difference(ours, S.mobile_peer({"customerByRowId": None})) is not None


async def test_search_is_the_same_data_as_the_peers_function(seeded: AsyncEngine, gql) -> None:
    params = await S.search_params(seeded, 4, random.Random(5))
    assert params, "no prefix narrows the seeded names to 50 or fewer"
    async with seeded.connect() as conn:
        trans = await conn.begin()  # the function lives only in this transaction
        await conn.exec_driver_sql(S.PEER_SEARCH_FUNCTION)
        for ours_vars, peer_vars in params:
            rows = (
                await conn.execute(
                    text(
                        "SELECT number, first_name, last_name, email"
                        " FROM bench_customer_search(:prefix, :country) LIMIT 50"
                    ),
                    peer_vars,
                )
            ).all()
            peer = {
                "benchCustomerSearch": {
                    "nodes": [
                        {"number": n, "firstName": f, "lastName": la, "email": e}
                        for n, f, la, e in rows
                    ]
                }
            }
            ours = S.search_ours(await gql.data(S.SEARCH_OURS, ours_vars))
            assert 1 <= len(ours) <= 50
            assert S.difference(ours, S.search_peer(peer)) is None
            # One match fewer on the peer's side is a difference.
            peer["benchCustomerSearch"]["nodes"].pop()
            assert S.difference(ours, S.search_peer(peer)) is not None
        await trans.rollback()
    # Ours asking to refine (too many matches) never equals a list of matches.
    refine = {"customerSearch": {"__typename": "RefineSearch"}}
    assert S.difference(S.search_ours(refine), []) is not None


async def test_writes_answer_without_errors(seeded: AsyncEngine, gql) -> None:
    (ours_vars, _), *_ = S.create_params()
    created = S.create_ours(await gql.data(S.CREATE_OURS, compare._fill(ours_vars, "t-1")))
    peer_like = {
        "createCustomer": {
            "customer": {
                **S.create_input("t-2"),
                "kind": "INDIVIDUAL",
                "status": "ACTIVE",
            }
        }
    }
    assert S.difference(created, S.create_peer(peer_like)) is None
    # The same email again is a userError, which the check reports as a difference.
    again = S.create_ours(await gql.data(S.CREATE_OURS, compare._fill(ours_vars, "t-1")))
    assert S.difference(again, S.create_peer(peer_like)) is not None

    params = await S.transfer_params(seeded, 3, random.Random(1))
    for ours_vars, _ in params:
        done = S.transfer_ours(await gql.data(S.TRANSFER_OURS, ours_vars))
        assert S.difference(done, S.TRANSFER_EXPECTED) is None
    assert await S.remove_created(seeded) == 1


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
async def test_wrk_slice_counts_error_answers(seeded: AsyncEngine, app_engine, settings, gql):
    """A slice's failures: answers with `errors` count, good answers do not."""
    app = create_app(engine=app_engine, settings=settings)
    tmp = Path(tempfile.mkdtemp(prefix="cg-wrk-"))
    try:
        lua = tmp / "s.lua"
        lua.write_text(compare.WRK_LUA)
        good = compare.write_bodies(tmp / "good.jsonl", S.LIGHT_OURS, [{"after": None}])
        bad = compare.write_bodies(
            tmp / "bad.jsonl", S.MOBILE_OURS, [{"id": "not-an-id"}, {"id": S.gid("Order", 1)}]
        )
        async with serve(app) as address:
            port = int(address.rsplit(":", 1)[1])
            auth = f"Bearer {gql.token}"
            ok = await asyncio.to_thread(compare.wrk, port, good, auth, 2, 1, lua)
            failed = await asyncio.to_thread(compare.wrk, port, bad, auth, 2, 1, lua)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert ok["requests"] > 0 and ok["failures"] == 0, ok
    # wrk's histogram also holds a few answers that arrived as the slice stopped.
    assert abs(sum(ok["latency"].values()) - ok["requests"]) <= max(10, ok["requests"] // 10)
    assert failed["requests"] > 0 and failed["failures"] == failed["requests"], failed
    assert '"errors":' in failed["first_failure"]
    tally = compare.Tally()
    tally.add(ok)
    assert not tally.failed and tally.percentile(50) <= tally.percentile(99)
    tally.add(failed)
    assert tally.failed


async def test_a_metered_slice_counts_the_cpu_of_its_side_and_of_postgresql(seeded):
    """bench.compare's CPU columns: the side's process tree and PostgreSQL's processes."""

    def busy() -> dict:
        until = time.process_time() + 0.2
        while time.process_time() < until:
            pass
        return {
            "requests": 10,
            "seconds": 1.0,
            "socket_errors": 0,
            "failures": 0,
            "first_failure": "",
            "latency": {},
        }

    got = compare.metered(busy, lambda: compare.cpu_seconds(roots=[os.getpid()]))
    assert 0.15 <= got["cpu_side"] < 2, got
    assert got["cpu_postgres"] >= 0
    if not compare.cpu_seconds(name="postgres"):  # TEST_DATABASE_URL on another host
        pytest.skip("PostgreSQL's processes are not on this machine")
    async with seeded.connect() as conn:  # PostgreSQL's own CPU shows while it works
        before = compare.cpu_seconds(name="postgres")
        await conn.execute(text("SELECT count(*) FROM generate_series(1, 3000000)"))
        assert compare.spent(before, compare.cpu_seconds(name="postgres")) > 0.05
    # A process that ended meanwhile is left out, never subtracted; a new one counts whole.
    assert compare.spent({1: 5.0, 2: 1.0}, {2: 1.5, 3: 0.25}) == pytest.approx(0.75)
    tally = compare.Tally()
    tally.add(got)
    assert tally.summary()["cpu_ms_per_request"] == pytest.approx(1000 * got["cpu_side"] / 10, 0.01)


@pytest.mark.skipif(
    os.environ.get("BENCH_PEER") != "1", reason="needs node + PostGraphile: set BENCH_PEER=1"
)
def test_peer_end_to_end(tmp_path: Path) -> None:
    """The whole benchmark, small: every shape checked against the real peer and timed."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.compare",
            "--customers",
            "300",
            "--duration",
            "1",
            "--rounds",
            "1",
            "--warmup",
            "1",
            "--pages",
            "10",
            "--data-dir",
            str(tmp_path),
            "--port",
            "8391",
            "--peer-port",
            "5391",
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for key in "abcdef":
        assert f"{key} {S.SHAPES[key].title}: same data" in done.stdout
    assert "| a heavy page | 10 |" in done.stdout
    assert "FAILED" not in done.stdout
