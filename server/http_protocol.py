"""uvicorn's httptools protocol, with a response's headers and body sent in one write.

uvicorn writes the status line and headers as soon as the app sends `http.response.start`,
then the body in a second write: two send() system calls, two TCP segments and two wake-ups
of the client per response. py-spy on a small compiled read (bench.compare c and d at 10
connections) put those two writes at 13% and 3% of the worker's CPU. Here the headers wait
for the body's first write and go out with it, or on their own one loop iteration later
when no body write follows at once (HEAD, a streamed file): never later than that, and in
the same order. Everything else is uvicorn's (docs/architecture.md, Which HTTP server).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Above this, the headers and the body go out as two buffers of one writelines (no copy of
# a large body); below it, one bytes object (a copy costs less than a second buffer).
_JOIN_UP_TO = 64 * 1024


class _HeldHeaders:
    """A response's transport: holds its first write (the headers) until the next."""

    __slots__ = ("_flush_soon", "_held", "_loop", "_real", "_started")

    def __init__(self, real: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._real = real
        self._loop = loop
        self._held: bytes | None = None
        self._flush_soon: asyncio.Handle | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            if self._started:
                self._real.write(data)
                return
            self._started = True
            self._held = data
            self._flush_soon = self._loop.call_soon(self.flush)
            return
        self._held = None
        self._flush_soon.cancel()
        if len(data) <= _JOIN_UP_TO:
            self._real.write(held + data)
        else:
            self._real.writelines((held, data))

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._real.write(held)

    def close(self) -> None:
        self.flush()
        self._real.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's `http="httptools"`, each new request's cycle writing through _HeldHeaders."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:
            cycle.transport = _HeldHeaders(self.transport, self.loop)
