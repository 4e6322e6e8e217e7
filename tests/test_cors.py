"""CORS: preflight and responses for allowed and refused origins; the same list for WebSockets."""

from __future__ import annotations

import contextlib
import dataclasses

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from server.app import create_app
from tests.conftest import serve

APP = "https://app.example.com"
OTHER = "https://evil.example.net"
PREFLIGHT = {
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
}


@contextlib.asynccontextmanager
async def http(engine, settings, origins):
    app = create_app(engine=engine, settings=dataclasses.replace(settings, cors_origins=origins))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_preflight_from_an_allowed_origin(engine, settings):
    async with http(engine, settings, (APP,)) as client:
        response = await client.options("/graphql", headers={"origin": APP, **PREFLIGHT})
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == APP
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "access-control-allow-credentials" not in response.headers


async def test_preflight_from_another_origin_is_refused(engine, settings):
    async with http(engine, settings, (APP,)) as client:
        response = await client.options("/graphql", headers={"origin": OTHER, **PREFLIGHT})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert response.json()["errors"][0]["extensions"]["code"] == "CORS_ORIGIN_REFUSED"


async def test_unset_means_same_origin_only(engine, settings):
    async with http(engine, settings, ()) as client:
        response = await client.options("/graphql", headers={"origin": APP, **PREFLIGHT})
    assert response.status_code == 403


async def test_responses_name_the_allowed_origin_only(engine, settings, admin_token):
    query = {"query": "{ me { user { email } } }"}
    auth = {"authorization": f"Bearer {admin_token}"}
    async with http(engine, settings, (APP,)) as client:
        allowed = await client.post("/graphql", json=query, headers={"origin": APP, **auth})
        other = await client.post("/graphql", json=query, headers={"origin": OTHER, **auth})
    assert allowed.headers["access-control-allow-origin"] == APP
    assert "x-customer-graph-path" in allowed.headers["access-control-expose-headers"]
    assert allowed.json()["data"]["me"]["user"]["email"] == "admin@example.com"
    assert "access-control-allow-origin" not in other.headers


async def test_star_allows_every_origin_without_credentials(engine, settings):
    async with http(engine, settings, ("*",)) as client:
        response = await client.options("/graphql", headers={"origin": OTHER, **PREFLIGHT})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


async def _handshake(address: str, origin: str | None) -> str:
    async with websockets.connect(
        f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"], origin=origin
    ) as ws:
        await ws.send(orjson.dumps({"type": "connection_init", "payload": {}}).decode())
        return orjson.loads(await ws.recv())["type"]


async def test_websocket_origins_follow_the_same_list(engine, settings):
    app = create_app(engine=engine, settings=dataclasses.replace(settings, cors_origins=(APP,)))
    async with serve(app) as address:
        assert await _handshake(address, APP) == "connection_ack"
        assert await _handshake(address, f"http://{address}") == "connection_ack"  # same origin
        assert await _handshake(address, None) == "connection_ack"  # not a browser
        with pytest.raises(InvalidStatus) as refused:
            await _handshake(address, OTHER)
        assert refused.value.response.status_code == 403
