"""CORS for browser apps on other origins, and the same origin list for WebSockets.

`CUSTOMER_GRAPH_CORS_ORIGINS` (comma-separated) names the origins allowed; unset, only the
service's own origin (a browser sends no preflight for that). `*` allows every origin but
never credentials: the API authenticates with a bearer header, not cookies, so browsers
need no credentialed requests at all. Starlette's middleware does the matching; this module
shapes its answers the way API clients expect (204 preflight, JSON refusal). Browsers do not
subject WebSockets to CORS: the same list is Strawberry's `allowed_origins` for the
handshake (server/app.py), which refuses other origins with 403.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from resolvers.errors import ErrorCode

ALLOWED_METHODS = ("GET", "POST", "OPTIONS")
# What browser GraphQL clients send: the token, JSON, Apollo Client's identification and
# CSRF-prevention headers (APQ sends its hash in the body or the query string).
ALLOWED_HEADERS = (
    "authorization",
    "content-type",
    "accept",
    "apollographql-client-name",
    "apollographql-client-version",
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "x-request-id",
    "x-customer-graph-lsn",  # read-your-writes across instances (server/replicas.py)
)
EXPOSED_HEADERS = ("x-customer-graph-path", "x-request-id", "retry-after", "x-customer-graph-lsn")
REFUSED = orjson.dumps(
    {
        "errors": [
            {
                "message": "This origin may not call the API (CUSTOMER_GRAPH_CORS_ORIGINS).",
                "extensions": {"code": ErrorCode.CORS_ORIGIN_REFUSED},
            }
        ]
    }
)


class Cors(CORSMiddleware):
    def __init__(self, app, *, origins: Sequence[str]) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            allow_credentials=False,
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
        headers.pop("content-type", None)
        if answer.status_code == 200:
            return Response(status_code=204, headers=headers)
        return Response(REFUSED, status_code=403, headers=headers, media_type="application/json")
