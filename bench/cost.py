"""The heaviest request a sales rep can get accepted, timed on both read paths.
`python -m bench.cost [--customers 1000] [--max-cost N]`.

Seeds (or reuses) N demo customers in its own embedded database, gives a new rep the
customers of the busiest seeded rep and attaches them all to one account (what
`attachCustomerToAccount` lets a rep do), then builds request shapes that fan out as far
as the cost limit allows (every scalar field, aliases up to the limit) and times each
accepted one in-process on the compiled and the field-by-field path. A benchmark, not a
test: it prints cost, list items returned, bytes, and of 5 runs per path the median and
slowest wall time and the median CPU time of this process (the app; PostgreSQL excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from pathlib import Path

import httpx
from graphql import GraphQLObjectType, get_named_type, is_leaf_type, parse
from sqlalchemy import text

from server.api import schema
from server.app import create_app
from server.database import make_engine
from server.limits import query_cost
from server.runtime import open_database
from server.seed import seed
from server.settings import Settings
from server.users import create_user

DATA_DIR = Path("/tmp/customer-graph-cost-bench")


def scalars(type_name: str) -> str:
    """Every argument-free leaf field of a type."""
    gtype = schema._schema.type_map[type_name]
    assert isinstance(gtype, GraphQLObjectType)
    return " ".join(
        name
        for name, f in gtype.fields.items()
        if not f.args and is_leaf_type(get_named_type(f.type)) and name != "customFields"
    )


def shapes() -> dict[str, str]:
    c = scalars("Customer")
    o = scalars("Order")
    line = scalars("OrderLine")
    ledger = scalars("LedgerTransaction")
    event = scalars("TimelineEvent")
    money = "{ amount currency }"
    return {
        "account.customers": f"customers(first: NN) {{ nodes {{ {c} account {{ customers "
        f"{{ {c} }} }} }} }}",
        "wide customers": f"customers(first: NN) {{ nodes {{ {c} account {{ customers {{ {c} "
        f"salesRep {{ {scalars('User')} }} account {{ {scalars('Account')} billingContact "
        f"{{ name email phone }} billingAddress {{ {scalars('BillingAddress')} }} }} "
        f"taxStatus {{ {scalars('TaxStatus')} }} mergedInto {{ {c} }} }} }} }} }}",
        "ledger": f"customers(first: NN) {{ nodes {{ {c} ledgerTransactions(first: 100) "
        f"{{ nodes {{ {ledger} amount {money} balanceAfter {money} }} }} }} }}",
        "timeline": f"customers(first: NN) {{ nodes {{ {c} timeline(first: 100) "
        f"{{ nodes {{ {event} actor {{ email }} }} }} }} }}",
        "orders+lines": f"customers(first: NN) {{ nodes {{ {c} orders(first: 10) {{ nodes {{ {o} "
        f"total {money} lines {{ {line} unitPrice {money} lineTotal {money} }} }} }} }} }}",
        "orders": f"customers(first: NN) {{ nodes {{ {c} orders(first: 100) "
        f"{{ nodes {{ {o} total {money} subtotal {money} customer {{ {c} }} }} }} }} }}",
        "customer lists": f"customers(first: NN) {{ nodes {{ {c} addresses {{ "
        f"{scalars('Address')} }} salesChannels {{ code name }} balances {money} "
        f"customFields {{ key label value }} }} }}",
    }


def heaviest(body: str, max_cost: int, max_aliases: int) -> tuple[str, int]:
    """The body (its root page NN as large as fits) under as many aliases as the cost and
    alias limits allow: the accepted request that asks for the most."""
    best = ("{ " + body.replace("NN", "1") + " }", max_cost + 1)
    best_total = 0
    for n in range(100, 0, -1):
        one = query_cost(parse("{ " + body.replace("NN", str(n)) + " }"), None, None)
        k = min(max_aliases, max_cost // max(one, 1))
        if k and k * one > best_total:
            query = " ".join(f"a{i}: {body.replace('NN', str(n))}" for i in range(k))
            best, best_total = ("{ " + query + " }", k * one), k * one
    return best


def items(value) -> int:
    if isinstance(value, list):
        return len(value) + sum(items(v) for v in value)
    if isinstance(value, dict):
        return sum(items(v) for v in value.values())
    return 0


async def prepare(url: str, customers: int) -> str:
    engine = make_engine(url, pool_size=2)
    async with engine.connect() as conn:
        have = (await conn.execute(text("SELECT count(*) FROM customer"))).scalar()
    await engine.dispose()
    if have != customers:
        await seed(url, customers=customers, reset=True)
    token = await create_user(url, email=f"rep-{time.time_ns()}@example.com", role="SALES_REP")
    engine = make_engine(url, pool_size=2)
    async with engine.begin() as conn:
        rep = (
            await conn.execute(text("SELECT id FROM app_user ORDER BY id DESC LIMIT 1"))
        ).scalar()
        busiest = (
            await conn.execute(
                text(
                    "SELECT sales_rep_id FROM customer WHERE sales_rep_id IS NOT NULL"
                    " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
                )
            )
        ).scalar()
        await conn.execute(
            text("UPDATE customer SET sales_rep_id = :rep WHERE sales_rep_id = :busiest"),
            {"rep": rep, "busiest": busiest},
        )
        account = (
            await conn.execute(
                text("SELECT min(account_id) FROM customer WHERE sales_rep_id = :rep"),
                {"rep": rep},
            )
        ).scalar()
        if account is None:
            account = (await conn.execute(text("SELECT min(id) FROM account"))).scalar()
        await conn.execute(
            text("UPDATE customer SET account_id = :a WHERE sales_rep_id = :rep"),
            {"a": account, "rep": rep},
        )
        n = (
            await conn.execute(
                text("SELECT count(*) FROM customer WHERE sales_rep_id = :rep"), {"rep": rep}
            )
        ).scalar()
    await engine.dispose()
    print(f"rep sees {n} customers, all attached to account {account}")
    return token


async def run(url: str, token: str, settings: Settings) -> None:
    engine = make_engine(url, pool_size=4)
    headers = {"Authorization": f"Bearer {token}"}
    clients = {}
    for path, compiled in (("compiled", True), ("field-by-field", False)):
        app = create_app(
            engine=engine, settings=dataclasses.replace(settings, compiled_reads=compiled)
        )
        clients[path] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=300
        )
    print(f"max_cost {settings.max_cost:,}")
    for name, body in shapes().items():
        query, cost = heaviest(body, settings.max_cost, settings.max_aliases)
        if cost > settings.max_cost:
            print(f"{name:16} refused: cost {cost:,}")
            continue
        for path, client in clients.items():
            walls, cpus, size, count, served = [], [], 0, 0, "?"
            for _ in range(5):
                started, cpu = time.perf_counter(), time.process_time()
                r = await client.post("/graphql", json={"query": query}, headers=headers)
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
                payload = r.json()
                assert "errors" not in payload, payload["errors"][:1]
                size, count = len(r.content), items(payload["data"])
                served = r.headers.get("x-customer-graph-path", "strawberry")
            print(
                f"{name:16} {path:15} cost {cost:7,} items {count:7,} {size / 1e6:6.2f} MB "
                f"wall median {sorted(walls)[2]:5.2f} s slowest {max(walls):5.2f} s, "
                f"app CPU median {sorted(cpus)[2]:5.2f} s ({served})",
                flush=True,
            )
    for client in clients.values():
        await client.aclose()
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--max-cost", type=int, default=None)
    args = parser.parse_args()
    settings = Settings(data_dir=DATA_DIR, database_url=None)
    db = open_database(settings)
    try:
        if args.max_cost is not None:
            settings = dataclasses.replace(settings, max_cost=args.max_cost)
        token = asyncio.run(prepare(db.url, args.customers))
        asyncio.run(run(db.url, token, dataclasses.replace(settings, database_url=db.url)))
    finally:
        db.stop()


if __name__ == "__main__":
    main()
