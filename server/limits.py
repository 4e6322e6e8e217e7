"""Request limits, each with its own `extensions.code`, checked before any resolver runs.

| limit | default | env var | code |
| --- | --- | --- | --- |
| request body | 100 KB | CUSTOMER_GRAPH_MAX_BODY_BYTES | REQUEST_TOO_LARGE (HTTP 413) |
| batched requests | refused | - | BATCH_NOT_SUPPORTED (HTTP 400) |
| tokens | 5,000 | CUSTOMER_GRAPH_MAX_TOKENS | TOO_MANY_TOKENS |
| depth | 10 | CUSTOMER_GRAPH_MAX_DEPTH | QUERY_TOO_DEEP |
| aliases | 30 | CUSTOMER_GRAPH_MAX_ALIASES | TOO_MANY_ALIASES |
| cost (nodes) | 50,000 | CUSTOMER_GRAPH_MAX_COST | QUERY_TOO_COSTLY |
| expanded fields | 10,000 | CUSTOMER_GRAPH_MAX_SELECTIONS | SELECTION_LIMIT_EXCEEDED |
| NUL / lone surrogates in text | refused | - | BAD_USER_INPUT |
| page size | 0..100 | - | BAD_USER_INPUT |
| introspection | on | CUSTOMER_GRAPH_INTROSPECTION=0 | INTROSPECTION_DISABLED |
| several operations, no operationName | refused | - | OPERATION_NAME_REQUIRED |

Cost follows GitHub's rule: every connection field costs the page size it asks for
(`first`/`last`, or the default page size), multiplied by the page sizes of the
connections it is nested in; `nodes(ids:)` costs one per id. A query costs the sum.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    Visitor,
    validate,
    visit,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from starlette.websockets import WebSocket
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.types.graphql import OperationType

ROOT_PAGE = 20
NESTED_PAGE = 10


def _coded(message: str, code: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def _argument(field: FieldNode, name: str, variables: dict[str, Any]) -> Any:
    for arg in field.arguments or ():
        if arg.name.value != name:
            continue
        value = arg.value
        if isinstance(value, VariableNode):
            return variables.get(value.name.value)
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, ListValueNode):
            return value.values
    return None


def query_cost(document, operation_name: str | None, variables: dict[str, Any] | None) -> int:
    """Nodes a query may return at most (GitHub's rule, see the module docstring)."""
    variables = variables or {}
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [o for o in operations if o.name and o.name.value == operation_name]

    def walk(selection_set: SelectionSetNode | None, multiplier: int, depth: int, seen) -> int:
        total = 0
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FragmentSpreadNode):
                name = node.name.value
                if name in fragments and name not in seen:
                    total += walk(fragments[name].selection_set, multiplier, depth, seen | {name})
            elif isinstance(node, InlineFragmentNode):
                total += walk(node.selection_set, multiplier, depth, seen)
            elif isinstance(node, FieldNode):
                size = _page(node, depth, variables, fragments)
                inner = multiplier * size if size else multiplier
                total += inner if size else 0
                total += walk(node.selection_set, inner, depth + (1 if size else 0), seen)
        return total

    return max((walk(op.selection_set, 1, 0, frozenset()) for op in operations), default=0)


def _names(selection_set: SelectionSetNode | None, fragments: dict, seen=frozenset()) -> set[str]:
    """Field names selected directly, looking through fragments."""
    names: set[str] = set()
    for node in selection_set.selections if selection_set else ():
        if isinstance(node, FieldNode):
            names.add(node.name.value)
        elif isinstance(node, InlineFragmentNode):
            names |= _names(node.selection_set, fragments, seen)
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                names |= _names(fragment.selection_set, fragments, seen | {node.name.value})
    return names


def _page(field: FieldNode, depth: int, variables: dict[str, Any], fragments: dict) -> int | None:
    """Page size a field asks for, or None when it is not a list of nodes (a connection)."""
    names = _names(field.selection_set, fragments)
    if field.name.value == "nodes" and _argument(field, "ids", variables) is not None:
        ids = _argument(field, "ids", variables)
        return len(ids) if isinstance(ids, list | tuple) else 1
    if not names & {"edges", "nodes", "totalCount", "pageInfo"}:
        return None
    for name in ("first", "last"):
        value = _argument(field, name, variables)
        if isinstance(value, int):
            return max(value, 1)
    return ROOT_PAGE if depth == 0 else NESTED_PAGE


class RequestLimits(SchemaExtension):
    """Per-request limits read from the request's settings (so tests can vary them)."""

    def on_operation(self):
        settings = self.execution_context.context.settings
        self.execution_context.parse_options["max_tokens"] = settings.max_tokens
        yield

    def on_validate(self):
        ctx = self.execution_context
        settings = ctx.context.settings
        document = ctx.graphql_document
        if document is not None and ctx.pre_execution_errors is None:
            # Strawberry would run the first operation; `_provided_operation_name` is the
            # name the request sent (the public `operation_name` falls back to the first).
            provided = getattr(ctx, "_provided_operation_name", None)
            ctx.pre_execution_errors = operation_name_errors(document, provided) or None
        if (
            document is not None
            and ctx.pre_execution_errors is None
            and ctx.operation_type is OperationType.SUBSCRIPTION
            and not isinstance(ctx.context.request, WebSocket)
        ):
            ctx.pre_execution_errors = [
                _coded(
                    "Subscriptions run over a WebSocket (graphql-transport-ws) at /graphql.",
                    "SUBSCRIPTION_NEEDS_WEBSOCKET",
                )
            ]
        if document is not None and ctx.pre_execution_errors is None:
            errors = limit_errors(
                ctx.schema._schema, document, ctx.operation_name, ctx.variables, settings
            )
            if errors:
                ctx.pre_execution_errors = errors
        yield


def operation_name_errors(document, operation_name: Any) -> list[GraphQLError]:
    """The GraphQL spec's GetOperation: with several operations, the request must name
    the one to run (empty: fine, or an unknown name, which the caller reports)."""
    if operation_name is not None:
        return []
    operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
    if operations < 2:
        return []
    return [
        _coded(
            f"This document holds {operations} operations: name the one to run in `operationName`.",
            "OPERATION_NAME_REQUIRED",
        )
    ]


def limit_errors(schema, document, operation_name, variables, settings) -> list[GraphQLError]:
    """Selections, text, depth, aliases, introspection and cost errors of a parsed document
    (empty: fine). Shared by the Strawberry path and the compiled read path."""
    return document_limit_errors(schema, document, settings) or request_limit_errors(
        document, operation_name, variables, settings
    )


def document_limit_errors(schema, document, settings) -> list[GraphQLError]:
    """The limits that depend on the document alone (the compiled path caches them)."""
    # First, in linear time: fragments spread twice per level expand exponentially, and the
    # depth/alias validators (and the cost walk) expand them without memoising.
    size = expanded_size(document, cap=settings.max_selections + 1)
    if size > settings.max_selections:
        return [
            _coded(
                f"This document selects more than {settings.max_selections:,} fields once its "
                "fragments are expanded.",
                "SELECTION_LIMIT_EXCEEDED",
                limit=settings.max_selections,
            )
        ]
    if any(
        isinstance(node, StringValueNode) and UNSTORABLE.search(node.value)
        for node in _string_nodes(document)
    ):
        return [_coded(UNSTORABLE_MESSAGE, "BAD_USER_INPUT")]
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    if not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    try:
        errors = validate(schema, document, rules)
    except RecursionError:  # Strawberry's depth limiter recurses once per fragment level
        return [_coded("The document nests fragments too deeply.", "QUERY_TOO_DEEP")]
    except KeyError:  # an unknown fragment: the standard validation reports it
        return []
    return list(errors)


def request_limit_errors(document, operation_name, variables, settings) -> list[GraphQLError]:
    """The limits that depend on the variables too: their text, and the query's cost."""
    if _unstorable(variables):
        return [_coded(UNSTORABLE_MESSAGE, "BAD_USER_INPUT")]
    try:
        cost = query_cost(document, operation_name, variables)
    except RecursionError:
        return [_coded("The document nests fragments too deeply.", "QUERY_TOO_DEEP")]
    if cost > settings.max_cost:
        return [
            _coded(
                f"This query could return up to {cost:,} nodes; the limit is "
                f"{settings.max_cost:,}. Ask for smaller pages.",
                "QUERY_TOO_COSTLY",
                cost=cost,
                maxCost=settings.max_cost,
            )
        ]
    return []


UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "Text may not contain NUL (U+0000) or unpaired surrogate characters."


def _unstorable(value: Any) -> bool:
    """PostgreSQL text cannot hold NUL, and UTF-8 cannot encode a lone surrogate."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _string_nodes(document) -> list:
    found: list = []

    class Collect(Visitor):
        def enter_string_value(self, node, *_args):
            found.append(node)

    visit(document, Collect())
    return found


def expanded_size(document, cap: int) -> int:
    """Fields selected by the operations with every fragment spread expanded, each fragment
    sized once (cycles and unknown fragments count 0); at most `cap`."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    direct = {name: _direct(f.selection_set) for name, f in fragments.items()}
    sizes: dict[str, int] = {}
    for name in _dependency_order({n: spreads for n, (_, spreads) in direct.items()}):
        own, spreads = direct[name]
        sizes[name] = min(cap, own + sum(sizes.get(s, 0) for s in spreads))
    total = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            own, spreads = _direct(definition.selection_set)
            total = min(cap, total + own + sum(sizes.get(s, 0) for s in spreads))
    return total


def _direct(selection_set: SelectionSetNode | None) -> tuple[int, list[str]]:
    """Fields selected directly (inline fragments and sub-selections included) and the
    fragment spreads met, with repetition."""
    fields, spreads = 0, []
    pending = [selection_set] if selection_set is not None else []
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                spreads.append(selection.name.value)
                continue
            if isinstance(selection, FieldNode):
                fields += 1
            if selection.selection_set is not None:
                pending.append(selection.selection_set)
    return fields, spreads


def _dependency_order(spreads: dict[str, list[str]]) -> list[str]:
    """Fragment names, each after the fragments it spreads (cycles dropped); iterative, so
    a chain of hundreds of fragments cannot exhaust the stack."""
    order: list[str] = []
    done: set[str] = set()
    open_: set[str] = set()
    for root in spreads:
        stack = [root]
        while stack:
            name = stack[-1]
            if name in done:
                stack.pop()
            elif name not in open_:
                open_.add(name)
                stack.extend(s for s in spreads[name] if s in spreads and s not in open_)
            else:
                open_.discard(name)
                done.add(name)
                order.append(name)
                stack.pop()
    return order


def _json_error(status: int, message: str, code: str) -> tuple[int, bytes]:
    return status, orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


class BodyGuard:
    """ASGI middleware for POST /graphql: bounded body size, one JSON operation per request."""

    def __init__(
        self, app, *, max_bytes: int, max_upload_bytes: int = 0, path: str = "/graphql"
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Multipart requests carry an import's file: their own, larger bound.
        self.max_upload_bytes = max(max_upload_bytes, max_bytes)
        self.path = path

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        limit = self.max_upload_bytes if multipart else self.max_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, *self._too_large(limit))
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await self._reject(send, *self._too_large(limit))
                return
        if headers.get(b"content-type", b"").startswith(b"application/json"):
            stripped = bytes(body).lstrip()
            if stripped.startswith(b"["):
                await self._reject(
                    send,
                    *_json_error(
                        400,
                        "Batched requests are not supported: send one operation per request.",
                        "BATCH_NOT_SUPPORTED",
                    ),
                )
                return
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError:
                await self._reject(
                    send, *_json_error(400, "The request body is not valid JSON.", "BAD_REQUEST")
                )
                return
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    def _too_large(limit: int) -> tuple[int, bytes]:
        return _json_error(413, f"The request body exceeds {limit:,} bytes.", "REQUEST_TOO_LARGE")

    @staticmethod
    async def _reject(send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
