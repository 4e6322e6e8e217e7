"""The request front (server/compiled.py) is safe before anyone signs in.

- A document of several operations runs none of them without `operationName` (the
  GraphQL spec's GetOperation), by POST and by GET, on both read paths; a GET with an
  APQ hash therefore never writes.
- A non-string `operationName` is HTTP 400 on both paths.
- Requests not signed in register no persisted query and fill no cache, and a known
  and an unknown APQ hash answer them alike.
- The caches are bounded by bytes (settings).
- The cheap document limits run before full validation on the compiled path.
"""

from __future__ import annotations

import dataclasses
import hashlib

import httpx
import orjson
import pytest
from sqlalchemy import text

import server.compiled as front_module
from server.app import create_app
from server.settings import Settings
from tests.factories import make_user

WRITE_AND_READ = """
mutation Write { customerCreate(input: {firstName: "Mallory"}) { userErrors { code } } }
query Read { customers { totalCount } }
"""
MULTI_ERROR = {
    "data": None,
    "errors": [
        {
            "message": "This document holds 2 operations: name the one to run in `operationName`.",
            "extensions": {"code": "OPERATION_NAME_REQUIRED"},
        }
    ],
}


def _settings(compiled: bool, **kw) -> Settings:
    return dataclasses.replace(
        Settings(database_url="unused", debug=False, compiled_reads=compiled), **kw
    )


@pytest.fixture
async def make_client(engine):
    """make_client(compiled, **settings) -> (httpx client, the app's front)."""
    clients: list[httpx.AsyncClient] = []

    def make(compiled: bool = True, **kw):
        app = create_app(engine=engine, settings=_settings(compiled, **kw))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        clients.append(client)
        return client, app.routes[0].app

    yield make
    for c in clients:
        await c.aclose()


@pytest.fixture
async def admin(engine) -> dict[str, str]:
    _, token = await make_user(engine, role="ADMIN", email="admin@example.com")
    return {"Authorization": f"Bearer {token}"}


def _ext(query: str) -> dict:
    digest = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def _get_params(query: str | None, ext: dict, **extra: str) -> dict[str, str]:
    params = {"extensions": orjson.dumps(ext).decode(), **extra}
    if query is not None:
        params["query"] = query
    return params


async def _customers(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM customer"))).scalar_one()


# ---------------------------------------------------------------------------------------
# 3. GET never writes; operationName


@pytest.mark.parametrize("compiled", [True, False])
async def test_several_operations_need_a_name(make_client, admin, engine, compiled):
    client, _ = make_client(compiled)
    r = await client.post("/graphql", json={"query": WRITE_AND_READ}, headers=admin)
    assert r.status_code == 200
    assert r.json() == MULTI_ERROR
    assert await _customers(engine) == 0
    # named, the query runs
    r = await client.post(
        "/graphql", json={"query": WRITE_AND_READ, "operationName": "Read"}, headers=admin
    )
    assert r.json() == {"data": {"customers": {"totalCount": 0}}}


async def test_both_paths_answer_several_operations_alike(make_client, admin):
    compiled, _ = make_client(True)
    loaders, _ = make_client(False)
    bodies = []
    for client in (compiled, loaders):
        r = await client.post("/graphql", json={"query": WRITE_AND_READ}, headers=admin)
        bodies.append((r.status_code, r.content))
    assert bodies[0] == bodies[1]


@pytest.mark.parametrize("compiled", [True, False])
async def test_get_with_a_persisted_hash_never_writes(make_client, admin, engine, compiled):
    client, _ = make_client(compiled)
    ext = _ext(WRITE_AND_READ)
    # registered by POST, naming the query (so registering runs no mutation)
    r = await client.post(
        "/graphql",
        json={"query": WRITE_AND_READ, "operationName": "Read", "extensions": ext},
        headers=admin,
    )
    assert r.json() == {"data": {"customers": {"totalCount": 0}}}
    # then the hash alone by GET, no operationName: Strawberry used to run the mutation
    r = await client.get("/graphql", params=_get_params(None, ext), headers=admin)
    assert r.json() == MULTI_ERROR
    # the full text by GET, signed in or not: still nothing runs
    for headers in (admin, {}):
        r = await client.get("/graphql", params=_get_params(WRITE_AND_READ, ext), headers=headers)
        assert r.json() == MULTI_ERROR
    assert await _customers(engine) == 0
    # naming the mutation by GET is refused as before
    r = await client.get(
        "/graphql", params=_get_params(None, ext, operationName="Write"), headers=admin
    )
    assert r.status_code == 405
    assert await _customers(engine) == 0


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("name", [5, {"a": 1}, ["Read"], True, 1.5])
async def test_operation_name_must_be_a_string(make_client, admin, compiled, name):
    client, _ = make_client(compiled)
    for headers in (admin, {}):
        r = await client.post(
            "/graphql", json={"query": WRITE_AND_READ, "operationName": name}, headers=headers
        )
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# ---------------------------------------------------------------------------------------
# 4. Nothing grows before sign-in


def _sizes(front) -> dict[str, int]:
    return {name: len(getattr(front, name)) for name in ("documents", "persisted", "statements")}


@pytest.mark.parametrize("compiled", [True, False])
async def test_requests_not_signed_in_keep_nothing(make_client, admin, compiled):
    client, front = make_client(compiled)
    for i in range(30):
        query = f"query Q{i} {{ customers(first: {i % 5 + 1}) {{ totalCount }} }}"
        ext = _ext(query)
        for headers in ({}, {"Authorization": "Bearer cg_unknown"}, {"Authorization": "Basic x"}):
            r = await client.post(
                "/graphql", json={"query": query, "extensions": ext}, headers=headers
            )
            assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            r = await client.get("/graphql", params=_get_params(query, ext), headers=headers)
            assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert _sizes(front) == {"documents": 0, "persisted": 0, "statements": 0}
    # introspection is still answered anonymously, and still kept nothing
    r = await client.post(
        "/graphql", json={"query": "{ __typename }", "extensions": _ext("{ __typename }")}
    )
    assert r.json() == {"data": {"__typename": "Query"}}
    assert _sizes(front) == {"documents": 0, "persisted": 0, "statements": 0}
    # signed in, the same request registers (the caches work at all)
    r = await client.post(
        "/graphql",
        json={"query": "{ __typename }", "extensions": _ext("{ __typename }")},
        headers=admin,
    )
    assert r.json() == {"data": {"__typename": "Query"}}
    assert _sizes(front)["persisted"] == 1


@pytest.mark.parametrize("compiled", [True, False])
async def test_known_and_unknown_hashes_answer_alike_when_not_signed_in(
    make_client, admin, compiled
):
    client, _ = make_client(compiled)
    known = "{ customers { totalCount } }"
    r = await client.post(
        "/graphql", json={"query": known, "extensions": _ext(known)}, headers=admin
    )
    assert r.json() == {"data": {"customers": {"totalCount": 0}}}
    r = await client.post("/graphql", json={"extensions": _ext(known)}, headers=admin)
    assert r.json() == {"data": {"customers": {"totalCount": 0}}}  # registered
    unknown = _ext("{ customers { totalCount } } # never sent")
    for headers in ({}, {"Authorization": "Bearer cg_unknown"}, {"Authorization": "Basic x"}):
        answers = set()
        for ext in (_ext(known), unknown):
            r = await client.post("/graphql", json={"extensions": ext}, headers=headers)
            answers.add((r.status_code, r.content))
            r = await client.get("/graphql", params=_get_params(None, ext), headers=headers)
            answers.add((r.status_code, r.content))
        assert len(answers) == 1, answers
        status, body = answers.pop()
        assert status == 200
        assert orjson.loads(body)["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_caches_are_bounded_by_bytes(make_client, admin):
    budget = 400_000
    client, front = make_client(True, document_cache_bytes=budget, persisted_cache_bytes=20_000)
    fields = " ".join(["number firstName lastName email"] * 4)
    for i in range(40):
        query = f"query Q{i} {{ customers(first: {i + 1}) {{ nodes {{ {fields} }} }} }}"
        r = await client.post(
            "/graphql", json={"query": query, "extensions": _ext(query)}, headers=admin
        )
        assert r.json()["data"]["customers"] == {"nodes": []}
        assert r.headers["x-customer-graph-path"] == "compiled"
    docs, persisted = front.documents, front.persisted.cache  # the per-process LRU
    assert 0 < docs.currsize <= budget and 0 < len(docs) < 40
    assert 0 < persisted.currsize <= 20_000 and 0 < len(persisted) < 40
    # an entry is sized from its text: base + per-character factor
    one = next(iter(docs))
    assert docs.getsizeof(docs[one]) == front_module._document_bytes(one, docs.get(one))
    # a document bigger than the whole budget is answered, not kept
    _, tiny = make_client(True, document_cache_bytes=1000)
    assert tiny.document("{ customers { totalCount } }") is not None
    assert len(tiny.documents) == 0


async def test_cheap_limits_run_before_full_validation(make_client, admin, monkeypatch):
    """400 fragments of one aliased field each (20 KB): the alias limit refuses it before
    graphql-core's overlap validation (quadratic in the fragments) runs at all."""
    calls: list[object] = []
    real = front_module.validate

    def counting(schema, node, *args, **kw):
        calls.append(node)
        return real(schema, node, *args, **kw)

    monkeypatch.setattr(front_module, "validate", counting)
    client, front = make_client(True)
    spreads = " ".join(f"...F{i}" for i in range(400))
    fragments = " ".join(f"fragment F{i} on Customer {{ a{i}: number }}" for i in range(400))
    bomb = f"{{ customers {{ nodes {{ {spreads} }} }} }} {fragments}"
    r = await client.post("/graphql", json={"query": bomb}, headers=admin)
    assert r.json()["errors"][0]["extensions"]["code"] == "TOO_MANY_ALIASES"
    assert calls == []
    assert front.documents.get(bomb).over_limit
    # a document within the limits is fully validated, once
    ok = "{ customers { totalCount } }"
    await client.post("/graphql", json={"query": ok}, headers=admin)
    await client.post("/graphql", json={"query": ok}, headers=admin)
    assert len(calls) == 1
