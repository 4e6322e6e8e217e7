"""customerBulkUpdate: a job over real GraphQL and PostgreSQL; scope, events, per-customer
errors, bad input, batches that commit whole, resuming after a crash."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from models.enums import CustomerStatus, Role
from resolvers import bulk_updates
from resolvers.context import Context
from resolvers.search import Criteria, TextMatch
from resolvers.viewer import Viewer
from tests.conftest import GraphQLClient, gid
from tests.factories import make_custom_field, make_customer, make_user, set_custom_value

START = """mutation($input: CustomerBulkUpdateInput!) { customerBulkUpdate(input: $input) {
  job { id status total } userErrors { field code message } } }"""
JOB = """query($id: ID!) { bulkJob(id: $id) {
  status total done changed unchanged rejected message errorPolicy
  errors(first: 50) { totalCount edges { node { customerId code message
    customer { lastName } } } } } }"""


async def start(gql: GraphQLClient, **input: Any) -> dict:
    return (await gql.data(START, {"input": input}))["customerBulkUpdate"]


async def finished(gql: GraphQLClient, job_id: str) -> dict:
    job = None
    for _ in range(200):
        job = (await gql.data(JOB, {"id": job_id}))["bulkJob"]
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"bulk job {job_id} did not finish: {job}")


async def run(gql: GraphQLClient, **input: Any) -> dict:
    started = await start(gql, **input)
    assert started["userErrors"] == [], started
    return await finished(gql, started["job"]["id"])


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(text(sql), params))


async def updated_events(engine: AsyncEngine) -> dict[int, dict]:
    found = await rows(
        engine,
        "SELECT customer_id, data FROM timeline_event WHERE kind = 'CUSTOMER_UPDATED' ORDER BY id",
    )
    events: dict[int, dict] = {}
    for customer_id, data in found:
        assert customer_id not in events, "one event per changed customer"
        events[customer_id] = data
    return events


def ids(*customers: Any) -> list[str]:
    return [gid("Customer", c.id) for c in customers]


def errors_of(job: dict) -> dict[str, str]:
    return {e["node"]["customerId"]: e["node"]["code"] for e in job["errors"]["edges"]}


async def test_an_admin_sets_a_rep_by_ids_and_unchanged_customers_get_no_event(gql, engine):
    rep1, _ = await make_user(engine, role="SALES_REP", email="r1@example.com")
    rep2, _ = await make_user(engine, role="SALES_REP", email="r2@example.com")
    a = await make_customer(engine, last_name="A", sales_rep_id=rep1)
    b = await make_customer(engine, last_name="B")
    c = await make_customer(engine, last_name="C", sales_rep_id=rep2)  # already so
    await make_customer(engine, last_name="D", sales_rep_id=rep1)

    job = await run(gql, customers={"ids": ids(a, b, c)}, set={"salesRepId": gid("User", rep2)})
    assert job["status"] == "SUCCEEDED" and job["message"] is None
    counts = [job[k] for k in ("total", "done", "changed", "unchanged", "rejected")]
    assert counts == [3, 3, 2, 1, 0]

    reps = dict(await rows(engine, "SELECT last_name, sales_rep_id FROM customer"))
    assert reps == {"A": rep2, "B": rep2, "C": rep2, "D": rep1}
    versions = dict(await rows(engine, "SELECT last_name, version FROM customer"))
    assert versions["A"] == a.version + 1 and versions["C"] == c.version  # no write at all
    events = await updated_events(engine)
    assert set(events) == {a.id, b.id}  # none for C, already as set
    job_pk = (await rows(engine, "SELECT id FROM bulk_job"))[0][0]
    assert events[a.id] == {
        "source": f"bulk:{job_pk}",
        "changes": {"sales_rep_id": {"old": str(rep1), "new": str(rep2)}},
    }


async def test_a_rep_by_filter_matches_only_their_own_customers(client, engine):
    rep1, token1 = await make_user(engine, role="SALES_REP", email="r1@example.com")
    rep2, _ = await make_user(engine, role="SALES_REP", email="r2@example.com")
    mine = [await make_customer(engine, last_name="Smith", sales_rep_id=rep1) for _ in range(2)]
    theirs = await make_customer(engine, last_name="Smith", sales_rep_id=rep2)
    other = await make_customer(engine, last_name="Jones", sales_rep_id=rep1)
    rep = GraphQLClient(client, token1)

    job = await run(rep, customers={"filter": {"lastName": "smith"}}, set={"status": "ARCHIVED"})
    assert (job["total"], job["changed"], job["rejected"]) == (2, 2, 0)
    status = dict(await rows(engine, "SELECT id, status::text FROM customer"))
    assert [status[c.id] for c in mine] == ["ARCHIVED", "ARCHIVED"]
    assert status[theirs.id] == "ACTIVE" and status[other.id] == "ACTIVE"
    events = await updated_events(engine)
    assert set(events) == {c.id for c in mine}
    assert events[mine[0].id]["changes"] == {"status": {"old": "ACTIVE", "new": "ARCHIVED"}}


async def test_a_rep_by_ids_gets_others_customers_rejected_not_found(client, engine):
    rep1, token1 = await make_user(engine, role="SALES_REP", email="r1@example.com")
    rep2, _ = await make_user(engine, role="SALES_REP", email="r2@example.com")
    mine = await make_customer(engine, last_name="Mine", sales_rep_id=rep1)
    theirs = await make_customer(engine, last_name="Theirs", sales_rep_id=rep2)
    rep = GraphQLClient(client, token1)

    job = await run(rep, customers={"ids": ids(mine, theirs)}, set={"status": "ARCHIVED"})
    assert (job["done"], job["changed"], job["rejected"]) == (2, 1, 1)
    (error,) = [e["node"] for e in job["errors"]["edges"]]
    # Exactly as customerUpdate answers it: out of scope looks like missing.
    assert error["customerId"] == gid("Customer", theirs.id) and error["code"] == "NOT_FOUND"
    assert error["customer"] is None  # and the error shows the rep nothing of it
    status = dict(await rows(engine, "SELECT last_name, status::text FROM customer"))
    assert status == {"Mine": "ARCHIVED", "Theirs": "ACTIVE"}

    # customerUpdate's rule: a rep assigns customers to themselves only.
    refused = await start(rep, customers={"ids": ids(mine)}, set={"salesRepId": gid("User", rep2)})
    assert refused["job"] is None
    assert refused["userErrors"] == [
        {
            "field": ["input", "set", "salesRepId"],
            "code": "FORBIDDEN",
            "message": "Sales reps assign customers to themselves only.",
        }
    ]
    # Jobs are their owner's: the rep sees their one job, not an admin's.
    listed = await rep.data("{ bulkJobs { totalCount } }")
    assert listed == {"bulkJobs": {"totalCount": 1}}


async def test_per_customer_errors_merged_and_a_missing_required_field(gql, engine):
    region = await make_custom_field(engine, "region", required=True)
    await make_custom_field(engine, "tier", "SELECT", options=["gold", "silver"])
    ok = await make_customer(engine, last_name="Ok")
    await set_custom_value(engine, ok.id, region.id, text_value="north")
    lacking = await make_customer(engine, last_name="Lacking")  # imported without one
    survivor = await make_customer(engine, last_name="Survivor")
    await set_custom_value(engine, survivor.id, region.id, text_value="south")
    merged = await make_customer(
        engine, last_name="Merged", status=CustomerStatus.MERGED, merged_into_id=survivor.id
    )

    job = await run(
        gql,
        customers={"ids": ids(ok, lacking, merged)},
        set={"customFields": [{"key": "tier", "value": "gold"}]},
    )
    assert job["status"] == "SUCCEEDED"
    assert (job["done"], job["changed"], job["rejected"]) == (3, 1, 2)
    assert errors_of(job) == {
        gid("Customer", lacking.id): "REQUIRED",
        gid("Customer", merged.id): "CONFLICT",
    }
    values = await rows(
        engine,
        "SELECT v.customer_id FROM custom_field_value v JOIN custom_field_definition d"
        " ON d.id = v.definition_id WHERE d.key = 'tier'",
    )
    assert values == [(ok.id,)]  # the rejected customer's savepoint left nothing behind
    events = await updated_events(engine)
    assert events[ok.id]["changes"] == {"customFields.tier": {"old": None, "new": "gold"}}
    assert set(events) == {ok.id}

    again = await run(
        gql,
        customers={"filter": {"lastName": "ok"}},
        set={"customFields": [{"key": "tier", "value": "gold"}]},
    )
    assert (again["changed"], again["unchanged"]) == (0, 1)  # same value: no write, no event
    assert set(await updated_events(engine)) == {ok.id}


async def test_bad_input_gives_user_errors_and_writes_nothing(gql, engine):
    await make_custom_field(engine, "region", required=True)
    await make_custom_field(engine, "score", "NUMBER")
    a = await make_customer(engine, last_name="A")
    one = {"ids": ids(a)}
    cases = [
        (
            {"customers": one, "set": {"salesRepId": gid("User", 999)}},
            ["input", "set", "salesRepId"],
            "NOT_FOUND",
        ),
        (
            {"customers": one, "set": {"customFields": [{"key": "nope", "value": "x"}]}},
            ["input", "set", "customFields", "0", "key"],
            "NOT_FOUND",
        ),
        (
            {"customers": one, "set": {"customFields": [{"key": "score", "value": "lots"}]}},
            ["input", "set", "customFields", "0", "value"],
            "INVALID",
        ),
        (
            {"customers": one, "set": {"customFields": [{"key": "region", "value": None}]}},
            ["input", "set", "customFields", "0", "value"],
            "REQUIRED",
        ),
        ({"customers": one, "set": {}}, ["input", "set"], "REQUIRED"),
        ({"customers": one, "set": {"status": "MERGED"}}, ["input", "set", "status"], "INVALID"),
        ({"customers": {"ids": []}, "set": {"status": "ARCHIVED"}}, None, "REQUIRED"),
        (
            {"customers": {"filter": {"country": "XX"}}, "set": {"status": "ARCHIVED"}},
            ["input", "customers", "filter"],
            "INVALID",
        ),
        (
            {"customers": {"filter": {"salesRep": "bm90LWFuLWlk"}}, "set": {"status": "ARCHIVED"}},
            ["input", "customers", "filter"],
            "INVALID",
        ),
        (
            {"customers": {"ids": ["bm90LWFuLWlk"]}, "set": {"status": "ARCHIVED"}},
            ["input", "customers", "ids"],
            "INVALID",
        ),
    ]
    for input, field, code in cases:
        result = await start(gql, **input)
        assert result["job"] is None, input
        (error,) = result["userErrors"]
        assert error["code"] == code, (input, error)
        if field is not None:
            assert error["field"] == field, (input, error)
    # Both or neither of filter and ids: @oneOf, refused by the schema before any resolver.
    for customers in ({"ids": ids(a), "filter": {"lastName": "a"}}, {}):
        body = await gql(START, {"input": {"customers": customers, "set": {"status": "ARCHIVED"}}})
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
        assert body.get("data") is None
    assert await rows(engine, "SELECT count(*) FROM bulk_job") == [(0,)]
    assert await rows(engine, "SELECT count(*) FROM timeline_event") == [(0,)]
    assert await rows(engine, "SELECT status::text, version FROM customer") == [("ACTIVE", 1)]


async def test_a_site_user_may_not(client, engine):
    _, token = await make_user(engine, role="CUSTOMER", email="me@example.com")
    a = await make_customer(engine)
    result = await start(GraphQLClient(client, token), customers={"ids": ids(a)},
                         set={"status": "ARCHIVED"})  # fmt: skip
    assert result["job"] is None and result["userErrors"][0]["code"] == "FORBIDDEN"


async def test_abort_writes_nothing_when_a_customer_is_rejected(gql, engine):
    a = await make_customer(engine, last_name="A")
    survivor = await make_customer(engine, last_name="S")
    merged = await make_customer(
        engine, last_name="M", status=CustomerStatus.MERGED, merged_into_id=survivor.id
    )
    job = await run(
        gql,
        customers={"ids": ids(a, merged)},
        set={"status": "ARCHIVED"},
        errorPolicy="ABORT",
    )
    assert job["status"] == "FAILED" and "nothing was written" in job["message"]
    assert (job["changed"], job["rejected"]) == (0, 1)
    assert errors_of(job) == {gid("Customer", merged.id): "CONFLICT"}
    assert (await rows(engine, "SELECT status::text FROM customer WHERE id = :i", i=a.id)) == [
        ("ACTIVE",)
    ]
    assert await updated_events(engine) == {}

    whole = await run(gql, customers={"ids": ids(a)}, set={"status": "ARCHIVED"},
                      errorPolicy="ABORT")  # fmt: skip
    assert (whole["status"], whole["changed"]) == ("SUCCEEDED", 1)
    assert set(await updated_events(engine)) == {a.id}  # recorded once, at the end


class Crash(BaseException):
    """The process dying mid-batch: nothing in the job catches it."""


async def _admin_job(app_engine: AsyncEngine, admin_id: int, **kw: Any) -> int:
    ctx = Context(
        engine=app_engine,
        settings=bulk_updates._JobSettings(),
        viewer=Viewer(admin_id, Role.ADMIN),
    )
    return await bulk_updates.start(ctx, **kw)


async def test_a_batch_commits_whole_and_a_crashed_job_resumes_after_it(
    engine, app_engine, monkeypatch
):
    admin, _ = await make_user(engine, role="ADMIN", email="boss@example.com")
    customers = [await make_customer(engine, last_name=f"C{i}") for i in range(5)]
    job_id = await _admin_job(
        app_engine,
        admin,
        ids=None,
        criteria=Criteria(last_name="c", name_match=TextMatch.PREFIX),
        changes=bulk_updates.BulkChanges({"status": CustomerStatus.ARCHIVED}),
    )
    monkeypatch.setattr(bulk_updates, "BATCH_SIZE", 2)
    real = bulk_updates.record_many
    calls = 0

    async def dies_in_the_second_batch(conn, events):
        nonlocal calls
        calls += 1
        await real(conn, events)  # written, then the process dies before the commit
        if calls == 2:
            raise Crash

    monkeypatch.setattr(bulk_updates, "record_many", dies_in_the_second_batch)
    with pytest.raises(Crash):
        await bulk_updates.run_job(app_engine, job_id)

    status = [r[0] for r in await rows(engine, "SELECT status::text FROM customer ORDER BY id")]
    assert status == ["ARCHIVED", "ARCHIVED", "ACTIVE", "ACTIVE", "ACTIVE"]  # batch 2: nothing
    (job,) = await rows(
        engine, "SELECT status::text, done, changed, last_customer_id, total FROM bulk_job"
    )
    assert tuple(job) == ("RUNNING", 2, 2, customers[1].id, 5)
    assert set(await updated_events(engine)) == {customers[0].id, customers[1].id}

    monkeypatch.setattr(bulk_updates, "record_many", real)
    assert await bulk_updates.resume_jobs(app_engine) == [job_id]
    (job,) = await rows(engine, "SELECT status::text, done, changed, unchanged FROM bulk_job")
    assert tuple(job) == ("SUCCEEDED", 5, 5, 0)
    status = {r[0] for r in await rows(engine, "SELECT status::text FROM customer")}
    assert status == {"ARCHIVED"}
    # Matched by a filter the first two no longer match (ARCHIVED is still live, but each
    # customer is handled once: the job goes on after its cursor), one event each.
    assert set(await updated_events(engine)) == {c.id for c in customers}


async def test_bulk_jobs_run_one_at_a_time(gql, engine):
    a = await make_customer(engine, last_name="A")
    async with engine.connect() as holder:  # another bulk job holding the lock
        await holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": bulk_updates.BULK_LOCK})
        started = await start(gql, customers={"ids": ids(a)}, set={"status": "ARCHIVED"})
        await asyncio.sleep(0.3)
        job = (await gql.data(JOB, {"id": started["job"]["id"]}))["bulkJob"]
        assert (job["status"], job["done"]) == ("QUEUED", 0)
        await holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": bulk_updates.BULK_LOCK})
        await holder.commit()
    job = await finished(gql, started["job"]["id"])
    assert (job["status"], job["changed"]) == ("SUCCEEDED", 1)


PROGRESS = """subscription($id: ID!) { bulkJobProgress(id: $id) { status done changed } }"""


async def test_progress_is_a_subscription_until_the_job_ends(app_engine, settings, admin_token,
                                                             engine):  # fmt: skip
    import websockets

    from server.app import create_app
    from tests.conftest import serve

    a = await make_customer(engine, last_name="A")
    app = create_app(engine=app_engine, settings=settings)
    async with serve(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            gql = GraphQLClient(http, admin_token)
            job_id = (await start(gql, customers={"ids": ids(a)}, set={"status": "ARCHIVED"}))[
                "job"
            ]["id"]
        async with websockets.connect(
            f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]
        ) as ws:
            init = {
                "type": "connection_init",
                "payload": {"authorization": f"Bearer {admin_token}"},
            }
            await ws.send(orjson.dumps(init).decode())
            assert orjson.loads(await ws.recv())["type"] == "connection_ack"
            message = {"id": "1", "type": "subscribe",
                       "payload": {"query": PROGRESS, "variables": {"id": job_id}}}  # fmt: skip
            await ws.send(orjson.dumps(message).decode())
            states = []
            while True:
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 20))
                if frame["type"] == "complete":
                    break
                assert frame["type"] == "next", frame
                states.append(frame["payload"]["data"]["bulkJobProgress"])
    assert states[-1] == {"status": "SUCCEEDED", "done": 1, "changed": 1}


async def test_a_job_whose_owner_may_no_longer_update_fails_and_writes_nothing(engine, app_engine):
    rep, _ = await make_user(engine, role="SALES_REP", email="rep@example.com")
    mine = await make_customer(engine, sales_rep_id=rep, user_id=None)
    ctx = Context(
        engine=app_engine, settings=bulk_updates._JobSettings(), viewer=Viewer(rep, Role.SALES_REP)
    )
    job_id = await bulk_updates.start(
        ctx,
        ids=[mine.id],
        criteria=None,
        changes=bulk_updates.BulkChanges({"status": CustomerStatus.ARCHIVED}),
    )
    async with engine.begin() as conn:  # demoted before the job ran
        await conn.execute(text("UPDATE app_user SET role = 'CUSTOMER' WHERE id = :i"), {"i": rep})
    await bulk_updates.run_job(app_engine, job_id)
    (job,) = await rows(engine, "SELECT status::text, done, message FROM bulk_job")
    assert job[:2] == ("FAILED", 0) and "may no longer update" in job[2]
    assert await rows(engine, "SELECT status::text FROM customer") == [("ACTIVE",)]


async def test_tags_added_and_removed_in_bulk(gql, engine):
    a = await make_customer(engine, last_name="A", tags=["Old", "vip"])
    b = await make_customer(engine, last_name="B", tags=["VIP"])
    full = await make_customer(engine, last_name="Full", tags=[f"t{i:02d}" for i in range(50)])
    await make_customer(engine, last_name="Other", tags=["Elsewhere"])
    job = await run(
        gql,
        customers={"filter": {"lastName": "other", "nameMatch": "EXACT", "status": ["ACTIVE"]}},
        set={"tagsAdd": ["elsewhere"]},
    )
    assert job["unchanged"] == 1  # already tagged, in another spelling
    job = await run(
        gql,
        customers={"ids": ids(a, b, full)},
        set={"tagsAdd": ["new", "ELSEWHERE"], "tagsRemove": ["vip"]},
    )
    counts = [job[k] for k in ("total", "done", "changed", "unchanged", "rejected")]
    assert counts == [3, 3, 2, 0, 1]
    assert errors_of(job) == {gid("Customer", full.id): "INVALID"}
    tags = dict(await rows(engine, "SELECT last_name, tags FROM customer"))
    assert tags["A"] == ["Elsewhere", "new", "Old"]
    assert tags["B"] == ["Elsewhere", "new"]
    assert len(tags["Full"]) == 50
    events = await updated_events(engine)
    assert events[a.id]["changes"]["tags"] == {
        "old": ["Old", "vip"],
        "new": ["Elsewhere", "new", "Old"],
    }


async def test_a_bad_tag_refuses_the_bulk_update(gql, engine):
    await make_customer(engine, last_name="A")
    started = await start(gql, customers={"filter": {}}, set={"tagsAdd": ["x" * 41]})
    assert started["job"] is None
    assert started["userErrors"][0]["field"] == ["input", "set", "tagsAdd", "0"]
