"""Automatic persisted queries across instances (server/persisted.py): two apps on one
database stand for two instances, each with its own per-process cache."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from sqlalchemy import text

from server.app import create_app
from server.persisted import ROW_BYTES
from server.settings import Settings
from tests.factories import make_customer, make_user


def _ext(query: str) -> dict:
    return {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}
    }


@pytest.fixture
async def instance(app_engine) -> AsyncIterator:
    """instance(**settings) -> (httpx client, its compiled front): a new app each time."""
    clients: list[httpx.AsyncClient] = []

    def make(**kw):
        settings = Settings(database_url="unused", debug=False, compiled_reads=True, **kw)
        app = create_app(engine=app_engine, settings=settings)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        clients.append(client)
        return client, app.routes[0].app

    yield make
    for c in clients:
        await c.aclose()


@pytest.fixture
async def admin(engine) -> dict:
    _, token = await make_user(engine, role="ADMIN", email="boss@example.com")
    return {"Authorization": f"Bearer {token}"}


async def rows(engine) -> dict[str, str]:
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT hash, query FROM persisted_query"))
        return dict(result.all())


async def total(engine) -> tuple[int | None, int]:
    """(persisted_query_total, the sum it stands for)."""
    async with engine.connect() as conn:
        kept = (await conn.execute(text("SELECT bytes FROM persisted_query_total"))).scalar()
        actual = (
            await conn.execute(text("SELECT coalesce(sum(bytes), 0) FROM persisted_query"))
        ).scalar_one()
        return kept, actual


QUERY = "query Page($n: Int) { customers(first: $n) { nodes { number } } }"


async def test_a_hash_registered_on_one_instance_is_found_on_another(instance, admin, engine):
    customer = await make_customer(engine)
    (a, _), (b, front_b) = instance(), instance()
    ext = _ext(QUERY)
    hash_only = {"variables": {"n": 5}, "extensions": ext}
    r = await b.post("/graphql", json=hash_only, headers=admin)
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

    registered = await a.post("/graphql", json={"query": QUERY, **hash_only}, headers=admin)
    assert registered.json() == {"data": {"customers": {"nodes": [{"number": customer.number}]}}}
    assert await rows(engine) == {ext["persistedQuery"]["sha256Hash"]: QUERY}
    assert len(front_b.persisted) == 0

    by_post = await b.post("/graphql", json=hash_only, headers=admin)
    assert by_post.headers["x-customer-graph-path"] == "compiled"
    assert by_post.content == registered.content
    assert len(front_b.persisted) == 1  # kept: the next request reads no table
    params = {"extensions": orjson.dumps(ext).decode(), "variables": '{"n": 5}'}
    by_get = await instance()[0].get("/graphql", params=params, headers=admin)  # a third
    assert by_get.content == registered.content
    assert await total(engine) == (len(QUERY) + ROW_BYTES, len(QUERY) + ROW_BYTES)


async def test_not_signed_in_registers_nothing_and_finds_nothing(instance, admin, engine):
    a, _ = instance()
    for headers in ({}, {"Authorization": "Bearer cg_unknown"}):
        r = await a.post(
            "/graphql", json={"query": QUERY, "extensions": _ext(QUERY)}, headers=headers
        )
        assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await rows(engine) == {}
    await a.post("/graphql", json={"query": QUERY, "extensions": _ext(QUERY)}, headers=admin)
    r = await instance()[0].post("/graphql", json={"extensions": _ext(QUERY)})
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_only_a_text_matching_its_hash_is_stored_or_served(instance, admin, engine):
    a, _ = instance()
    r = await a.post(
        "/graphql", json={"query": QUERY + " ", "extensions": _ext(QUERY)}, headers=admin
    )
    assert r.status_code == 400
    assert await rows(engine) == {}
    # a row whose text does not match its hash (written behind the service's back)
    digest = _ext(QUERY)["persistedQuery"]["sha256Hash"]
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO persisted_query (hash, query, bytes) VALUES (:h, :q, 300)"),
            {"h": digest, "q": "{ me { user { email } } }"},
        )
    r = await a.post("/graphql", json={"extensions": _ext(QUERY)}, headers=admin)
    assert r.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_the_table_is_bounded_and_keeps_the_recently_used(instance, admin, engine):
    # one length each: the cap holds exactly ten
    template = "query Q{:03} {{ customers(first: {}) {{ totalCount }} }}"
    queries = [template.format(i, i % 9 + 1) for i in range(40)]
    size = len(queries[0]) + ROW_BYTES
    cap = 10 * size
    a, _ = instance(persisted_store_bytes=cap)
    for i, query in enumerate(queries):
        r = await a.post(
            "/graphql", json={"query": query, "extensions": _ext(query)}, headers=admin
        )
        assert r.json() == {"data": {"customers": {"totalCount": 0}}}
        if i == 4:  # read Q000 from the table on another instance: it is used again
            b, _ = instance(persisted_store_bytes=cap)
            r = await b.post("/graphql", json={"extensions": _ext(queries[0])}, headers=admin)
            assert r.json() == {"data": {"customers": {"totalCount": 0}}}
        kept, actual = await total(engine)
        assert kept == actual <= cap
    kept = set((await rows(engine)).values())
    # past the cap, evicted to nine tenths: now at the cap again, the newest ten
    assert kept == set(queries[-10:])  # Q000, renewed at i = 4, long since evicted


async def test_store_off_keeps_the_process_cache_only(instance, admin, engine):
    a, front = instance(persisted_store_bytes=0)
    r = await a.post("/graphql", json={"query": QUERY, "extensions": _ext(QUERY)}, headers=admin)
    assert "data" in r.json()
    assert await rows(engine) == {} and len(front.persisted) == 1
    r = await a.post("/graphql", json={"extensions": _ext(QUERY)}, headers=admin)
    assert "data" in r.json()
