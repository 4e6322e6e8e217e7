"""What row-level security costs: the nested customer page with RLS on and off, in process.

    python -m bench.rls [--rounds 10] [--pages 20]

Reuses bench.compare's database ($CUSTOMER_GRAPH_BENCH_DIR; run bench.compare first to
seed it), gives every tenth customer to a new sales rep, then reads `--pages` keyset
pages of bench.compare's page through the app (httpx ASGITransport, the application role)
as an ADMIN and as that rep, on both read paths, alternating rounds with row-level
security enabled and disabled (ALTER TABLE … DISABLE ROW LEVEL SECURITY, as the owner) so
both see the same load. Prints the median milliseconds per page. Both sides run the
per-transaction `cg_set_viewer`; what it adds is counted in round trips, not timed here.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from bench.compare import BENCH_DIR, OURS
from server.app import create_app
from server.database import EmbeddedPostgres, ensure_database, make_engine
from server.migrate import upgrade
from server.runtime import APP_ROLE, with_user
from server.settings import Settings
from server.users import create_user

TABLES = (
    "customer address custom_field_value customer_sales_channel orders order_line"
    " ledger_transaction timeline_event tax_exemption_certificate payment_method account"
).split()


async def set_rls(owner, on: bool) -> None:
    async with owner.begin() as conn:
        for table in TABLES:
            verb = "ENABLE" if on else "DISABLE"
            await conn.execute(text(f"ALTER TABLE {table} {verb} ROW LEVEL SECURITY"))


async def tokens(url: str, owner) -> tuple[str, str]:
    """An admin's token and a new rep's, the rep given every tenth customer."""
    stamp = time.time_ns()
    admin = await create_user(url, email=f"rls-{stamp}@bench.example", role="ADMIN")
    rep_email = f"rls-rep-{stamp}@bench.example"
    rep = await create_user(url, email=rep_email, role="SALES_REP")
    async with owner.begin() as conn:
        await conn.execute(
            text(
                "UPDATE customer SET sales_rep_id = (SELECT id FROM app_user WHERE email = :e)"
                " WHERE id % 10 = 0"
            ),
            {"e": rep_email},
        )
    async with owner.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE customer"))
    return admin, rep


async def page_cursors(client: httpx.AsyncClient, token: str, pages: int) -> list:
    out, after = [], None
    for _ in range(pages):
        out.append(after)
        body = (await post(client, token, after)).json()
        info = body["data"]["customers"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    return out


async def post(client: httpx.AsyncClient, token: str, after) -> httpx.Response:
    r = await client.post(
        "/graphql",
        json={"query": OURS, "variables": {"after": after}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert "errors" not in r.json(), r.text[:500]
    return r


async def run(url: str, rounds: int, pages: int) -> None:
    owner = make_engine(url, pool_size=2)
    app_engine = make_engine(with_user(url, APP_ROLE), pool_size=10)
    try:
        admin, rep = await tokens(url, owner)
        for compiled in (True, False):
            settings = Settings(database_url=url, compiled_reads=compiled)
            app = create_app(engine=app_engine, settings=settings)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench"
            ) as client:
                for who, token in (("ADMIN", admin), ("SALES_REP", rep)):
                    cursors = await page_cursors(client, token, pages)
                    times: dict[bool, list[float]] = {True: [], False: []}
                    for _ in range(rounds):
                        for on in (True, False):
                            await set_rls(owner, on)
                            for after in cursors:
                                started = time.perf_counter()
                                await post(client, token, after)
                                times[on].append((time.perf_counter() - started) * 1000)
                    await set_rls(owner, True)
                    on, off = (statistics.median(times[x]) for x in (True, False))
                    path = "compiled" if compiled else "field-by-field"
                    print(
                        f"| {path} | {who} | {len(cursors)} | {off:.1f} | {on:.1f} |"
                        f" {(on - off) / off * 100:+.1f} % |",
                        flush=True,
                    )
    finally:
        await set_rls(owner, True)
        await owner.dispose()
        await app_engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.rls", description=__doc__)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--pages", type=int, default=20)
    p.add_argument(
        "--data-dir",
        type=Path,
        default=BENCH_DIR,
    )
    args = p.parse_args()
    print("| path | viewer | pages | RLS off ms | RLS on ms | cost |")
    print("| --- | --- | --- | --- | --- | --- |")
    embedded = EmbeddedPostgres(args.data_dir / "pgdata")
    try:
        url = ensure_database(embedded, "customer_graph")
        upgrade(url)
        asyncio.run(run(url, args.rounds, args.pages))
    finally:
        embedded.stop()


if __name__ == "__main__":
    main()
