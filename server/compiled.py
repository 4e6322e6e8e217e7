"""POST/GET /graphql in front of Strawberry: persisted queries and the compiled read path.

For each request: refuse a non-string `operationName`; look the bearer token up; for
someone signed in, resolve an Apollo persisted query (APQ) if one is named, parse and
validate the document (cached per document text), and when the operation is a query
whose whole selection compiles (resolvers/compiled/), run its one statement and send the
statement's bytes (the whole response). Anything else goes to Strawberry unchanged,
which therefore produces every other error response.

Nothing is kept for a request that is not signed in: it registers no persisted query,
fills no cache, and a persisted-query hash alone answers PersistedQueryNotFound whether
or not someone registered it (no oracle for others' queries).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from cachetools import LRUCache
from graphql import DocumentNode, OperationType, get_operation_ast, parse, validate
from graphql.execution.values import get_variable_values

from models.enums import Role
from resolvers.compiled import Statement
from resolvers.compiled.generic import NO_PATHS, compile_reusable
from resolvers.compiled.variables import Mismatch, at, replaced
from resolvers.errors import ErrorCode, is_timeout, is_unavailable
from resolvers.tokens import (
    NOT_BEARER,
    UNKNOWN_TOKEN,
    VIEWER_SETTING_BY_TOKEN_SQL,
    bearer,
    begin_as,
    hash_token,
    keep_viewer_sql,
    viewer_setting_on,
)
from resolvers.viewer import ANONYMOUS, Viewer
from server import mixed, observe, tracing
from server.database import (
    SESSION_GENERIC,
    SESSION_VIEWER,
    UNSURE,
    bare_statement,
    keeping_viewer,
    keeps_viewers,
    stop_keeping_viewers,
)
from server.errors import start_budget
from server.limits import (
    UNSTORABLE,
    document_limit_errors,
    operation_name_errors,
    request_limit_errors,
)
from server.persisted import PENDING_KEY, PersistedQueries
from server.replicas import ENGINE_KEY, LSN_HEADER, parse_lsn, replica_failed

log = logging.getLogger(__name__)

_MISSING = object()
AUTH_KEY = observe.AUTH_KEY  # (viewer | None, token_error | None), reused by get_context
SENT = object()  # _decide sent the compiled answer itself
NOT_FOUND = orjson.dumps(
    {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": ErrorCode.PERSISTED_QUERY_NOT_FOUND},
            }
        ]
    }
)
HASH_MISMATCH = orjson.dumps(
    {
        "errors": [
            {
                "message": "provided sha does not match query",
                "extensions": {"code": ErrorCode.BAD_USER_INPUT},
            }
        ]
    }
)

EXTENSIONS_NOT_OBJECT = orjson.dumps(
    {
        "errors": [
            {
                "message": "`extensions` must be an object.",
                "extensions": {"code": ErrorCode.BAD_REQUEST},
            }
        ]
    }
)
GET_MUTATION = orjson.dumps(
    {
        "errors": [
            {
                "message": "Only queries can be sent by GET; use POST.",
                "extensions": {"code": ErrorCode.BAD_REQUEST},
            }
        ]
    }
)

OPERATION_NAME_NOT_STRING = orjson.dumps(
    {
        "errors": [
            {
                "message": "`operationName` must be a string or null.",
                "extensions": {"code": ErrorCode.BAD_REQUEST},
            }
        ]
    }
)
# A parsed DocumentNode (tokens and locations kept) measured with tracemalloc: ~16 KB for
# `{ customers { totalCount } }`, then 100-120 bytes per character of query text
# (bench/compare's 657-byte page: 68 KB; a 3 KB document of 50 fragments: 328 KB).
DOCUMENT_BASE_BYTES = 16_384
DOCUMENT_BYTES_PER_CHAR = 120
ENTRY_BYTES = 512  # key tuple, entry and bookkeeping of a cached string or statement
MAX_VARIANTS = 8  # statements under one shape key (node(id:) of as many node types)
MAX_SHAPES = 8  # generic path sets tried per document and role


@dataclass(frozen=True, slots=True)
class _Document:
    node: DocumentNode
    over_limit: bool  # a document-level limit refuses it: Strawberry answers with the code


@dataclass(frozen=True, slots=True)
class _Read:
    """A signed-in request's read connection: SQLAlchemy's and its asyncpg driver; the
    read-only transaction a token lookup begins (None: the viewer is cached); the pool
    entry's info when the session keeps the viewer (None: it does not)."""

    conn: Any
    pg: Any
    tx: Any
    session: dict | None


@dataclass(frozen=True, slots=True)
class _Reply:
    """An answer the front sends itself."""

    status: int
    body: bytes
    path: bytes | None = None


class _LRU(LRUCache):
    """An LRU bounded by approximate bytes: `sizeof(key, value)` sizes each entry (the
    key counts: a cached None still keeps its query text alive)."""

    def __init__(self, budget: int, sizeof: Callable[[Any, Any], int]) -> None:
        super().__init__(maxsize=max(budget, 1), getsizeof=lambda entry: entry[1])
        self.sizeof = sizeof

    def get(self, key: Any, default: Any = None) -> Any:
        entry = super().get(key)
        return default if entry is None else entry[0]

    def put(self, key: Any, value: Any) -> None:
        size = self.sizeof(key, value)
        if size <= self.maxsize:  # larger than the whole budget: not kept
            self[key] = (value, size)


def _document_bytes(query: str, document: _Document | None) -> int:
    if document is None:  # invalid: only the text is kept
        return ENTRY_BYTES + len(query)
    return DOCUMENT_BASE_BYTES + DOCUMENT_BYTES_PER_CHAR * len(query)


def _text_bytes(key: Any, value: Any) -> int:
    """Strings in the key (a tuple or a string) and in the value, plus the entry."""
    parts = key if isinstance(key, tuple) else (key,)
    size = ENTRY_BYTES + sum(len(p) for p in parts if isinstance(p, str | bytes))
    if isinstance(value, str):
        size += len(value)
    elif isinstance(value, Statement):
        size += len(value.sql) + 64 * len(value.params)
    elif isinstance(value, tuple):  # variants of one shape key
        size += sum(len(s.sql) + 64 * len(s.params) for s in value if isinstance(s, Statement))
    return size


async def _send(send, status: int, body: bytes, path: bytes | None = None) -> None:
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    if path is not None:  # which path answered: compiled, or mixed (compiled + Strawberry)
        headers.append((b"x-customer-graph-path", path))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class CompiledGraphQL:
    """ASGI app wrapping the Strawberry app (`fallback`) at /graphql."""

    def __init__(self, fallback, engine_ref: dict, settings) -> None:
        self.fallback = fallback
        self.engine_ref = engine_ref
        self.settings = settings
        # Who tokens stand for (resolvers/tokens.ViewerCache), kept by the Strawberry view.
        self.viewers = getattr(fallback, "viewers", None)
        # graphql-core's schema, which the planner walks. Strawberry (0.341) has no public
        # accessor for it; this is the one place it is read, once, in server/.
        self.schema = fallback.schema._schema
        # Bounded by bytes (settings), filled only by signed-in requests.
        # query text -> _Document | None (invalid)
        self.documents = _LRU(settings.document_cache_bytes, _document_bytes)
        # sha256 -> text: PostgreSQL's table (every instance), this process's LRU in front
        self.persisted = PersistedQueries(
            settings.persisted_cache_bytes, settings.persisted_store_bytes
        )
        # (query, operation, role, generic paths, variables with those masked) -> a tuple
        # of Statement | None (not compilable); with no paths (every value): one of them
        self.statements = _LRU(settings.statement_cache_bytes, _text_bytes)
        # (query, operation, role) -> the generic path sets its statements were keyed by
        self.shapes = _LRU(settings.document_cache_bytes // 8, _text_bytes)
        self.compiles = 0  # statements compiled (tests and benchmarks count them)
        # (query, operation, root fields left to Strawberry) -> reduced query | None
        self.reduced = _LRU(settings.document_cache_bytes // 8, _text_bytes)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.fallback(scope, receive, send)
        method = scope["method"]
        if method == "GET":
            params = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            accept = dict(scope["headers"]).get(b"accept", b"")
            if not params.keys() & {"query", "extensions"} or b"text/html" in accept:
                return await self.fallback(scope, receive, send)  # GraphiQL
            try:
                payload = {
                    "query": params.get("query"),
                    "operationName": params.get("operationName"),
                    "variables": orjson.loads(params["variables"])
                    if params.get("variables")
                    else None,
                    "extensions": orjson.loads(params["extensions"])
                    if "extensions" in params
                    else None,
                }
            except orjson.JSONDecodeError:
                return await self.fallback(scope, receive, send)
            body = None
        elif method == "POST":
            body = await read_body(receive)
            payload = None
            content_type = dict(scope["headers"]).get(b"content-type", b"")
            if content_type.startswith(b"application/json"):
                try:
                    payload = orjson.loads(body)
                except orjson.JSONDecodeError:
                    payload = None
            if not isinstance(payload, dict):
                return await self.fallback(scope, replay_body(body, receive), send)
        else:
            return await self.fallback(scope, receive, send)

        op_name = payload.get("operationName")
        if op_name is not None and not isinstance(op_name, str):
            return await _send(send, 400, OPERATION_NAME_NOT_STRING)
        observe.note_operation(op_name)
        if not isinstance(payload.get("extensions"), dict | None):
            return await _send(send, 400, EXTENSIONS_NOT_OBJECT)
        query = payload.get("query")
        digest = _persisted_hash(payload)
        if digest is not None:
            if isinstance(query, str) and hashlib.sha256(query.encode()).hexdigest() != digest:
                return await _send(send, 400, HASH_MISMATCH)
            body = None  # the fallback gets the full query text
        elif not isinstance(query, str) or not (
            # with read replicas, the front also chooses where a field-by-field query runs
            getattr(self.settings, "compiled_reads", True) or self.engine_ref.get("replicas")
        ):
            if body is None:  # a GET: Strawberry reads its query string (queries only)
                return await self.fallback(scope, receive, send)
            return await self.fallback(scope, replay_body(body, receive), send)

        decided = await self._decide(scope, send, method, query, digest, payload)
        if decided is SENT:
            return
        if isinstance(decided, _Reply):
            return await _send(send, decided.status, decided.body, path=decided.path)
        query, answer = decided
        send = self._after_write(scope, query, payload, send)
        if answer is not None and await self._mixed(scope, receive, send, query, payload, answer):
            return
        if body is None:  # rebuild as a plain POST for Strawberry
            return await self.fallback(*_as_post(scope, receive, query, payload), send)
        return await self.fallback(scope, replay_body(body, receive), send)

    async def _decide(
        self, scope, send, method: str, query: Any, digest: str | None, payload: dict
    ) -> _Reply | tuple[Any, tuple[Statement, dict[str, bytes]] | None] | object:
        """A reply, or (query text, mixed answer | None) for Strawberry. The token is
        looked up first: nothing is registered or cached for someone not signed in. A
        signed-in read keeps the lookup's pooled connection, used bare (no BEGIN/ROLLBACK:
        one statement sees one snapshot), for its compiled statement. A compiled answer is
        sent from here (SENT), before the transaction ends."""
        raw_token = self._bearer(scope)
        if not raw_token:  # none, or not Bearer (_bearer noted why)
            if raw_token == "":
                scope[AUTH_KEY] = (ANONYMOUS, None)
            return self._unsigned(method, query, digest, payload)
        token_hash = hash_token(raw_token)  # the cache's, the replicas' and api_token's key
        shortcut = self._known_write(scope, token_hash, method, query, digest, payload)
        if shortcut is not None:
            return shortcut
        # Read replicas (server/replicas.py): a query may run on one, token lookup included;
        # None back means the primary answers it all (a mutation, a token the replica does
        # not know yet, or a replica that failed).
        replicas = self.engine_ref.get("replicas")
        replica = self._replica(scope, replicas, token_hash, query, payload)
        if replica is not None:
            scope[ENGINE_KEY] = replica
            try:
                decided = await self._decide_on(
                    replica, token_hash, scope, send, method, query, digest, payload
                )
            except Exception as error:
                if not replica_failed(error):
                    raise
                replicas.failed(replica, error)
                decided = None
            if decided is not None:
                return decided
            scope.pop(ENGINE_KEY, None)
            scope.pop(AUTH_KEY, None)
        return await self._decide_on(
            self.engine_ref["engine"], token_hash, scope, send, method, query, digest, payload
        )

    def _known_write(self, scope, token_hash: bytes, method, query: Any, digest, payload):
        """A mutation (or subscription) whose document is known, from a viewer the token
        cache knows: nothing here needs the database, so Strawberry gets it without a
        connection being taken for the lookup (the mutation's own transaction sets the
        viewer). None: decide as usual."""
        if self.viewers is None or digest is not None or not isinstance(query, str):
            return None
        doc = self.documents.get(query)
        if doc is None or doc.node is None or self._read_only(doc.node, payload):
            return None
        viewer = self.viewers.get(token_hash)
        if viewer is None or not viewer.is_authenticated:
            return None
        scope[AUTH_KEY] = (viewer, None)
        return self._refused(doc.node, method, payload) or (query, None)

    def _replica(self, scope, replicas, token_hash: bytes, query: Any, payload: dict):
        """A replica for this request, or None (the primary). Unless its cached document
        says it is no query, a request is taken for one; the token's own recent write and
        the LSN the client sent back must have been replayed there."""
        if not replicas:
            return None
        if isinstance(query, str) and query in self.documents:
            doc = self.documents.get(query)
            if doc is not None and not self._read_only(doc.node, payload):
                return None
        sent = next((v for k, v in scope["headers"] if k == LSN_HEADER.encode()), b"")
        return replicas.for_read(token_hash, parse_lsn(sent.decode("latin-1")))

    def _after_write(self, scope, query: Any, payload: dict, send):
        """Read replicas: the response to a signed-in mutation carries the primary's WAL
        position after its commit (LSN_HEADER), remembered for its token."""
        replicas = self.engine_ref.get("replicas")
        viewer = (scope.get(AUTH_KEY) or (None, None))[0]
        if not replicas or viewer is None or not viewer.is_authenticated:
            return send
        doc = self.documents.get(query) if isinstance(query, str) else None
        if doc is None or self._read_only(doc.node, payload):
            return send
        key = hash_token(self._bearer(scope) or "")

        async def sent(message) -> None:
            if message["type"] == "http.response.start":
                lsn = await replicas.written(key)  # the mutation has committed
                if lsn is not None:
                    headers = [*message.get("headers", ()), (LSN_HEADER.encode(), lsn.encode())]
                    message = {**message, "headers": headers}
            await send(message)

        return sent

    async def _decide_on(
        self, engine, token_hash: bytes, scope, send, method, query, digest, payload
    ) -> _Reply | tuple[Any, tuple[Statement, dict[str, bytes]] | None] | None:
        """_decide on `engine` (the primary, or a replica: None asks for the primary)."""
        known = self.viewers.get(token_hash) if self.viewers is not None else None
        # A viewer the cache knows (on the primary or a replica): a connection whose
        # session keeps it (server/database.keeping_viewer), so the read is one statement.
        kept = known is not None and keeps_viewers(engine)
        async with keeping_viewer(engine) if kept else engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg = raw.driver_connection
            # Else one read-only transaction for the lookup and the read: the lookup also
            # sets the viewer for row-level security (SET LOCAL), which its end forgets. A
            # viewer the cache knows is set with BEGIN, in the same round trip.
            read = _Read(
                conn,
                pg,
                tx=None if known is not None else pg.transaction(readonly=True),
                session=raw.info if kept else None,
            )
            try:
                decided = await self._signed(
                    read, known, engine, token_hash, scope, method, query, digest, payload
                )
                if (
                    isinstance(decided, _Reply)
                    and decided.path == b"compiled"
                    and PENDING_KEY not in scope
                ):
                    # Answer first: ending the read-only transaction is nothing the
                    # client waits for (a persisted query's registration is: the client's
                    # next request may name it anywhere).
                    await _send(send, decided.status, decided.body, path=decided.path)
                    decided = SENT
            finally:
                await _end_read(conn, pg, read.tx)
        # A registration, after the read: always on the primary.
        await self.persisted.write(self.engine_ref["engine"], scope)
        return decided

    async def _signed(
        self, read: _Read, known, engine, token_hash: bytes, scope, method, query, digest, payload
    ) -> _Reply | tuple[Any, tuple[Statement, dict[str, bytes]] | None]:
        """_decide on the request's read connection, from the token lookup on."""
        conn, pg = read.conn, read.pg
        try:
            started = time.perf_counter()
            ran = True  # a statement (a kept viewer's read may need none before it)
            if read.session is not None:
                ran = await _keep_viewer(engine, pg, read.session, known)
                viewer = known
            elif known is not None:
                sql = begin_as(known)
                bare_statement(engine, sql)
                await pg.execute(sql)
                viewer = known
            else:
                await read.tx.start()
                bare_statement(engine, VIEWER_SETTING_BY_TOKEN_SQL)
                # Remembered only from the primary: a lagging replica may not have seen
                # a revocation whose notification already came.
                cache = None if ENGINE_KEY in scope else self.viewers
                viewer = await viewer_setting_on(pg, token_hash, cache)
                if cache is None and viewer is not None and self.viewers is not None:
                    self.viewers.fill_from(self.engine_ref["engine"], token_hash)
            if ran:
                observe.sql(time.perf_counter() - started)
        except Exception as error:
            if pg.is_closed():
                await conn.invalidate()
            if is_timeout(error) or is_unavailable(error):
                raise  # server.errors.DatabaseFailures answers
            log.exception("token lookup failed; answering field by field")
            return self._unsigned(method, query, digest, payload)
        on_replica = ENGINE_KEY in scope
        if viewer is None and on_replica:
            return None  # a token newer than the replica's copy: the primary knows
        error = UNKNOWN_TOKEN if viewer is None else None
        scope[AUTH_KEY] = (viewer, error)
        if viewer is None or not viewer.is_authenticated:
            return self._unsigned(method, query, digest, payload)
        if digest is not None:
            text = query if isinstance(query, str) else None  # its hash checked by __call__
            query = await self.persisted.resolve(pg, scope, digest, text)
            if query is None:
                return _Reply(200, NOT_FOUND)
        if not isinstance(query, str):
            return query, None
        node = self._node(query)
        refused = self._refused(node, method, payload)
        if refused is not None:
            return refused
        if on_replica and not self._read_only(node, payload):
            return None  # a mutation: its token is looked up again on the primary
        answer = await self._compiled(read, engine, viewer, query, payload)
        if isinstance(answer, bytes):
            return _Reply(200, answer, b"compiled")
        return query, answer

    def _unsigned(self, method: str, query: Any, digest: str | None, payload: dict):
        """Someone not signed in (no token, or a bad one): Strawberry answers (it allows
        introspection, refuses the rest), nothing is kept, and a hash alone answers
        PersistedQueryNotFound whether or not it is known."""
        if not isinstance(query, str):
            return _Reply(200, NOT_FOUND) if digest is not None else (query, None)
        if method == "GET":
            try:  # parsed, not cached: GET must run no mutation
                node = parse(query, max_tokens=self.settings.max_tokens)
            except Exception:
                node = None
            refused = self._refused(node, method, payload)
            if refused is not None:
                return refused
        return query, None

    async def _mixed(self, scope, receive, send, query: str, payload: dict, answer) -> bool:
        """Answer an operation whose root fields compile only in part (server/mixed.py);
        False: nothing was sent, Strawberry answers it all."""
        statement, values = answer
        reduced = self._reduced(query, payload, statement)
        if reduced is None:
            return False
        start, content = await mixed.captured(
            self.fallback, *_as_post(scope, receive, reduced, payload)
        )
        if start.get("status") != 200:
            return False
        try:
            whole = mixed.merged(content, statement.order, values)
        except ValueError:
            log.exception("merging a mixed answer failed; answering field by field")
            return False
        if whole is None:  # Strawberry's half nulled `data`: its answer is the answer
            await send(start)
            await send({"type": "http.response.body", "body": content})
        else:
            await _send(send, 200, whole, path=b"mixed")
        return True

    def _reduced(self, query: str, payload: dict, statement: Statement) -> str | None:
        """The query without its compiled root fields, for Strawberry (cached)."""
        op_name = payload.get("operationName")
        op_name = op_name if isinstance(op_name, str) else None
        key = (query, op_name, statement.rest)
        cached = self.reduced.get(key, _MISSING)
        if cached is _MISSING:
            node = self.document(query).node  # parsed and valid: it compiled
            operation = get_operation_ast(node, op_name)
            cached = mixed.reduced_query(query, node, operation, set(statement.keys))
            self.reduced.put(key, cached)
        return cached

    def _node(self, query: str) -> DocumentNode | None:
        doc = self.document(query)
        return None if doc is None else doc.node

    @staticmethod
    def _read_only(node: DocumentNode | None, payload: dict) -> bool:
        """GET must not change anything (it is not protected against cross-site requests)."""
        if node is None:
            return True  # unparsable or invalid: Strawberry reports why, nothing runs
        op = get_operation_ast(node, payload.get("operationName"))
        return op is None or op.operation is OperationType.QUERY

    @staticmethod
    def _refused(node: DocumentNode | None, method: str, payload: dict) -> _Reply | None:
        """Several operations and no name: none runs (the same answer as Strawberry's,
        server/limits.operation_name_errors). A GET running a mutation: 405."""
        if node is None:
            return None
        errors = operation_name_errors(node, payload.get("operationName"))
        if errors:
            return _Reply(200, _errors_body(errors))
        if method == "GET" and not CompiledGraphQL._read_only(node, payload):
            return _Reply(405, GET_MUTATION)
        return None

    def document(self, query: str) -> _Document | None:
        """The parsed, validated document (cached per text with its document-level limits)."""
        if query in self.documents:
            return self.documents.get(query)
        entry = self._checked(query)
        self.documents.put(query, entry)
        return entry

    def _checked(self, query: str) -> _Document | None:
        """Parse (tokens capped), then the document limits (linear expanded size first,
        depth, aliases), and only within them the full validation: a document of a few
        hundred fragments is refused in milliseconds, not seconds of overlap checks."""
        try:
            node = parse(query, max_tokens=self.settings.max_tokens)
            if document_limit_errors(self.schema, node, self.settings):
                return _Document(node, True)
            return None if validate(self.schema, node) else _Document(node, False)
        except Exception:
            return None

    async def _compiled(
        self, read: _Read, engine, viewer: Viewer, query: str, payload: dict
    ) -> bytes | tuple[Statement, dict[str, bytes]] | None:
        """The whole response; or, for a mixed operation, its statement and the compiled
        root fields' JSON by key; None: Strawberry answers it all."""
        conn, pg = read.conn, read.pg
        if not getattr(self.settings, "compiled_reads", True):
            return None
        doc = self.document(query)
        if doc is None or doc.over_limit:
            return None
        op_name = payload.get("operationName")
        op = get_operation_ast(doc.node, op_name)
        if op is None or op.operation is not OperationType.QUERY:
            return None
        observe.note_operation(op_name or (op.name.value if op.name else None), "query")
        variables = payload.get("variables")
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            return None
        # server.errors: a query's execution budget counts from here (never a mutation's:
        # cutting one short could answer TIMEOUT for a change that committed).
        start_budget()
        try:
            statement = self._statement(query, doc.node, op, op_name, variables, viewer)
            if statement is None:
                return None
            bare_statement(engine, statement.sql)
            name = op_name or (op.name.value if op.name else None)
            with tracing.operation_span("query", name):
                started = time.perf_counter()
                if read.session is None:
                    sql, params = statement.sql, statement.bind(viewer)
                else:
                    await _plan_generically(engine, pg, read.session, statement.plans_once)
                    sql, params = statement.on_session(viewer)
                row = await pg.fetchrow(sql, *params)
                observe.sql(time.perf_counter() - started)
            if row is None:  # the session's viewer is not this one's
                await _lost_viewer(engine, read)
                return None
            # NULL: a guard of the statement failed (customerSearch over the cap)
            if any(value is None for value in row):
                return None
            if statement.rest:
                return statement, dict(zip(statement.keys, row, strict=True))
            return row[0]
        except Exception as error:
            if pg.is_closed():
                await conn.invalidate()
            if is_timeout(error) or is_unavailable(error):
                raise  # server.errors.DatabaseFailures answers; never re-run field by field
            log.exception("compiled read failed; answering field by field")
            return None

    def _statement(self, query, node, op, op_name, variables, viewer) -> Statement | None:
        """The compiled statement for this document, variables and role (cached; None:
        answer field by field, cached too), its parameters computed for these values.

        Kept per variable *shape*: the String/ID values a statement binds through its
        segments (a customer's ID, a search prefix, a cursor: `Statement.generic`) are
        masked in its key, the other variables' values stay in it; a later request whose
        segments replay to the same SQL (`Statement.rebound`) reuses it. Several
        statements may share a key (a Customer's ID and an Order's: `node(id:)` reads
        other tables): the first that fits serves. Also kept per exact values, as
        before: a repeated request replays nothing."""
        base = (query, op_name, viewer.role)
        exact, _ = _shape_key(base, NO_PATHS, variables)
        cached = self.statements.get(exact, _MISSING)
        if cached is not _MISSING:
            return cached
        for generic in self.shapes.get(base) or ():
            key, strings = _shape_key(base, generic, variables)
            variants = self.statements.get(key) if key is not None else None
            if not variants:
                continue
            if any(UNSTORABLE.search(s) for s in strings):
                break  # the request limits refuse it (below)
            for statement in variants:
                if statement is not None:
                    try:
                        statement = statement.rebound(variables)
                    except Mismatch:  # another shape (a bad ID, another node type)
                        continue
                # None: no string at those paths compiles
                self.statements.put(exact, statement)
                return statement
        self.compiles += 1
        statement, generic = None, NO_PATHS
        # Over a limit: Strawberry answers with the limit's own error code.
        if not request_limit_errors(node, op_name, variables, self.settings, self.schema):
            coerced = get_variable_values(self.schema, op.variable_definitions or (), variables)
            if not isinstance(coerced, list):
                try:
                    compiled = compile_reusable(
                        self.schema,
                        node,
                        op,
                        coerced,
                        variables,
                        viewer,
                        search_cap=self.settings.search_cap,
                    )
                    statement, generic = compiled.statement, compiled.generic
                except Exception:
                    log.exception("compiling a read failed; answering field by field")
        if generic:
            key, _ = _shape_key(base, generic, variables)
            variants = self.statements.get(key) or ()
            self.statements.put(key, (statement, *variants)[:MAX_VARIANTS])
            shapes = self.shapes.get(base) or ()
            if generic not in shapes:
                self.shapes.put(base, (generic, *shapes)[:MAX_SHAPES])
        self.statements.put(exact, statement)
        return statement

    @staticmethod
    def _bearer(scope) -> str | None:
        """The bearer token ("" when none is sent); None when the header is not Bearer."""
        header = ""
        for k, v in scope["headers"]:
            if k == b"authorization":
                header = v.decode("latin-1")
                break
        raw = bearer(header)
        if raw is None:
            scope[AUTH_KEY] = (None, NOT_BEARER)
        return raw


def _shape_key(base: tuple, generic: frozenset, variables: dict) -> tuple[tuple | None, list]:
    """The statement cache's key: the variables with the strings at `generic` masked (and
    those strings); None when one of those paths holds no string in this request."""
    strings = []
    masked = variables
    for path in generic:
        value = at(variables, path)
        if type(value) is not str:
            return None, []
        strings.append(value)
        masked = replaced(masked, path, None)
    return (*base, generic, orjson.dumps(masked, option=orjson.OPT_SORT_KEYS)), strings


def _errors_body(errors: list) -> bytes:
    """A pre-execution error as Strawberry sends it."""
    return orjson.dumps({"data": None, "errors": [e.formatted for e in errors]})


def _persisted_hash(payload: dict) -> str | None:
    """The APQ hash named in `extensions.persistedQuery`, if any."""
    extensions = payload.get("extensions")
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    if isinstance(persisted, dict) and isinstance(persisted.get("sha256Hash"), str):
        return persisted["sha256Hash"]
    return None


async def _keep_viewer(engine, pg, session: dict, viewer: Viewer) -> bool:
    """Make the session of a keeping_viewer connection carry `viewer`, unless it does
    (False: it did, nothing ran). UNSURE first: an interrupted change leaves a session
    nothing trusts (the next read sets it again, any other checkout forgets it)."""
    key = (viewer.user_id, Role(viewer.role).value)
    if session.get(SESSION_VIEWER) == key:
        return False
    session[SESSION_VIEWER] = UNSURE
    sql = keep_viewer_sql(viewer)
    bare_statement(engine, sql)
    await pg.execute(sql)
    session[SESSION_VIEWER] = key
    return True


# A search by a bounded name prefix is 0.1 ms of execution after 0.45 ms of planning, and
# PostgreSQL keeps planning it per value: its generic plan's estimate (a range on a
# parameter: 0.5% of the table) looks worse than the plans it makes with the value. The
# generic plan is the same index walk, so a kept session runs those on generic plans.
PLAN_MODE_SQL = {
    True: "SET plan_cache_mode = force_generic_plan",
    False: "RESET plan_cache_mode",
}


async def _plan_generically(engine, pg, session: dict, generic: bool) -> None:
    """Switch a kept session's plan mode if it is not `generic` already (absent: the
    default; None: a switch was interrupted, so unknown)."""
    if session.get(SESSION_GENERIC, False) is generic:
        return
    session[SESSION_GENERIC] = None
    sql = PLAN_MODE_SQL[generic]
    bare_statement(engine, sql)
    await pg.execute(sql)
    session[SESSION_GENERIC] = generic


async def _lost_viewer(engine, read: _Read) -> None:
    """A kept session answered as someone else's (or no one's) viewer: only a transaction
    pooler does that (it hands each statement to any server connection). Stop keeping
    viewers on this engine, drop the connection; the caller answers field by field."""
    read.session[SESSION_VIEWER] = UNSURE
    if stop_keeping_viewers(engine):
        log.error(
            "a database session lost the viewer it keeps: is the database behind a "
            "transaction pooler? Set CUSTOMER_GRAPH_TRANSACTION_POOLER=1; until a restart "
            "this process sets the viewer per transaction"
        )
    await read.conn.invalidate()


async def _end_read(conn, pg, tx) -> None:
    """End the compiled read's transaction (read-only: ROLLBACK is as good as COMMIT), or
    drop a connection that cannot, so it never returns to the pool mid-transaction. `tx`
    is None when the transaction began in begin_as's simple-protocol round trip."""
    try:
        if not pg.is_closed() and pg.is_in_transaction():
            await (tx.rollback() if tx is not None else pg.execute("ROLLBACK"))
    except Exception:
        log.exception("ending a compiled read failed; dropping its connection")
        await conn.invalidate()


async def read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _as_post(scope, receive, query: str, payload: dict):
    """(scope, receive) of a plain JSON POST of `query` with the request's variables."""
    body = orjson.dumps(
        {
            "query": query,
            "variables": payload.get("variables"),
            "operationName": payload.get("operationName"),
        }
    )
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
    headers += [(b"content-type", b"application/json")]
    headers += [(b"content-length", str(len(body)).encode())]
    return dict(scope, method="POST", headers=headers, query_string=b""), replay_body(body, receive)


def replay_body(body: bytes, receive):
    """`receive` that hands the body already read back once, then the real one."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
