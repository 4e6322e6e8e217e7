"""customerImportStart over GraphQL (multipart), job progress, the error report, resuming."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import orjson
from sqlalchemy import text

from resolvers import import_jobs, import_rows
from tests.conftest import GraphQLClient
from tests.factories import make_user

START = """mutation($file: Upload!, $onError: ImportErrorPolicy, $dryRun: Boolean) {
  customerImportStart(input: {upload: $file, onError: $onError, dryRun: $dryRun}) {
    job { id status fileName } userErrors { field code message } } }"""
JOB = """query($id: ID!) { importJob(id: $id) {
  status rowsDone created updated unchanged rejected message errorReportUrl
  unknownColumns ignoredColumns
  errors(first: 10) { totalCount edges { node { line column code message values } } } } }"""
CSV = (
    "External ID,First Name,Last Name,E-mail,Phone,Country,Loyalty\n"
    "A1,Ada,Lovelace,ada@example.com,+44 20 7946 0958,GB,x\n"
    "A2,Alan,Turing,alan@example.com,not a phone,GB,x\n"
    "A3,Grace,Hopper,grace@example.com,,US,x\n"
)


async def upload(client, token: str, data: bytes, name: str = "customers.csv", **variables):
    """A GraphQL multipart request (jaydenseric's spec), as Apollo's upload link sends it."""
    operations = {"query": START, "variables": {"file": None, **variables}}
    response = await client.post(
        "/graphql",
        data={
            "operations": orjson.dumps(operations).decode(),
            "map": orjson.dumps({"0": ["variables.file"]}).decode(),
        },
        files={"0": (name, data, "text/csv")},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def finished(gql, job_id: str) -> dict:
    for _ in range(200):
        job = (await gql.data(JOB, {"id": job_id}))["importJob"]
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


async def test_an_admin_imports_a_file_and_follows_the_job(client, gql, admin_token, engine):
    body = await upload(client, admin_token, CSV.encode())
    started = body["data"]["customerImportStart"]
    assert started["userErrors"] == [] and started["job"]["fileName"] == "customers.csv"
    job = await finished(gql, started["job"]["id"])
    assert job["status"] == "SUCCEEDED", job
    assert (job["rowsDone"], job["created"], job["rejected"]) == (3, 2, 1)
    assert job["unknownColumns"] == ["Loyalty"]  # reported, not silently dropped
    (error,) = [e["node"] for e in job["errors"]["edges"]]
    assert (error["line"], error["column"], error["code"]) == (3, "Phone", "INVALID")
    assert error["values"][0] == "A2" and job["errors"]["totalCount"] == 1

    report = await client.get(
        job["errorReportUrl"], headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    lines = report.text.splitlines()
    assert lines[0].endswith("line,column,code,message") and lines[1].startswith("A2,Alan")

    _, rep_token = await make_user(engine, role="SALES_REP", email="rep@example.com")
    rep = GraphQLClient(client, rep_token)
    assert (await rep.data(JOB, {"id": started["job"]["id"]}))["importJob"] is None
    hidden = await client.get(
        job["errorReportUrl"], headers={"Authorization": f"Bearer {rep_token}"}
    )
    assert hidden.status_code == 404
    assert (await client.get(job["errorReportUrl"])).status_code == 401

    refused = await upload(client, rep_token, CSV.encode())
    assert refused["data"]["customerImportStart"]["userErrors"][0]["code"] == "FORBIDDEN"

    people = await gql.data("{ customers { totalCount } }")
    assert people["customers"]["totalCount"] == 2


async def test_a_file_nothing_can_be_read_from_starts_no_job(client, gql, admin_token, engine):
    body = await upload(client, admin_token, b"colour,size\nred,L\n")
    result = body["data"]["customerImportStart"]
    assert result["job"] is None
    assert result["userErrors"][0]["field"] == ["input", "upload"]
    assert "NO_KNOWN_COLUMN" in result["userErrors"][0]["message"]
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM import_job"))).scalar() == 0


async def test_abort_and_dry_run_jobs_write_nothing(client, gql, admin_token):
    for variables in ({"onError": "ABORT"}, {"dryRun": True}):
        body = await upload(client, admin_token, CSV.encode(), **variables)
        job = await finished(gql, body["data"]["customerImportStart"]["job"]["id"])
        assert job["status"] == "SUCCEEDED" and "nothing was written" in job["message"]
    assert (await gql.data("{ customers { totalCount } }"))["customers"]["totalCount"] == 0


async def test_a_job_left_running_resumes_after_its_last_committed_row(engine, gql):
    options = import_rows.ImportOptions()
    job_id = await import_jobs.create_job(
        engine, owner_id=None, file_name="big.csv", data=CSV.encode(), options=options
    )
    # A process died after committing the first row of this job (and its counters).
    first = CSV.split("\n")[0] + "\n" + CSV.split("\n")[1] + "\n"
    await import_rows.run_import(engine, io.BytesIO(first.encode()), options)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE import_job SET status = 'RUNNING', rows_done = 1, created = 1"
                " WHERE id = :id"
            ),
            {"id": job_id},
        )
    assert await import_jobs.resume_jobs(engine) == [job_id]
    job_gid = base64.b64encode(f"ImportJob:{job_id}".encode()).decode()
    job = (await gql.data(JOB, {"id": job_gid}))["importJob"]
    assert job["status"] == "SUCCEEDED"
    assert (job["rowsDone"], job["created"], job["rejected"]) == (3, 2, 1)
    async with engine.connect() as conn:
        emails = (await conn.execute(text("SELECT count(*) FROM customer"))).scalar()
        source = (
            await conn.execute(text("SELECT source FROM import_job WHERE id = :id"), {"id": job_id})
        ).scalar()
    assert emails == 2  # Ada once: the resumed run started after her row
    assert source is None  # the file is not kept once the job is done


PROGRESS = """subscription($id: ID!) { importJobProgress(id: $id) {
  status rowsDone created rejected } }"""


async def test_progress_is_a_subscription_until_the_job_ends(app_engine, settings, admin_token):
    import websockets

    from server.app import create_app
    from tests.conftest import serve

    app = create_app(engine=app_engine, settings=settings)
    async with serve(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            body = await upload(http, admin_token, CSV.encode())
        job_id = body["data"]["customerImportStart"]["job"]["id"]
        async with websockets.connect(
            f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]
        ) as ws:
            init = {
                "type": "connection_init",
                "payload": {"authorization": f"Bearer {admin_token}"},
            }
            await ws.send(orjson.dumps(init).decode())
            assert orjson.loads(await ws.recv())["type"] == "connection_ack"
            message = {"id": "1", "type": "subscribe", "payload": {"query": PROGRESS,
                       "variables": {"id": job_id}}}  # fmt: skip
            await ws.send(orjson.dumps(message).decode())
            states = []
            while True:
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 20))
                if frame["type"] == "complete":
                    break
                assert frame["type"] == "next", frame
                states.append(frame["payload"]["data"]["importJobProgress"])
    assert states[-1] == {"status": "SUCCEEDED", "rowsDone": 3, "created": 2, "rejected": 1}
    assert len({(s["status"], s["rowsDone"]) for s in states}) == len(states)  # changes only
