"""Query cost for clients, and a budget of cost points per token and per anonymous address.

Every /graphql answer carries `extensions.cost`, as Shopify's Admin API does:

    {"requestedQueryCost": 42, "actualQueryCost": null,
     "throttleStatus": {"maximumAvailable": 20000, "currentlyAvailable": 19958,
                        "restoreRate": 1000}}

`requestedQueryCost` is the cost server/limits.py computes before any SQL (the cost
limit's figure, the same on both read paths: this middleware wraps both). A document
that does not parse, a persisted-query hash sent alone and a multipart upload cost 1.
`actualQueryCost` is null: the compiled path builds the answer inside PostgreSQL, and
counting what came back would mean parsing every answer again in Python; the bucket
charges the requested cost (the bound) up front.

Each client has a leaky bucket: `maximumAvailable` points, refilled at `restoreRate`
points per second; a request takes its cost out (at most the maximum, so any query the
cost limit lets through can run on a full bucket). When the bucket holds less than the
cost, the answer is HTTP 429, `Retry-After` (seconds until enough has flowed back) and
the error code THROTTLED, and no statement but the bucket's runs. A query refused by the
cost limit (QUERY_TOO_COSTLY) is charged 1: it never runs either.

The maximum and the rate are the token's own (`customer-graph token budget`, stored on
api_token), else its role's (CUSTOMER_GRAPH_COST_BUDGETS, e.g.
`ADMIN=60000/3000,ANONYMOUS=2000/100`: maximum/rate per role; ANONYMOUS is a request
without a known token), else CUSTOMER_GRAPH_COST_BUDGET and _RESTORE_RATE; the same
statement reads them.

Operations sent over the WebSocket (graphql-transport-ws `subscribe` messages:
subscriptions, and queries or mutations sent that way) are charged the same way, from
the same bucket, when they start (ThrottledTransportWS): over budget, that operation gets
an `error` message with THROTTLED and `retryAfter`, and the connection stays open.

The client is the bearer token (its SHA-256, the key api_token stores) or, with no token,
the client's address (the peer uvicorn reports; behind a proxy, run uvicorn with
--proxy-headers so it is the X-Forwarded-For address).

The buckets live in PostgreSQL (UNLOGGED table cost_bucket, migration 0017), updated by
one INSERT ... ON CONFLICT DO UPDATE per request that refills, caps and takes the cost in
one step under the row lock: every worker of a machine, and every machine behind the
load balancer, shares them, at the price of one statement per request; shared memory
would hold only one machine's share of a client's traffic.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from cachetools import LRUCache
from graphql import parse
from sqlalchemy import text
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage

from resolvers.errors import ErrorCode
from server import metrics
from server.compiled import read_body, replay_body
from server.held import rewriting
from server.limits import query_cost

# The bucket's limits: the token's own (api_token.cost_budget), else its role's
# (CUSTOMER_GRAPH_COST_BUDGETS), else the defaults; a request without a known token is
# ANONYMOUS. EXTRACT: seconds since the last
# request, times the rate, refills; LEAST caps; the cost is taken only if it is there.
_LEVEL = "LEAST(l.maximum, b.available + l.rate * EXTRACT(EPOCH FROM now() - b.updated_at)::float8)"
TAKE = text(
    f"""
WITH who AS (
  SELECT u.role::text AS role, t.cost_budget, t.cost_restore_rate
  FROM api_token t JOIN app_user u ON u.id = t.user_id
  WHERE t.token_hash = :token_hash AND t.revoked_at IS NULL
    AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.is_active
), r AS (
  SELECT COALESCE((SELECT role FROM who), 'ANONYMOUS') AS role,
         (SELECT cost_budget FROM who) AS maximum, (SELECT cost_restore_rate FROM who) AS rate
), l AS (
  SELECT COALESCE(r.maximum, (CAST(:budgets AS jsonb) -> r.role ->> 0)::float8,
                  CAST(:maximum AS double precision)) AS maximum,
         COALESCE(r.rate, (CAST(:budgets AS jsonb) -> r.role ->> 1)::float8,
                  CAST(:rate AS double precision)) AS rate
  FROM r
)
INSERT INTO cost_bucket AS b (key, available, granted, updated_at)
SELECT CASE WHEN EXISTS (SELECT 1 FROM who) THEN :key ELSE :address END,
  l.maximum - LEAST(l.maximum, CAST(:cost AS double precision)), true, now() FROM l
ON CONFLICT (key) DO UPDATE SET
  granted = (SELECT {_LEVEL} >= LEAST(l.maximum, CAST(:cost AS double precision)) FROM l),
  available = (SELECT {_LEVEL} - CASE WHEN {_LEVEL} >= LEAST(l.maximum, CAST(:cost AS double
    precision)) THEN LEAST(l.maximum, CAST(:cost AS double precision)) ELSE 0 END FROM l),
  updated_at = now()
RETURNING available, granted, (SELECT maximum FROM l) AS maximum, (SELECT rate FROM l) AS rate
"""
)

JSON_TYPES = (b"application/json", b"application/graphql-response+json")


class Budget:
    """The cost of a request, and each client's bucket: shared by HTTP and WebSocket."""

    def __init__(self, *, engine_ref: dict, settings, schema):
        self.engine_ref = engine_ref
        self.settings = settings
        self.schema = getattr(schema, "_schema", schema)
        self.maximum = float(settings.cost_budget)
        self.rate = float(settings.cost_restore_rate)
        # {role: [maximum, rate]}: CUSTOMER_GRAPH_COST_BUDGETS (server/settings.py)
        self.budgets = orjson.dumps(
            {role: [float(m), float(r)] for role, m, r in settings.cost_budgets}
        ).decode()
        self.costs: LRUCache = LRUCache(maxsize=10_000)

    @property
    def enabled(self) -> bool:
        return self.maximum > 0 and self.rate > 0

    def cost_of(self, payload: Any) -> int:
        """The query's cost (server/limits.query_cost), 1 when it cannot be computed."""
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return 1
        variables = payload.get("variables")
        op_name = payload.get("operationName")
        if not isinstance(variables, dict | None) or not isinstance(op_name, str | None):
            return 1
        try:
            key = (payload["query"], op_name, orjson.dumps(variables, option=orjson.OPT_SORT_KEYS))
        except TypeError:
            return 1
        cost = self.costs.get(key)
        if cost is None:
            try:
                document = parse(payload["query"], max_tokens=self.settings.max_tokens)
                cost = max(1, query_cost(document, op_name, variables, self.schema))
            except Exception:  # unparsable, too deep: refused downstream before any SQL
                cost = 1
            self.costs[key] = cost
        return cost

    async def charge(self, payload: Any, authorization: str, address: str) -> Charge:
        """Take the request's cost from its client's bucket: one statement."""
        requested = self.cost_of(payload)
        charged = requested if requested <= self.settings.max_cost else 1
        token_hash = _token_hash(authorization)
        key = "token:" + token_hash.hex() if token_hash is not None else address
        params = {
            "key": key,
            "address": address,
            "token_hash": token_hash,
            "budgets": self.budgets,
            "maximum": self.maximum,
            "rate": self.rate,
            "cost": max(1, charged),
        }
        async with self.engine_ref["engine"].connect() as conn:
            row = (await conn.execute(TAKE, params)).one()
            await conn.commit()
        maximum, rate, available = float(row.maximum), float(row.rate), float(row.available)
        return Charge(
            requested=requested,
            charged=max(1, min(charged, int(maximum))),
            granted=bool(row.granted),
            available=available,
            cost={
                "requestedQueryCost": requested,
                "actualQueryCost": None,
                "throttleStatus": {
                    "maximumAvailable": _number(maximum),
                    "currentlyAvailable": math.floor(available),
                    "restoreRate": _number(rate),
                },
            },
            rate=rate,
        )


@dataclass(frozen=True, slots=True)
class Charge:
    requested: int
    charged: int
    granted: bool
    available: float
    rate: float
    cost: dict

    @property
    def retry_after(self) -> int:
        """Whole seconds until the bucket holds the cost again."""
        return max(1, math.ceil((self.charged - self.available) / self.rate))

    def error(self) -> dict:
        return {
            "message": f"Throttled: this query costs {self.charged:,} points and "
            f"{math.floor(self.available):,} are available; "
            f"{_number(self.rate):,} flow back each second.",
            "extensions": {"code": ErrorCode.THROTTLED, "retryAfter": self.retry_after},
        }


class CostBudget:
    """ASGI middleware for /graphql (HTTP): cost, bucket, `extensions.cost`."""

    def __init__(self, app, *, budget: Budget, path: str = "/graphql"):
        self.app = app
        self.budget = budget
        self.path = path

    async def __call__(self, scope, receive, send) -> None:
        if not self.budget.enabled or scope["type"] != "http" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        method = scope["method"]
        headers = dict(scope["headers"])
        if method == "GET":
            params = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            if not params.keys() & {"query", "extensions"} or b"text/html" in headers.get(
                b"accept", b""
            ):
                return await self.app(scope, receive, send)  # GraphiQL's page
            payload: Any = params
            try:
                variables = orjson.loads(params["variables"]) if params.get("variables") else None
            except orjson.JSONDecodeError:
                variables = None
            payload = {**params, "variables": variables}
        elif method == "POST":
            body = await read_body(receive)
            receive = replay_body(body, receive)
            payload = None
            if headers.get(b"content-type", b"").startswith(b"application/json"):
                try:
                    payload = orjson.loads(body)
                except orjson.JSONDecodeError:
                    payload = None
        else:
            return await self.app(scope, receive, send)

        authorization = headers.get(b"authorization", b"").decode("latin-1")
        charge = await self.budget.charge(payload, authorization, _address(scope))
        if not charge.granted:
            body = orjson.dumps({"errors": [charge.error()], "extensions": {"cost": charge.cost}})
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(charge.retry_after).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, _with_cost(send, charge.cost))


class ThrottledTransportWS(BaseGraphQLTransportWSHandler):
    """graphql-transport-ws whose `subscribe` messages are charged like HTTP requests."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        budget: Budget | None = getattr(self.view, "budget", None)
        if budget is None or not budget.enabled or not self.connection_acknowledged:
            return await super().handle_subscribe(message)
        if message["id"] in self.operations:
            return await super().handle_subscribe(message)  # the protocol's own 4409
        params = self.context.connection_params or {}
        authorization = str(params.get("authorization") or params.get("Authorization") or "")
        scope = self.context.request.scope
        charge = await budget.charge(message.get("payload"), authorization, _address(scope))
        if not charge.granted:
            if budget.settings.metrics:  # HTTP's are counted from the request line
                metrics.REJECTED.labels(ErrorCode.THROTTLED).inc()
            error = charge.error()
            error["extensions"]["cost"] = charge.cost
            await self.send_message({"id": message["id"], "type": "error", "payload": [error]})
            return
        await super().handle_subscribe(message)


def _token_hash(authorization: str) -> bytes | None:
    """api_token's key for a bearer token. A token the database does not know falls back
    to the address's bucket (TAKE), so made-up tokens neither escape the anonymous budget
    nor add rows."""
    scheme, _, raw = authorization.partition(" ")
    raw = raw.strip()
    if scheme.lower() == "bearer" and raw:
        return hashlib.sha256(raw.encode()).digest()
    return None


def _address(scope) -> str:
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _with_cost(send, cost: dict):
    """`send` adding `extensions.cost` to a JSON answer's top-level object."""
    encoded = orjson.dumps(cost)

    def is_json(start: dict) -> bool:
        return dict(start.get("headers", [])).get(b"content-type", b"").startswith(JSON_TYPES)

    return rewriting(send, is_json, lambda start, body: (start, _added(body, encoded, cost)))


def _added(body: bytes, encoded: bytes, cost: dict) -> bytes:
    stripped = body.rstrip()
    if not (stripped.startswith(b"{") and stripped.endswith(b"}")):
        return body
    if b'"extensions"' not in body:  # the common case: splice, no re-encoding of the data
        inner = stripped[1:-1].strip()
        sep = b"," if inner else b""
        return b"{" + inner + sep + b'"extensions":{"cost":' + encoded + b"}}"
    try:
        result = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(result, dict):
        return body
    extensions = result.get("extensions")
    if not isinstance(extensions, dict):
        extensions = result["extensions"] = {}
    extensions["cost"] = cost
    return orjson.dumps(result)
