"""What the job types share in the schema (ImportJob, BulkJob): starting a job in the
background, and a progress subscription that follows the job's row until it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any

from strawberry.types import Info

from models.enums import JobStatus
from resolvers.context import Context
from resolvers.errors import NotFound

PROGRESS_POLL_SECONDS = 0.5  # how often a progress subscription looks at its job's row
_RUNNING: set[asyncio.Task] = set()  # strong references: a bare task may be collected


def run_in_background(job: Coroutine[Any, Any, Any]) -> None:
    task = asyncio.create_task(job)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def follow(
    info: Info,
    read: Callable[[Context], Awaitable[Any]],
    state: Callable[[Any], tuple],
    missing: str,
) -> AsyncGenerator[Any, None]:
    """The job's row now, then each time `state(row)` changes (a batch committed), until
    it has SUCCEEDED or FAILED."""
    last = None
    while True:
        # A fresh read each time: the job's row is what the running worker commits.
        row = await read(info.context.fresh())
        if row is None:
            raise NotFound(missing, argument="id")
        if state(row) != last:
            last = state(row)
            yield row
        if row.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return
        await asyncio.sleep(PROGRESS_POLL_SECONDS)
