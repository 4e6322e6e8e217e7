"""Request limits, each with its own `extensions.code`, checked before any resolver runs.

| limit | default | env var | code |
| --- | --- | --- | --- |
| request body | 100 KB | CUSTOMER_GRAPH_MAX_BODY_BYTES | REQUEST_TOO_LARGE (HTTP 413) |
| batched requests | refused | - | BATCH_NOT_SUPPORTED (HTTP 400) |
| tokens | 5,000 | CUSTOMER_GRAPH_MAX_TOKENS | TOO_MANY_TOKENS |
| depth | 10 | CUSTOMER_GRAPH_MAX_DEPTH | QUERY_TOO_DEEP |
| aliases | 30 | CUSTOMER_GRAPH_MAX_ALIASES | TOO_MANY_ALIASES |
| cost (list items + entities) | 6,000 | CUSTOMER_GRAPH_MAX_COST | QUERY_TOO_COSTLY |
| expanded fields | 10,000 | CUSTOMER_GRAPH_MAX_SELECTIONS | SELECTION_LIMIT_EXCEEDED |
| NUL / lone surrogates in text | refused | - | BAD_USER_INPUT |
| page size | 0..100 | - | BAD_USER_INPUT |
| introspection | on | CUSTOMER_GRAPH_INTROSPECTION=0 | INTROSPECTION_DISABLED |
| several operations, no operationName | refused | - | OPERATION_NAME_REQUIRED |

Cost follows GitHub's rule, extended to every list: each list field costs the items it
may return, multiplied by the sizes of the lists it is nested in. A connection's lists
(`edges`, `nodes`) have its page size (`first`/`last`, or the resolver's default page); a
connection asked only for `totalCount`/`pageInfo` still costs its page once. `nodes(ids:)`
costs one per id; every other list its declared bound (a relation's cap, a LIMIT in SQL on
both paths: `Order.lines` 500, `Account.customers` 50; else `LIST_SIZES`, bounds the data
enforces), else `DEFAULT_LIST_SIZE`. A single
entity (a Node: `account`, `salesRep`, `mergedInto`, `customer(id:)`) costs one per
parent, being read by a loader or a join too; value objects (Money, BillingAddress,
TaxStatus), lists of scalars (`UserError.field`) and an edge's node (the edge counted it)
are free. Which fields are lists comes from the schema, and arguments are read as the
resolver gets them (variables coerced, defaults included). A query costs the sum.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from cachetools import LRUCache
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    validate,
    visit,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.validation import NoSchemaIntrospectionCustomRule
from starlette.websockets import WebSocket
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.types.graphql import OperationType

from resolvers.compiled.fields import list_cap
from resolvers.errors import ErrorCode
from resolvers.pagination import ROOT_PAGING, Paging, paging_of

# The most items each plain (non-connection) list field can hold. A relation declared in
# resolvers/relations.py carries its own cap (a LIMIT in SQL on both read paths, e.g.
# Order.lines, Account.customers) or bound (Customer.balances: one per currency), read
# through `list_cap`; the other lists are bounded here by the data or the resolver. A
# list field declared nowhere counts DEFAULT_LIST_SIZE, so a new list field is never free.
# (argument, extra): as many items as that list argument of an enclosing field has, plus
# extra (customerMergePreview(duplicateIds:) lists each duplicate, and the survivor).
LIST_SIZES: dict[tuple[str, str], int | tuple[str, int]] = {
    ("CustomerMergePreview", "balances"): 180,  # one per ISO 4217 currency
    ("CustomerMergePreview", "duplicates"): ("duplicateIds", 0),
    ("CustomerMergePreview", "versions"): ("duplicateIds", 1),
    ("MergeConflict", "values"): ("duplicateIds", 0),
    ("CustomerMergePreview", "moves"): 20,  # one per kind of row that changes hands
    ("RefineSearch", "kinds"): 10,  # facets are the top 10
    ("RefineSearch", "states"): 10,
    ("RefineSearch", "salesChannels"): 10,
    ("RefineSearch", "salesReps"): 10,
    ("RefineSearch", "tags"): 10,
}
DEFAULT_LIST_SIZE = 100


def _coded(message: str, code: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def query_cost(
    document, operation_name: str | None, variables: dict[str, Any] | None, schema=None
) -> int:
    """Objects a query may return at most (list items and single entities, see the module
    docstring), counted with the operation's coerced variables (defaults included).
    `schema` (Strawberry's or graphql-core's) defaults to the app's."""
    schema = _graphql_schema(schema)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    costs = [0]
    for operation in operations:
        root = schema.get_root_type(operation.operation)
        coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
        if root is None or isinstance(coerced, list):
            continue  # bad variables are refused before any resolver runs
        costs.append(_Walk(schema, fragments, coerced).cost(root, operation.selection_set))
    return max(costs)


def _graphql_schema(schema) -> GraphQLSchema:
    if schema is None:  # callers that predate the schema argument: the one app schema
        from server.api import schema as app_schema

        schema = app_schema
    return getattr(schema, "_schema", schema)


def _is_entity(gtype) -> bool:
    """A Node (or the Node interface): read by a loader or a join, unlike a value object
    (Money, BillingAddress, TaxStatus) built from its parent's row."""
    if isinstance(gtype, GraphQLInterfaceType):
        return gtype.name == "Node"
    return isinstance(gtype, GraphQLObjectType) and any(i.name == "Node" for i in gtype.interfaces)


def _is_edge(gtype) -> bool:
    """An edge's node is the edge's item, already counted with `edges`."""
    return isinstance(gtype, GraphQLObjectType) and {"node", "cursor"} <= gtype.fields.keys()


def _is_connection(gtype) -> bool:
    return isinstance(gtype, GraphQLObjectType) and {"edges", "pageInfo"} <= gtype.fields.keys()


class _Walk:
    """The cost walk over one operation: each list field costs its size times the sizes of
    the lists it is nested in; a connection's lists (edges, nodes) have its page size."""

    def __init__(self, schema: GraphQLSchema, fragments: dict, variables: dict[str, Any]):
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.list_arguments: dict[str, int] = {}  # longest list given to each argument name

    def cost(
        self, parent, selection_set, multiplier: int = 1, page: int | None = None, seen=frozenset()
    ) -> int:
        total = 0
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FragmentSpreadNode):
                fragment = self.fragments.get(node.name.value)
                if fragment is not None and node.name.value not in seen:
                    inner = self.schema.get_type(fragment.type_condition.name.value) or parent
                    seen_more = seen | {node.name.value}
                    total += self.cost(inner, fragment.selection_set, multiplier, page, seen_more)
            elif isinstance(node, InlineFragmentNode):
                inner = parent
                if node.type_condition is not None:
                    inner = self.schema.get_type(node.type_condition.name.value) or parent
                total += self.cost(inner, node.selection_set, multiplier, page, seen)
            elif isinstance(node, FieldNode):
                total += self.field(parent, node, multiplier, page, seen)
        return total

    def field(self, parent, node: FieldNode, multiplier: int, page: int | None, seen) -> int:
        definition = getattr(parent, "fields", {}).get(node.name.value)
        if definition is None or node.name.value.startswith("__"):
            return 0  # introspection is bounded by the schema
        args = self.arguments(definition, node)
        for name, value in args.items():
            if isinstance(value, list):
                longest = max(self.list_arguments.get(name, 0), len(value))
                self.list_arguments[name] = longest
        gtype = get_named_type(definition.type)
        paging = paging_of(definition)  # the page arguments the field declares
        paged = paging is not None
        # customerSearch(first:) pages the connection inside its result: hand the size down
        page = _page_size(paging, args) if paging is not None else page
        if _is_connection(gtype):
            size = page or ROOT_PAGING.default
            listed = self.cost(gtype, node.selection_set, multiplier, size, seen)
            # Counted even when only totalCount/pageInfo is asked for: the page is still read.
            return listed or multiplier * size
        if isinstance(get_nullable_type(definition.type), GraphQLList) and not is_leaf_type(gtype):
            size = self.list_size(parent, node, args, page)
            multiplier *= size
            return multiplier + self.cost(gtype, node.selection_set, multiplier, None, seen)
        own = multiplier if _is_entity(gtype) and not _is_edge(parent) else 0
        return own + self.cost(gtype, node.selection_set, multiplier, page if paged else None, seen)

    def list_size(self, parent, node: FieldNode, args: dict[str, Any], page: int | None) -> int:
        if _is_connection(parent):
            return page or ROOT_PAGING.default  # edges, nodes
        if parent is self.schema.query_type and node.name.value == "nodes":
            return len(args.get("ids") or ())
        size = LIST_SIZES.get((parent.name, node.name.value)) or list_cap(
            parent.name, node.name.value
        )
        if size is None:
            return DEFAULT_LIST_SIZE
        if isinstance(size, tuple):
            argument, extra = size
            return self.list_arguments.get(argument, 0) + extra
        return size

    def arguments(self, definition, node: FieldNode) -> dict[str, Any]:
        """The field's arguments as its resolver gets them (variables and defaults applied)."""
        try:
            return get_argument_values(definition, node, self.variables)
        except (GraphQLError, TypeError, ValueError):
            return {}  # refused by validation or execution before any resolver runs


def _page_size(paging: Paging, args: dict[str, Any]) -> int:
    for name in ("first", "last"):
        value = args.get(name)
        if isinstance(value, int):
            return max(value, 1)
    return paging.default  # no first/last: the page the field declares


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
                    ErrorCode.SUBSCRIPTION_NEEDS_WEBSOCKET,
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
            ErrorCode.OPERATION_NAME_REQUIRED,
        )
    ]


def limit_errors(schema, document, operation_name, variables, settings) -> list[GraphQLError]:
    """Selections, text, depth, aliases, introspection and cost errors of a parsed document
    (empty: fine). Shared by the Strawberry path and the compiled read path."""
    return document_limit_errors(schema, document, settings) or request_limit_errors(
        document, operation_name, variables, settings, schema
    )


# Documents that passed the document-level limits, by (schema, document, limits): the
# Strawberry path reuses one parsed document per text (server/known_documents.py), so a
# mutation is not walked again on every request. The document is kept as the value so its
# id is never reused while the entry lives (bounded by its text's size, as there);
# documents over a limit are never kept.
def _document_bytes(document: Any) -> int:
    text = document.loc.source.body if document.loc is not None else ""
    return 16_384 + 120 * len(text)


_WITHIN_LIMITS: LRUCache = LRUCache(maxsize=16 * 2**20, getsizeof=_document_bytes)


def document_limit_errors(schema, document, settings) -> list[GraphQLError]:
    """The limits that depend on the document alone (the compiled path caches them)."""
    key = (
        id(schema),
        id(document),
        settings.max_selections,
        settings.max_depth,
        settings.max_aliases,
        settings.introspection,
    )
    if _WITHIN_LIMITS.get(key) is document:
        return []
    errors = _document_limit_errors(schema, document, settings)
    if not errors:
        _WITHIN_LIMITS[key] = document
    return errors


def _document_limit_errors(schema, document, settings) -> list[GraphQLError]:
    # First, in linear time: fragments spread twice per level expand exponentially, and the
    # depth/alias validators (and the cost walk) expand them without memoising.
    size = expanded_size(document, cap=settings.max_selections + 1)
    if size > settings.max_selections:
        return [
            _coded(
                f"This document selects more than {settings.max_selections:,} fields once its "
                "fragments are expanded.",
                ErrorCode.SELECTION_LIMIT_EXCEEDED,
                limit=settings.max_selections,
            )
        ]
    if any(
        isinstance(node, StringValueNode) and UNSTORABLE.search(node.value)
        for node in _string_nodes(document)
    ):
        return [_coded(UNSTORABLE_MESSAGE, ErrorCode.BAD_USER_INPUT)]
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    if not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    try:
        errors = validate(schema, document, rules)
    except RecursionError:  # Strawberry's depth limiter recurses once per fragment level
        return [_coded("The document nests fragments too deeply.", ErrorCode.QUERY_TOO_DEEP)]
    except KeyError:  # an unknown fragment: the standard validation reports it
        return []
    return list(errors)


def request_limit_errors(
    document, operation_name, variables, settings, schema=None
) -> list[GraphQLError]:
    """The limits that depend on the variables too: their text, and the query's cost."""
    if _unstorable(variables):
        return [_coded(UNSTORABLE_MESSAGE, ErrorCode.BAD_USER_INPUT)]
    try:
        cost = query_cost(document, operation_name, variables, schema)
    except RecursionError:
        return [_coded("The document nests fragments too deeply.", ErrorCode.QUERY_TOO_DEEP)]
    if cost > settings.max_cost:
        return [
            _coded(
                f"This query could return up to {cost:,} nodes; the limit is "
                f"{settings.max_cost:,}. Ask for smaller pages.",
                ErrorCode.QUERY_TOO_COSTLY,
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
                        ErrorCode.BATCH_NOT_SUPPORTED,
                    ),
                )
                return
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError:
                await self._reject(
                    send,
                    *_json_error(400, "The request body is not valid JSON.", ErrorCode.BAD_REQUEST),
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
        return _json_error(
            413, f"The request body exceeds {limit:,} bytes.", ErrorCode.REQUEST_TOO_LARGE
        )

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
