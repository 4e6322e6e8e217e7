"""What `pool_pre_ping` would cost the compiled read path. `python -m bench.pre_ping`.

A throwaway embedded cluster, 20 customers, an admin token; a compiled query of 10
customers sent in-process (httpx ASGITransport, no network but PostgreSQL's Unix socket)
N times per round, alternating the app's engine (`make_engine`: no pre-ping, closed
connections skipped at checkout by asyncpg's own state) with the same engine plus
`pool_pre_ping=True` (a `SELECT 1` round trip per checkout). Prints the median request
time of each round, the best round of each, and the ping's own round trip. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from server.app import create_app
from server.database import EmbeddedPostgres, ensure_database, make_engine
from server.migrate import upgrade
from server.settings import Settings

QUERY = "{ customers(first: 10) { nodes { number displayName email } } }"


async def median_ms(engine, token: str, n: int) -> float:
    settings = Settings(database_url="unused", compiled_reads=True)
    transport = httpx.ASGITransport(app=create_app(engine=engine, settings=settings))
    headers = {"Authorization": f"Bearer {token}"}
    times = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        for _ in range(n):
            start = time.perf_counter()
            response = await http.post("/graphql", json={"query": QUERY}, headers=headers)
            times.append(time.perf_counter() - start)
            assert response.headers.get("x-customer-graph-path") == "compiled", response.text
    return statistics.median(times) * 1000


async def ping_us(engine, n: int) -> float:
    """The round trip pre-ping adds: SQLAlchemy's asyncpg ping (an empty statement)."""
    async with engine.connect() as conn:
        pg = (await conn.get_raw_connection()).driver_connection
        times = []
        for _ in range(n):
            start = time.perf_counter()
            await pg.fetchrow(";")
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


async def run(url: str, rounds: int, n: int) -> None:
    from tests.factories import make_customer, make_user

    plain = make_engine(url, pool_size=2)
    pinged = make_engine(url, pool_size=2)
    pinged.sync_engine.pool._pre_ping = True  # what pool_pre_ping=True sets
    for i in range(20):
        await make_customer(plain, email=f"c{i}@example.com")
    _, token = await make_user(plain, role="ADMIN", email="admin@example.com")
    results: dict[str, list[float]] = {"no pre-ping (checkout listener)": [], "pool_pre_ping": []}
    for r in range(rounds):
        for times, engine in zip(results.values(), (plain, pinged), strict=True):
            times.append(await median_ms(engine, token, n))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f} ms" for k, v in results.items()))
    for name, times in results.items():
        print(f"best round median, {name}: {min(times):.3f} ms")
    print(f"the ping alone: median {await ping_us(plain, 20 * n):.0f} µs")
    await plain.dispose()
    await pinged.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-n", type=int, default=500)
    args = parser.parse_args()
    embedded = EmbeddedPostgres(Path(tempfile.mkdtemp()) / "pgdata", ephemeral=True)
    try:
        url = ensure_database(embedded, "bench_pre_ping")
        upgrade(url)
        asyncio.run(run(url, args.rounds, args.n))
    finally:
        embedded.stop()


if __name__ == "__main__":
    main()
