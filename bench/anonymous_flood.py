"""Anonymous flood: does a worker grow when nobody signs in? And how fast is a fragment
bomb refused on the compiled path?

    python -m bench.anonymous_flood [--requests 1500] [--size 4000]

Starts a throwaway embedded PostgreSQL, builds the app in-process (compiled reads on),
then sends `--requests` requests with no token or an unknown one, each a distinct
document of about `--size` bytes, registered as an APQ (query + sha256 hash; every
tenth by GET). Prints the process RSS before and after (after a warm-up and
`gc.collect()`), and the front's cache sizes. Then times an admin request with a
~20 KB document of 400 fragments, each with an alias (refused: TOO_MANY_ALIASES), the
median of five distinct copies (`--requests 0` for that alone).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import logging
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import psutil

FIELDS = "number firstName lastName companyName email phone createdAt"


def document(i: int, size: int) -> str:
    """A valid document of about `size` bytes, distinct per `i`: many small operations
    (cheap to validate, unlike one selection of repeated fields)."""
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        name = f"Flood{i}_{len(parts)}"
        parts.append(f"query {name} {{ customers(first: 5) {{ nodes {{ {FIELDS} }} }} }}\n")
    return "".join(parts)


def fragment_bomb(run: int = 0) -> str:
    """Distinct per `run` (a comment), so no cache answers it."""
    spreads = " ".join(f"...F{i}" for i in range(400))
    fragments = " ".join(f"fragment F{i} on Customer {{ a{i}: number }}" for i in range(400))
    return f"{{ customers {{ nodes {{ {spreads} }} }} }} {fragments} # {run}"


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def caches(app) -> str:
    front = app.routes[0].app
    out = []
    for name in ("documents", "persisted", "statements", "reduced"):
        cache = getattr(front, name)
        size = getattr(cache, "currsize", None)
        out.append(f"{name}={len(cache)}" + (f" ({size / 2**20:.1f} MB)" if size else ""))
    return ", ".join(out)


async def flood(app, requests: int, size: int) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
        for i in range(requests):
            query = document(i, size)
            ext = {"persistedQuery": {"version": 1, "sha256Hash": sha(query)}}
            op = f"Flood{i}_0"
            headers = {"Authorization": "Bearer cg_unknown"} if i % 2 else {}
            if i % 10 == 9:
                params = {
                    "query": query,
                    "operationName": op,
                    "extensions": orjson.dumps(ext).decode(),
                }
                r = await c.get("/graphql", params=params, headers=headers)
            else:
                r = await c.post(
                    "/graphql",
                    json={"query": query, "operationName": op, "extensions": ext},
                    headers=headers,
                )
            assert r.status_code < 500, r.text


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def bomb(app, token: str, run: int) -> tuple[float, str]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
        start = time.perf_counter()
        r = await c.post(
            "/graphql",
            json={"query": fragment_bomb(run)},
            headers={"Authorization": f"Bearer {token}"},
        )
        took = time.perf_counter() - start
    return took, r.json()["errors"][0]["extensions"]["code"]


async def main_async(args, url: str) -> None:
    from resolvers.tokens import issue_token
    from server.app import create_app
    from server.database import make_engine
    from server.settings import Settings
    from tests.factories import make_user

    logging.disable(logging.CRITICAL)  # every request is refused UNAUTHENTICATED, logged
    engine = make_engine(url, pool_size=5)
    app = create_app(engine=engine, settings=Settings(database_url=url, compiled_reads=True))
    await flood(app, 50, args.size)  # warm-up: imports, pools, allocator arenas
    before = rss_mb()
    print(f"RSS before: {before:.1f} MB   caches: {caches(app)}")
    start = time.perf_counter()
    await flood(app, args.requests, args.size)
    took = time.perf_counter() - start
    after = rss_mb()
    print(
        f"RSS after {args.requests} anonymous requests of ~{args.size:,} bytes "
        f"({took:.1f} s): {after:.1f} MB  (+{after - before:.1f} MB)   caches: {caches(app)}"
    )
    user_id, _ = await make_user(engine, role="ADMIN", email="bench@example.com")
    token = await issue_token(engine, user_id)
    size = len(fragment_bomb())
    loaders = create_app(engine=engine, settings=Settings(database_url=url, compiled_reads=False))
    for name, each in (("compiled", app), ("field-by-field", loaders)):
        took, code = sorted([await bomb(each, token, run) for run in range(5)])[2]
        print(f"400-fragment document ({size:,} bytes), {name} path: {code}, median {took:.3f} s")
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--size", type=int, default=4000)
    args = parser.parse_args()
    from server.database import EmbeddedPostgres, ensure_database
    from server.migrate import upgrade

    tmp = Path(tempfile.mkdtemp(prefix="customer-graph-flood-"))
    embedded = EmbeddedPostgres(tmp / "pgdata", ephemeral=True)
    try:
        url = ensure_database(embedded, "cg_flood")
        upgrade(url)
        asyncio.run(main_async(args, url))
    finally:
        embedded.stop()


if __name__ == "__main__":
    main()
