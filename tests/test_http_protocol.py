"""server/http_protocol.py: uvicorn's httptools protocol, a response's headers and body in
one write. A real uvicorn server on loopback, a real HTTP client; the socket's writes are
recorded by a subclass around the connection's transport."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from server.http_protocol import HttpProtocol

WRITES: list[bytes] = []


class _Recorded:
    def __init__(self, real) -> None:
        self._real = real

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._real.write(data)

    def writelines(self, buffers) -> None:
        buffers = [bytes(b) for b in buffers]
        WRITES.append(b"".join(buffers))
        self._real.writelines(buffers)

    def __getattr__(self, name: str):
        return getattr(self._real, name)


class RecordingProtocol(HttpProtocol):
    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(_Recorded(transport))


BIG = b"x" * 200_000


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":  # three chunks, an await between them
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    body = BIG if path == "/big" else b'{"data":{"ok":true}}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def base() -> AsyncIterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=RecordingProtocol,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started
    WRITES.clear()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_headers_and_body_go_out_in_one_write(base):
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(3):  # one keep-alive connection, a new cycle each time
            response = await client.post("/graphql", json={})
            assert response.json() == {"data": {"ok": True}}
    assert len(WRITES) == 3, WRITES
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") and w.endswith(b"}") for w in WRITES)


async def test_a_large_body_arrives_whole(base):
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/big")
    assert response.content == BIG
    assert len(WRITES) == 1 and WRITES[0].endswith(BIG)


async def test_head_sends_its_headers_without_a_body_write(base):
    async with httpx.AsyncClient(base_url=base) as client:
        response = await asyncio.wait_for(client.head("/small"), timeout=2)
        assert response.status_code == 200 and response.content == b""
        assert response.headers["content-length"] == "20"
        again = await client.get("/small")  # the connection is still usable
    assert again.json() == {"data": {"ok": True}}


async def test_a_streamed_body_arrives_in_order(base):
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/stream")
    assert response.content == b"one,two,three"
    # the headers went with the first chunk, each later chunk on its own
    assert WRITES[0].startswith(b"HTTP/1.1 200 OK") and b"one," in WRITES[0]
    assert len(WRITES) == 4, WRITES
