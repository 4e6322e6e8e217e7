"""POST/GET /graphql in front of Strawberry: persisted queries and the compiled read path.

For each request: resolve an Apollo persisted query (APQ) if one is named; parse and
validate the document (cached per document text); when the operation is a query whose
whole selection compiles (resolvers/compiled/), run its one statement and send
the statement's bytes (the whole response). Anything else goes to Strawberry
unchanged, which therefore produces every error response.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from graphql import DocumentNode, OperationType, get_operation_ast, parse, validate
from graphql.execution.values import get_variable_values

from resolvers.compiled import NotCompilable, Statement, compile_operation
from server import mixed
from server.auth import VIEWER_SETTING_BY_TOKEN_SQL, viewer_setting_on
from server.database import bare_statement
from server.limits import document_limit_errors, request_limit_errors

log = logging.getLogger(__name__)

_MISSING = object()
AUTH_KEY = "customer_graph.auth"  # (viewer | None, token_error | None), reused by get_context
NOT_FOUND = orjson.dumps(
    {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
)
HASH_MISMATCH = orjson.dumps(
    {
        "errors": [
            {
                "message": "provided sha does not match query",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }
)

GET_MUTATION = orjson.dumps(
    {
        "errors": [
            {
                "message": "Only queries can be sent by GET; use POST.",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }
)


@dataclass(frozen=True, slots=True)
class _Document:
    node: DocumentNode
    over_limit: bool  # a document-level limit refuses it: Strawberry answers with the code


class _LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            self.move_to_end(key)
        except KeyError:
            return default
        return self[key]

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


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
        self.schema = fallback.schema._schema
        self.documents: _LRU = _LRU(2000)  # query text -> _Document | None (invalid)
        self.persisted: _LRU = _LRU(10000)  # sha256 hex -> query text
        # (query, operation, role, variables) -> Statement | None (not compilable)
        self.statements: _LRU = _LRU(4000)
        # (query, operation, root fields left to Strawberry) -> reduced query | None
        self.reduced: _LRU = _LRU(2000)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.fallback(scope, receive, send)
        method = scope["method"]
        if method == "GET":
            params = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            if "extensions" not in params:
                return await self.fallback(scope, receive, send)  # GraphiQL, or GET refused
            try:
                payload = {
                    "query": params.get("query"),
                    "operationName": params.get("operationName"),
                    "variables": orjson.loads(params["variables"])
                    if params.get("variables")
                    else None,
                    "extensions": orjson.loads(params["extensions"]),
                }
            except orjson.JSONDecodeError:
                return await self.fallback(scope, receive, send)
            body = None
        elif method == "POST":
            body = await _read_body(receive)
            payload = None
            content_type = dict(scope["headers"]).get(b"content-type", b"")
            if content_type.startswith(b"application/json"):
                try:
                    payload = orjson.loads(body)
                except orjson.JSONDecodeError:
                    payload = None
            if not isinstance(payload, dict):
                return await self.fallback(scope, _replay(body, receive), send)
        else:
            return await self.fallback(scope, receive, send)

        query = payload.get("query")
        extensions = payload.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if isinstance(persisted, dict) and isinstance(persisted.get("sha256Hash"), str):
            digest = persisted["sha256Hash"]
            if isinstance(query, str):
                if hashlib.sha256(query.encode()).hexdigest() != digest:
                    return await _send(send, 400, HASH_MISMATCH)
                self.persisted.put(digest, query)
            else:
                query = self.persisted.get(digest)
                if query is None:
                    return await _send(send, 200, NOT_FOUND)
            body = None  # the fallback gets the full query text
        elif method == "GET":
            return await self.fallback(scope, receive, send)

        if method == "GET" and isinstance(query, str) and not self._read_only(query, payload):
            return await _send(send, 405, GET_MUTATION)
        if isinstance(query, str):
            answer = await self._compiled(scope, query, payload)
            if isinstance(answer, bytes):
                return await _send(send, 200, answer, path=b"compiled")
            if answer is not None and await self._mixed(
                scope, receive, send, query, payload, answer
            ):
                return

        if body is None:  # rebuild as a plain POST for Strawberry
            return await self.fallback(*_as_post(scope, receive, query, payload), send)
        return await self.fallback(scope, _replay(body, receive), send)

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

    def _read_only(self, query: str, payload: dict) -> bool:
        """GET must not change anything (it is not protected against cross-site requests)."""
        doc = self.document(query)
        if doc is None:
            return True  # invalid: Strawberry reports why, nothing runs
        op_name = payload.get("operationName")
        op = get_operation_ast(doc.node, op_name if isinstance(op_name, str) else None)
        return op is None or op.operation is OperationType.QUERY

    def document(self, query: str) -> _Document | None:
        """The parsed, validated document (cached per text with its document-level limits)."""
        if query in self.documents:
            return self.documents.get(query)
        try:
            node = parse(query, max_tokens=self.settings.max_tokens)
            doc = None if validate(self.schema, node) else node
        except Exception:
            doc = None
        entry = None
        if doc is not None:
            entry = _Document(doc, bool(document_limit_errors(self.schema, doc, self.settings)))
        self.documents.put(query, entry)
        return entry

    async def _compiled(
        self, scope, query: str, payload: dict
    ) -> bytes | tuple[Statement, dict[str, bytes]] | None:
        """The whole response; or, for a mixed operation, its statement and the compiled
        root fields' JSON by key; None: Strawberry answers it all."""
        if not getattr(self.settings, "compiled_reads", True):
            return None
        doc = self.document(query)
        if doc is None or doc.over_limit:
            return None
        op_name = payload.get("operationName")
        op_name = op_name if isinstance(op_name, str) else None
        op = get_operation_ast(doc.node, op_name)
        if op is None or op.operation is not OperationType.QUERY:
            return None
        variables = payload.get("variables")
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            return None
        raw_token = self._bearer(scope)
        if raw_token is None:
            return None
        # One pooled connection, used bare: the token lookup and the read are one round
        # trip each, in one read-only transaction: the lookup also sets the viewer for
        # row-level security (SET LOCAL), which the transaction's end forgets.
        engine = self.engine_ref["engine"]
        async with engine.connect() as conn:
            pg = (await conn.get_raw_connection()).driver_connection
            tx = pg.transaction(readonly=True)
            try:
                await tx.start()
                if raw_token:
                    bare_statement(engine, VIEWER_SETTING_BY_TOKEN_SQL)
                viewer = await viewer_setting_on(pg, raw_token)
                error = "The token is unknown, expired or revoked." if viewer is None else None
                scope[AUTH_KEY] = (viewer, error)
                if viewer is None or not viewer.is_authenticated:
                    return None
                statement = self._statement(query, doc.node, op, op_name, variables, viewer)
                if statement is None:
                    return None
                bare_statement(engine, statement.sql)
                # NULL: a guard of the statement failed (customerSearch over the cap)
                if statement.rest:
                    row = await pg.fetchrow(statement.sql, *statement.bind(viewer))
                    if any(value is None for value in row):
                        return None
                    return statement, dict(zip(statement.keys, row, strict=True))
                body = await pg.fetchval(statement.sql, *statement.bind(viewer))
            except Exception:
                log.exception("compiled read failed; answering field by field")
                if pg.is_closed():
                    await conn.invalidate()
                return None
            finally:
                await _end_read(conn, pg, tx)
        return body

    def _statement(self, query, node, op, op_name, variables, viewer) -> Statement | None:
        """The compiled statement for this document, variables and role (cached; None:
        answer field by field, cached too)."""
        key = (query, op_name, viewer.role, orjson.dumps(variables, option=orjson.OPT_SORT_KEYS))
        cached = self.statements.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
        statement = None
        # Over a limit: Strawberry answers with the limit's own error code.
        if not request_limit_errors(node, op_name, variables, self.settings):
            coerced = get_variable_values(self.schema, op.variable_definitions or (), variables)
            if not isinstance(coerced, list):
                try:
                    statement = compile_operation(
                        self.schema, node, op, coerced, viewer, search_cap=self.settings.search_cap
                    )
                except NotCompilable:
                    pass
                except Exception:
                    log.exception("compiling a read failed; answering field by field")
        self.statements.put(key, statement)
        return statement

    @staticmethod
    def _bearer(scope) -> str | None:
        """The bearer token ("" when none is sent); None when the header is not Bearer."""
        header = ""
        for k, v in scope["headers"]:
            if k == b"authorization":
                header = v.decode("latin-1")
                break
        scheme, _, raw = header.partition(" ")
        if header and scheme.lower() != "bearer":
            scope[AUTH_KEY] = (None, "Use 'Authorization: Bearer <token>'.")
            return None
        return raw.strip()


async def _end_read(conn, pg, tx) -> None:
    """End the compiled read's transaction (read-only: ROLLBACK is as good as COMMIT), or
    drop a connection that cannot, so it never returns to the pool mid-transaction."""
    try:
        if not pg.is_closed() and pg.is_in_transaction():
            await tx.rollback()
    except Exception:
        log.exception("ending a compiled read failed; dropping its connection")
        await conn.invalidate()


async def _read_body(receive) -> bytes:
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
    return dict(scope, method="POST", headers=headers, query_string=b""), _replay(body, receive)


def _replay(body: bytes, receive):
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
