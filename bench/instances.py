"""One instance against two on one database: `serve` processes of 1 worker each.

    python -m bench.instances [--customers 20000] [--shape c] [--rounds 3] [--duration 5]

Uses bench.compare's database (seeded once), shapes and wrk script: the shape at 10
connections on one instance, then 5 connections on each of two instances at once,
alternating for `--rounds`, and prints req/s (summed over both) and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import shapes as S
from bench.compare import (
    BENCH_DIR,
    WRK_LUA,
    _draw_params,
    ensure_wrk,
    open_bench_database,
    start_service,
    write_bodies,
    wrk,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instances", description=__doc__)
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--shape", default="c", choices=["c", "d"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--port", type=int, default=8531)
    p.add_argument(
        "--data-dir",
        type=Path,
        default=BENCH_DIR,
    )
    args = p.parse_args(argv)
    ensure_wrk()
    embedded, url, token = open_bench_database(args.data_dir, args.customers)
    tmp = Path(tempfile.mkdtemp(prefix="cg-instances-"))
    lua = tmp / "shapes.lua"
    lua.write_text(WRK_LUA)
    a, b = args.port, args.port + 1
    # The second starts without migrating, as a deployment's second instance would.
    procs = [
        start_service(url, a, 1),
        start_service(url, b, 1, env_extra={"CUSTOMER_GRAPH_MIGRATE": "0"}),
    ]
    try:
        params = asyncio.run(_draw_params(url, [args.shape], 1000))[args.shape]
        body = write_bodies(tmp / "bodies.jsonl", S.SHAPES[args.shape].ours, [v[0] for v in params])
        auth = f"Bearer {token}"
        for port in (a, b):
            wrk(port, body, auth, 10, 2, lua)
        one, two = [], []
        for r in range(args.rounds):
            got = wrk(a, body, auth, 10, args.duration, lua, seed=r, tag=f"one{r}")
            one.append(got["requests"] / got["seconds"])
            with ThreadPoolExecutor(2) as pool:
                runs = [
                    pool.submit(wrk, port, body, auth, 5, args.duration, lua, seed=r + k)
                    for k, port in enumerate((a, b))
                ]
                two.append(sum(f.result()["requests"] / f.result()["seconds"] for f in runs))
        mean_one, mean_two = sum(one) / len(one), sum(two) / len(two)
        print(f"shape {args.shape}, 10 connections, req/s per round")
        print("  one instance: " + " / ".join(f"{x:,.1f}" for x in one))
        print("  two instances (5 connections each): " + " / ".join(f"{x:,.1f}" for x in two))
        print(f"  mean {mean_one:,.1f} against {mean_two:,.1f}: {mean_two / mean_one:.2f}x")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
        embedded.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
