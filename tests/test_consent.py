"""Marketing consent: reading it (both paths), changing it as staff and as the site user,
the timeline, the filter, and bad input."""

import pytest
from sqlalchemy import text

from tests.conftest import gid
from tests.factories import make_customer, make_user

BOTH_PATHS = True

CONSENT = "{ state optInLevel updatedAt source }"
READ = f"""query($id: ID!) {{ customer(id: $id) {{ version
  emailMarketing {CONSENT} smsMarketing {CONSENT} }} }}"""
UPDATE = f"""mutation($input: CustomerMarketingConsentUpdateInput!) {{
  customerMarketingConsentUpdate(input: $input) {{
    customer {{ version emailMarketing {CONSENT} smsMarketing {CONSENT} }}
    userErrors {{ field code message }} }} }}"""
FIND = """query($f: CustomerFilter) { customers(filter: $f, first: 50) { nodes { number } } }"""


@pytest.fixture
async def people(engine):
    rep, rep_token = await make_user(engine, role="SALES_REP", email="rep@example.com")
    user, user_token = await make_user(engine, role="CUSTOMER", email="ada@example.com")
    ada = await make_customer(engine, first_name="Ada", phone="+14155550100", user_id=user)
    bob = await make_customer(engine, first_name="Bob", sales_rep_id=rep)
    return {
        "ada": ada,
        "bob": bob,
        "rep_token": rep_token,
        "user_token": user_token,
        "ada_id": gid("Customer", ada.id),
        "bob_id": gid("Customer", bob.id),
    }


async def events(engine):
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT customer_id, kind, summary, data FROM timeline_event ORDER BY id")
        )
        return [tuple(r) for r in rows]


async def test_default_is_never_asked(gql, people):
    data = await gql.data(READ, {"id": people["bob_id"]})
    never = {"state": "NOT_SUBSCRIBED", "optInLevel": None, "updatedAt": None, "source": None}
    assert data["customer"]["emailMarketing"] == never
    assert data["customer"]["smsMarketing"] == never


async def test_staff_subscribes_and_the_timeline_has_old_and_new(gql, people, engine):
    inp = {
        "customerId": people["ada_id"],
        "email": {"state": "SUBSCRIBED", "optInLevel": "CONFIRMED", "source": "checkout"},
        "sms": {"state": "PENDING"},
    }
    payload = (await gql.data(UPDATE, {"input": inp}))["customerMarketingConsentUpdate"]
    assert payload["userErrors"] == []
    email = payload["customer"]["emailMarketing"]
    assert (email["state"], email["optInLevel"], email["source"]) == (
        "SUBSCRIBED",
        "CONFIRMED",
        "checkout",
    )
    assert email["updatedAt"] is not None
    sms = payload["customer"]["smsMarketing"]
    assert (sms["state"], sms["optInLevel"], sms["source"]) == ("PENDING", None, "staff")
    assert payload["customer"]["version"] == 2
    (event,) = await events(engine)
    assert event[1] == "MARKETING_CONSENT_UPDATED"
    assert event[3]["email"] == {
        "old": {"state": "NOT_SUBSCRIBED", "optInLevel": None},
        "new": {"state": "SUBSCRIBED", "optInLevel": "CONFIRMED"},
        "source": "checkout",
    }
    assert event[3]["sms"]["new"] == {"state": "PENDING", "optInLevel": None}
    # The same again changes nothing: no event, same version and date.
    again = (await gql.data(UPDATE, {"input": inp}))["customerMarketingConsentUpdate"]
    assert again["customer"]["version"] == 2
    assert again["customer"]["emailMarketing"]["updatedAt"] == email["updatedAt"]
    assert len(await events(engine)) == 1
    # Read back on this path: the same values.
    read = await gql.data(READ, {"id": people["ada_id"]})
    assert read["customer"]["emailMarketing"] == email


async def test_site_user_changes_own_consent_only(gql, people, engine):
    me = gql.as_(people["user_token"])
    inp = {"customerId": people["ada_id"], "email": {"state": "UNSUBSCRIBED"}}
    payload = (await me.data(UPDATE, {"input": inp}))["customerMarketingConsentUpdate"]
    assert payload["userErrors"] == []
    assert payload["customer"]["emailMarketing"]["source"] == "customer"
    other = {"customerId": people["bob_id"], "email": {"state": "SUBSCRIBED"}}
    payload = (await me.data(UPDATE, {"input": other}))["customerMarketingConsentUpdate"]
    assert payload["userErrors"][0]["code"] == "NOT_FOUND"
    assert [e[0] for e in await events(engine)] == [people["ada"].id]


async def test_rep_only_own_customers(gql, people):
    rep = gql.as_(people["rep_token"])
    for cid, code in ((people["ada_id"], "NOT_FOUND"), (people["bob_id"], None)):
        inp = {"customerId": cid, "email": {"state": "SUBSCRIBED"}}
        errors = (await rep.data(UPDATE, {"input": inp}))["customerMarketingConsentUpdate"][
            "userErrors"
        ]
        assert (errors[0]["code"] if errors else None) == code


@pytest.mark.parametrize(
    "who,change,field,code",
    [
        ("bob_id", {"sms": {"state": "SUBSCRIBED"}}, ["input", "sms", "state"], "INVALID"),
        (
            "ada_id",
            {"email": {"state": "UNSUBSCRIBED", "optInLevel": "SINGLE"}},
            ["input", "email", "optInLevel"],
            "INVALID",
        ),
        ("ada_id", {"email": {"state": "SUBSCRIBED", "source": "x" * 101}}, None, "INVALID"),
        (
            "ada_id",
            {"email": {"state": "SUBSCRIBED", "source": "4111111111111111"}},
            ["input"],
            "CARD_NUMBER_REFUSED",
        ),
        ("ada_id", {}, ["input"], "REQUIRED"),
    ],
)
async def test_bad_input_writes_nothing(gql, people, engine, who, change, field, code):
    inp = {"customerId": people[who], **change}
    payload = (await gql.data(UPDATE, {"input": inp}))["customerMarketingConsentUpdate"]
    assert payload["customer"] is None
    assert payload["userErrors"][0]["code"] == code
    if field is not None:
        assert payload["userErrors"][0]["field"] == field
    assert await events(engine) == []
    async with engine.connect() as conn:
        states = (
            await conn.execute(
                text("SELECT email_marketing_state::text, sms_marketing_state::text FROM customer")
            )
        ).all()
    assert {tuple(s) for s in states} == {("NOT_SUBSCRIBED", "NOT_SUBSCRIBED")}


async def test_filter_by_consent(gql, people):
    inp = {"customerId": people["ada_id"], "email": {"state": "SUBSCRIBED"}}
    await gql.data(UPDATE, {"input": inp})

    async def numbers(f):
        return [n["number"] for n in (await gql.data(FIND, {"f": f}))["customers"]["nodes"]]

    assert await numbers({"emailMarketing": "SUBSCRIBED"}) == [people["ada"].number]
    assert await numbers({"emailMarketing": "NOT_SUBSCRIBED"}) == [people["bob"].number]
    assert await numbers({"smsMarketing": "SUBSCRIBED"}) == []


async def test_phone_cannot_go_while_sms_consent_needs_it(gql, people):
    inp = {"customerId": people["ada_id"], "sms": {"state": "SUBSCRIBED"}}
    assert (await gql.data(UPDATE, {"input": inp}))["customerMarketingConsentUpdate"][
        "userErrors"
    ] == []
    clear = """mutation($input: CustomerUpdateInput!) { customerUpdate(input: $input) {
      customer { phone } userErrors { field code } } }"""
    refused = await gql.data(clear, {"input": {"id": people["ada_id"], "phone": None}})
    assert refused["customerUpdate"]["userErrors"] == [
        {"field": ["input", "phone"], "code": "INVALID"}
    ]
    off = {"customerId": people["ada_id"], "sms": {"state": "UNSUBSCRIBED"}}
    await gql.data(UPDATE, {"input": off})
    done = await gql.data(clear, {"input": {"id": people["ada_id"], "phone": None}})
    assert done["customerUpdate"]["customer"] == {"phone": None}
