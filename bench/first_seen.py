"""Time per request for variable values the service has not seen yet, in process.

    python -m bench.first_seen [--customers 2000] [--count 200] [--data-dir /tmp/bench-params]

Against bench.compare's database (seeded once), through the app in process (httpx's ASGI
transport, the compiled path): one customer's mobile view by first-seen IDs, then the same
ID repeated; searches by first-seen (prefix, country) pairs; the next keyset page by each
page's cursor. Medians and means per request, in ms. Run it on two checkouts back to back
to compare them (the machine's noise lands on both).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path

import httpx

from bench import shapes as S
from bench.compare import open_bench_database
from server.app import create_app
from server.database import make_engine
from server.settings import Settings

PAGE = """query($after: String) { customers(first: 5, after: $after) {
  pageInfo { hasNextPage endCursor } nodes { number firstName email } } }"""


async def measure(url: str, token: str, count: int) -> dict[str, list[float]]:
    engine = make_engine(url, pool_size=2)
    settings = Settings(
        database_url=url, debug=False, compiled_reads=True, max_cost=10**9, cost_budget=0
    )
    app = create_app(engine=engine, settings=settings)
    rng = random.Random(11)
    warm = 10  # values for warming up, never timed
    mobile = [v for v, _ in await S.mobile_params(engine, count + warm, rng)]
    search = [v for v, _ in await S.search_params(engine, count + warm, rng)]
    headers = {"Authorization": f"Bearer {token}"}
    out: dict[str, list[float]] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def timed(query: str, variables: dict) -> tuple[float, httpx.Response]:
            started = time.perf_counter()
            payload = {"query": query, "variables": variables}
            r = await client.post("/graphql", json=payload, headers=headers)
            took = time.perf_counter() - started
            if r.status_code != 200 or b'"errors"' in r.content:
                raise SystemExit(f"failed: {r.content[:300]!r}")
            return took, r

        for v in mobile[count:]:
            await timed(S.MOBILE_OURS, v)
        for v in search[count:]:
            await timed(S.SEARCH_OURS, v)
        out["c first-seen id"] = [(await timed(S.MOBILE_OURS, v))[0] for v in mobile[:count]]
        out["c repeated id"] = [(await timed(S.MOBILE_OURS, mobile[0]))[0] for _ in range(count)]
        out["d first-seen prefix"] = [(await timed(S.SEARCH_OURS, v))[0] for v in search[:count]]
        times, after = [], None
        for _ in range(count + 1):
            took, r = await timed(PAGE, {"after": after})
            times.append(took)
            after = r.json()["data"]["customers"]["pageInfo"]["endCursor"]
        out["keyset next page"] = times[1:]  # the first page has no cursor
    await engine.dispose()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/bench-params"))
    args = p.parse_args(argv)
    _embedded, url, token = open_bench_database(args.data_dir, args.customers)
    for name, times in asyncio.run(measure(url, token, args.count)).items():
        median, mean = statistics.median(times) * 1000, statistics.mean(times) * 1000
        print(f"{name:20s} median {median:6.2f} ms  mean {mean:6.2f} ms  ({len(times)})")


if __name__ == "__main__":
    main()
