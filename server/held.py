"""Rewriting a whole response body in ASGI middleware: the one place that holds it."""

from __future__ import annotations

from collections.abc import Callable


def rewriting(
    send,
    hold: Callable[[dict], bool],
    rewrite: Callable[[dict, bytes], tuple[dict, bytes]],
):
    """`send` that holds a response whose `http.response.start` `hold` picks until its
    body is complete, then sends `rewrite(start, body)` with the new body's
    content-length. Responses not picked pass through untouched."""
    held: dict = {}

    async def wrapped(message) -> None:
        if message["type"] == "http.response.start":
            if hold(message):
                held["start"] = message
                held["body"] = bytearray()
                return
            return await send(message)
        if "start" not in held:
            return await send(message)
        held["body"] += message.get("body", b"")
        if message.get("more_body"):
            return
        start, body = rewrite(held["start"], bytes(held["body"]))
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped
