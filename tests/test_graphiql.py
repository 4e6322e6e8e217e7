"""GraphiQL is served by the service itself: nothing the page needs comes from another origin."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import httpx

from server import graphiql
from server.app import create_app
from server.seed import seed

ATTRIBUTE_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]*)""")
SNAPSHOT = (Path(__file__).resolve().parent.parent / "schema.graphql").read_text()
IMPORT = re.compile(r"""@import\s+(?:url\()?\s*["']?([^"');\s]+)""")


def _same_origin(url: str) -> bool:
    """A path on this service (or inline data), never another origin or a protocol-relative URL."""
    return url.startswith("data:") or (url.startswith("/") and not url.startswith("//"))


async def _page(client) -> str:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def test_page_is_ours_and_references_no_other_origin(client):
    html = await _page(client)
    assert "<title>customer-graph</title>" in html
    urls = ATTRIBUTE_URL.findall(html)
    assert len(urls) >= 6, urls  # 4 scripts, 2 stylesheets, the icon
    assert all(_same_origin(u) for u in urls), [u for u in urls if not _same_origin(u)]
    assert "unpkg" not in html and "cdn" not in html.lower()
    # The token hint and the example query travel with the page.
    assert "Headers" in html and "Authorization" in html
    assert "query CustomerPage" in html


async def test_every_asset_is_served_and_loads_nothing_else(client):
    html = await _page(client)
    assets = [u for u in ATTRIBUTE_URL.findall(html) if u.startswith(graphiql.ASSETS_PATH)]
    assert len(assets) == 6
    for url in assets:
        response = await client.get(url)
        assert response.status_code == 200, url
        kind = "text/css" if url.endswith(".css") else "javascript"
        assert kind in response.headers["content-type"], (url, response.headers["content-type"])
        if url.endswith(".css"):
            # Fonts and images in the stylesheets are inline data, not fetched from anywhere.
            refs = CSS_URL.findall(response.text) + IMPORT.findall(response.text)
            assert all(r.startswith("data:") or r.startswith("#") for r in refs), url
    missing = await client.get(f"{graphiql.ASSETS_PATH}/nope.js")
    assert missing.status_code == 404


async def test_example_query_returns_data_on_demo_data(database_url, gql, engine):
    await seed(database_url, customers=30, seed=3)
    body = await gql(graphiql.EXAMPLE_QUERY)
    assert "errors" not in body, body["errors"]
    page = body["data"]["customers"]
    assert page["totalCount"] == 30 and len(page["edges"]) == 10
    assert any(edge["node"]["orders"]["edges"] for edge in page["edges"])


async def test_root_redirects_to_graphql_and_the_schema_is_served(client, engine, settings):
    home = await client.get("/")
    assert home.status_code == 307 and home.headers["location"] == "/graphql"
    sdl = await client.get("/schema.graphql")
    assert sdl.status_code == 200 and sdl.headers["content-type"].startswith("text/plain")
    assert sdl.text == SNAPSHOT

    closed = create_app(engine=engine, settings=dataclasses.replace(settings, introspection=False))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=closed), base_url="http://test"
    ) as other:
        hidden = await other.get("/schema.graphql")
    assert hidden.status_code == 404
