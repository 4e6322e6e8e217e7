"""Python's garbage collector in a serving worker.

A worker allocates short-lived objects by the thousand per request (the parsed body,
dicts on the way to the response), so the youngest generation fills every few requests
and, every hundred of those, a full collection walks every object the process holds:
the GraphQL schema, SQLAlchemy's metadata, the modules, several hundred thousand objects
that live as long as the process. Those pauses are the worst tail of a request's time.

`tune_gc` runs once a worker has built all of that: one collection, then `gc.freeze()`
moves the survivors to a permanent generation the collector never walks again, and the
youngest generation is collected after `threshold` allocations instead of CPython's 700
(fewer, larger collections of mostly dead objects: the same work, fewer pauses).
Reference cycles are still collected; memory freed by reference counting (almost all of
a request's) is not affected by either setting.
"""

from __future__ import annotations

import gc

PYTHON_DEFAULT = 700


def tune_gc(threshold: int) -> None:
    """Freeze what exists and set the youngest generation's threshold; 0 leaves the
    collector as Python set it up."""
    if threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
