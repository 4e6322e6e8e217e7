"""GraphQL over HTTP (the graphql-over-http specification) at /graphql.

- `Accept: application/graphql-response+json`: the response says so, and a request that
  never executed (it failed to parse or validate, or its variables did not coerce: `data`
  is null and no error has a `path`) answers 400 without a `data` entry. With
  `application/json` (the legacy type) such answers stay 200, as the spec asks.
- Errors Strawberry answers in plain text before GraphQL starts (an unsupported content
  type, a malformed request) become JSON error bodies with a stable code, 415 for a media
  type we do not read.

Only /graphql's HTTP answers pass through here; a client asking for the legacy type pays
nothing (the response streams through untouched unless it is plain text).
"""

from __future__ import annotations

import orjson

from resolvers.errors import ErrorCode
from server.compiled import GET_MUTATION
from server.held import rewriting

GRAPHQL_RESPONSE = b"application/graphql-response+json"


def _json_error(message: str, code: str) -> bytes:
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


class GraphQLOverHTTP:
    def __init__(self, app, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        accept = dict(scope["headers"]).get(b"accept", b"")
        wants_graphql_response = GRAPHQL_RESPONSE in accept
        kind = GRAPHQL_RESPONSE if wants_graphql_response else b"application/json"

        def hold(start: dict) -> bool:
            plain_error = _plain_error(start)
            json = dict(start.get("headers", [])).get(b"content-type", b"")
            return plain_error or (wants_graphql_response and json.startswith(b"application/json"))

        def reshaped(start: dict, body: bytes) -> tuple[dict, bytes]:
            status, body = _reshape(
                start["status"], body, _plain_error(start), wants_graphql_response
            )
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-type"]
            headers.append((b"content-type", kind + b"; charset=utf-8"))
            return {"type": "http.response.start", "status": status, "headers": headers}, body

        shaped = rewriting(send, hold, reshaped)
        await self.app(scope, receive, shaped)


def _plain_error(start: dict) -> bool:
    """A plain-text error the framework wrote (a bad request body): answered as JSON."""
    kind = dict(start.get("headers", [])).get(b"content-type", b"")
    return start["status"] >= 400 and kind.startswith(b"text/plain")


def _reshape(status: int, body: bytes, plain: bool, graphql_response: bool) -> tuple[int, bytes]:
    if plain:
        text = body.decode("utf-8", "replace").strip() or "Bad request."
        if "content type" in text.lower():
            return 415, _json_error(
                "Send application/json (or a multipart request for an upload).",
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            )
        if "not allowed when using GET" in text:  # the spec: 405, as the compiled path says
            return 405, GET_MUTATION
        return status, _json_error(text, ErrorCode.BAD_REQUEST)
    if not graphql_response or status != 200 or b'"errors"' not in body:
        return status, body
    try:
        result = orjson.loads(body)
    except orjson.JSONDecodeError:
        return status, body
    errors = result.get("errors") if isinstance(result, dict) else None
    never_ran = (
        errors
        and result.get("data") is None
        and all(isinstance(e, dict) and "path" not in e for e in errors)
    )
    if never_ran:
        result.pop("data", None)
        return 400, orjson.dumps(result)
    return status, body
