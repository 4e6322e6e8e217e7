"""Parse and validate each distinct document once per worker on the Strawberry path.

Every mutation (and every query the compiled path leaves to Strawberry) was parsed and
validated on each request: about 3-4 ms of CPU for customerCreate or ledgerTransfer, close
to half of what such a request costs the worker. A document that parsed and passed the
standard validation rules passes them again: its parse is kept (by text and parse
options), and so is the fact that it validated (by document and rules). Invalid documents
and their errors are never kept: they are validated afresh, so error objects are never
shared between requests.

Placed after RequestLimits: the limits still run on every request first (they depend on
the variables and settings too); only when they leave nothing to report is a known-valid
document let through without validating it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache
from graphql import DocumentNode, parse
from strawberry.extensions import SchemaExtension

# Per worker, by what the documents hold in memory, as server/compiled.py counts them (16 KB
# and 120 bytes per character of query text, what tracemalloc measured).
MAX_BYTES = 16 * 2**20
BASE_BYTES = 16_384
BYTES_PER_CHAR = 120


@dataclass(eq=False, slots=True)
class Known:
    document: DocumentNode
    size: int  # bytes, as counted above
    valid_for: set = field(default_factory=set)  # (id(schema), rules) it validated under


# (query text, parse options) -> Known. Filled by signed-in requests only, like the
# compiled path's cache: nobody anonymous can fill a worker's memory.
_KNOWN: LRUCache = LRUCache(maxsize=MAX_BYTES, getsizeof=lambda known: known.size)


class KnownDocuments(SchemaExtension):
    """One instance per request (Strawberry builds it from the class)."""

    def __init__(self, *, execution_context: Any = None) -> None:
        super().__init__(execution_context=execution_context)
        self.known: Known | None = None

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        query = ctx.query
        if ctx.graphql_document is None and isinstance(query, str) and query and _signed_in(ctx):
            options = dict(ctx.parse_options or {})
            key = (query, tuple(sorted(options.items())))
            self.known = _KNOWN.get(key)
            if self.known is None:
                try:
                    document = parse(query, **options)
                except Exception:  # Strawberry parses again and reports it as usual
                    document = None
                size = BASE_BYTES + BYTES_PER_CHAR * len(query)
                if document is not None and size <= MAX_BYTES:
                    self.known = _KNOWN[key] = Known(document, size)
            if self.known is not None:
                ctx.graphql_document = self.known.document
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        known = self.known
        rules = (id(ctx.schema), tuple(ctx.validation_rules))
        if known is not None and ctx.pre_execution_errors is None and rules in known.valid_for:
            ctx.pre_execution_errors = []  # validated before: Strawberry skips validation
        yield
        if known is not None and ctx.pre_execution_errors == []:
            known.valid_for.add(rules)


def _signed_in(ctx: Any) -> bool:
    viewer = getattr(ctx.context, "viewer", None)
    return bool(viewer is not None and viewer.is_authenticated)
