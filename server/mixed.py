"""Mixed operations: some root fields compile, the others are answered by Strawberry.

The compiled root fields come from one statement (one JSON text each). Strawberry runs
the same document with those root fields blanked out: replaced by spaces, so every
remaining token keeps its line and column and Strawberry's errors point where the client
expects. Fragments and variables only the compiled fields used are blanked too (GraphQL
refuses unused ones). The two answers are merged in the operation's key order, the
compiled JSON embedded as it is (`orjson.Fragment`).
"""

from __future__ import annotations

from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    OperationDefinitionNode,
    TokenKind,
    VariableNode,
    Visitor,
    visit,
)


class _Uses(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.fragments: set[str] = set()
        self.variables: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.fragments.add(node.name.value)

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        self.variables.add(node.name.value)


def reduced_query(
    query: str, document: DocumentNode, operation: OperationDefinitionNode, compiled: set[str]
) -> str | None:
    """The query text without the root fields whose response keys are in `compiled`, or
    None when the document is not one a blanking can reduce (several operations)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        return None
    spans: list[tuple[int, int]] = []
    kept = []
    for sel in operation.selection_set.selections:
        if not isinstance(sel, FieldNode):
            return None
        key = sel.alias.value if sel.alias else sel.name.value
        if key in compiled:
            spans.append((sel.loc.start, sel.loc.end))
        else:
            kept.append(sel)

    # What the kept fields still use, through any depth of fragments.
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    uses = _Uses()
    for node in (*kept, *(operation.directives or ())):
        visit(node, uses)
    walked: set[str] = set()
    while pending := uses.fragments - walked:
        for name in pending:
            walked.add(name)
            visit(fragments[name], uses)
    spans += [(f.loc.start, f.loc.end) for n, f in fragments.items() if n not in uses.fragments]

    definitions = operation.variable_definitions or ()
    unused = [d for d in definitions if d.variable.name.value not in uses.variables]
    spans += [(d.loc.start, d.loc.end) for d in unused]
    if definitions and len(unused) == len(definitions):  # `query()` would not parse
        open_paren = definitions[0].loc.start_token.prev
        close_paren = definitions[-1].loc.end_token.next
        if open_paren.kind is not TokenKind.PAREN_L or close_paren.kind is not TokenKind.PAREN_R:
            return None
        spans += [(open_paren.start, open_paren.end), (close_paren.start, close_paren.end)]

    chars = list(query)
    for start, end in spans:
        for i in range(start, end):
            if chars[i] not in "\r\n":  # line breaks stay: later tokens keep their line
                chars[i] = " "
    return "".join(chars)


def merged(body: bytes, order: tuple[str, ...], compiled: dict[str, bytes]) -> bytes | None:
    """Strawberry's response to the reduced query with the compiled fields put back in
    `order`; None when an error nulled its `data` (that answer stands as it is).
    ValueError: not an answer to merge into."""
    answer = orjson.loads(body)  # orjson.JSONDecodeError is a ValueError
    if not isinstance(answer, dict) or "data" not in answer:
        raise ValueError("no data in the answer")
    data = answer["data"]
    if data is None:
        return None
    if not isinstance(data, dict) or not all(k in data or k in compiled for k in order):
        raise ValueError("the answer does not have the operation's fields")
    whole = {k: orjson.Fragment(compiled[k]) if k in compiled else data[k] for k in order}
    return orjson.dumps({k: whole if k == "data" else v for k, v in answer.items()})


async def captured(app, scope, receive) -> tuple[dict, bytes]:
    """Run an ASGI app to the end, keeping its response: (start message, body)."""
    start: dict = {}
    chunks: list[bytes] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return start, b"".join(chunks)
