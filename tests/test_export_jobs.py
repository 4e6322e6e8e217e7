"""customerExportStart: a download for its owner, streamed through their scope, expiring."""

from __future__ import annotations

import csv
import io

import orjson
from sqlalchemy import text

from tests.conftest import GraphQLClient, gid
from tests.factories import make_customer, make_sales_channel, make_user

START = """mutation($input: CustomerExportStartInput!) { customerExportStart(input: $input) {
  job { id format downloadUrl expiresAt } userErrors { field code message } } }"""


async def start(gql: GraphQLClient, **input) -> dict:
    return (await gql.data(START, {"input": input}))["customerExportStart"]


async def download(client, url: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.get(url, headers=headers)


async def test_an_export_streams_every_match_to_its_owner(client, gql, admin_token, engine):
    for i in range(450):  # past the search screen's cap of 400
        await make_customer(engine, last_name=f"Many{i:03d}", email=f"m{i}@example.com")
    await make_customer(engine, last_name="Other", email="o@example.com")
    started = await start(gql, filter={"lastName": "many", "nameMatch": "PREFIX"})
    assert started["userErrors"] == [] and started["job"]["format"] == "CSV"
    response = await download(client, started["job"]["downloadUrl"], admin_token)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 450 and {r["Last Name"][:4] for r in rows} == {"Many"}

    ndjson = await start(gql, format="NDJSON")
    lines = (await download(client, ndjson["job"]["downloadUrl"], admin_token)).text.splitlines()
    assert len(lines) == 451 and orjson.loads(lines[0])["Email"]


async def test_only_the_owner_downloads_and_a_rep_gets_their_own(client, gql, admin_token, engine):
    rep_id, rep_token = await make_user(engine, role="SALES_REP", email="rep@example.com")
    await make_customer(engine, last_name="Mine", sales_rep_id=rep_id)
    await make_customer(engine, last_name="Theirs")
    rep = GraphQLClient(client, rep_token)
    job = (await start(rep))["job"]
    mine = await download(client, job["downloadUrl"], rep_token)
    assert [r["Last Name"] for r in csv.DictReader(io.StringIO(mine.text))] == ["Mine"]
    assert (await download(client, job["downloadUrl"], admin_token)).status_code == 404
    assert (await download(client, job["downloadUrl"], None)).status_code == 401


async def test_expired_and_bad_filters(client, gql, admin_token, engine):
    job = (await start(gql))["job"]
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE export_job SET expires_at = now() - interval '1 second'"))
    expired = await download(client, job["downloadUrl"], admin_token)
    assert expired.status_code == 410
    assert expired.json()["errors"][0]["extensions"]["code"] == "EXPIRED"
    refused = await start(gql, filter={"country": "XX"})
    assert refused["job"] is None and "Unknown country" in refused["userErrors"][0]["message"]
    wrong_id = await start(gql, filter={"salesRep": "bm90LWFuLWlk"})
    assert wrong_id["job"] is None and wrong_id["userErrors"][0]["field"] == ["input", "filter"]

    # A filter that was fine when started and is not when run answers 400, not a crash.
    channel = await make_sales_channel(engine, "WEB")
    later = (await start(gql, filter={"salesChannels": [gid("SalesChannel", channel.id)]}))["job"]
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE export_job SET criteria = jsonb_set(criteria, '{country}', '\"XX\"')")
        )
    bad = await download(client, later["downloadUrl"], admin_token)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_an_export_by_tags_and_consent(client, gql, admin_token, engine):
    await make_customer(
        engine, last_name="Tagged", tags=["VIP"], email_marketing_state="SUBSCRIBED"
    )
    await make_customer(engine, last_name="Plain")
    for f in ({"tags": {"any": ["vip"]}}, {"emailMarketing": "SUBSCRIBED"}):
        job = (await start(gql, filter=f))["job"]
        got = await download(client, job["downloadUrl"], admin_token)
        assert [r["Last Name"] for r in csv.DictReader(io.StringIO(got.text))] == ["Tagged"], f
