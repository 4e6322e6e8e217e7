"""Primary vs replica: the nested customer page through the app. `python -m bench.replicas`.

Starts a primary and a streaming replica (tests/replica.py: both embedded PostgreSQL on
this machine), seeds N customers (default 2,000), then sends the same nested pages
(bench/nested_page.py's query, 50 customers each) through the app in process, alternately
to an app on the primary alone and to one reading from the replica, for both read paths.
Prints the median and p90 latency of each and which server answered (statements counted
on the replica's engine). Indicative only: both servers share the machine's cores, so
this shows what a read costs on each, not the capacity a replica adds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from bench.nested_page import QUERY
from server.app import create_app
from server.database import StatementCounter, make_engine
from server.seed import seed
from server.settings import Settings
from server.users import create_user
from tests.replica import ReplicaCluster


async def _run(customers: int, rounds: int) -> None:
    cluster = await asyncio.to_thread(lambda: ReplicaCluster().start())
    try:
        await seed(cluster.primary_url, customers=customers)
        token = await create_user(cluster.primary_url, email="bench@example.com", role="ADMIN")
        await asyncio.to_thread(cluster.caught_up, 60.0)
        primary = make_engine(cluster.primary_app_url, pool_size=5)
        for path in ("compiled", "field_by_field"):
            apps = {}
            for name, urls in (("primary", ()), ("replica", (cluster.replica_app_url,))):
                settings = Settings(
                    database_url="unused",
                    compiled_reads=path == "compiled",
                    max_cost=1_000_000,
                    cost_budget=0,
                    replica_urls=urls,
                )
                app = create_app(engine=primary, settings=settings)
                replicas = app.state.engine_ref["replicas"]
                await replicas.check()
                replicas.start()
                apps[name] = (app, replicas)
            on_replica = StatementCounter(apps["replica"][1].replicas[0].engine)
            timings: dict[str, list[float]] = {"primary": [], "replica": []}
            clients = {
                name: httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://bench"
                )
                for name, (app, _) in apps.items()
            }
            headers = {"authorization": f"Bearer {token}"}
            for i in range(rounds + 3):  # the first three warm caches and pools
                for name, client in clients.items():
                    started = time.perf_counter()
                    response = await client.post("/graphql", json={"query": QUERY}, headers=headers)
                    elapsed = time.perf_counter() - started
                    assert response.status_code == 200 and b'"errors"' not in response.content
                    if i >= 3:
                        timings[name].append(elapsed * 1000)
            for name, values in timings.items():
                values.sort()
                print(
                    f"{path:15} {name:8} median {statistics.median(values):7.1f} ms"
                    f"  p90 {values[int(len(values) * 0.9)]:7.1f} ms  ({len(values)} pages)"
                )
            served = [s for s in on_replica.statements if "pg_is_in_recovery" not in s]
            print(f"{path:15} request statements on the replica: {len(served)}")
            for client in clients.values():
                await client.aclose()
            for _, replicas in apps.values():
                await replicas.close()
        await primary.dispose()
    finally:
        await asyncio.to_thread(cluster.close)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(_run(args.customers, args.rounds))


if __name__ == "__main__":
    main()
