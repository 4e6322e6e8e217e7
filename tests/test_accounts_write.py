"""Accounts and payment methods: tokens only, card numbers refused and never stored."""

import logging
from unittest.mock import ANY

import pytest
from sqlalchemy import text

from tests.conftest import gid
from tests.factories import make_customer

CREATE = """mutation($input: AccountInput!) { accountCreate(input: $input) {
  account { id number name billingContact { name phone } billingAddress { region country }
            customers { number } }
  userErrors { field code message } } }"""
ADD = """mutation($input: PaymentMethodInput!) { paymentMethodAdd(input: $input) {
  paymentMethod { id brand last4 expMonth expYear isDefault }
  account { paymentMethods { last4 isDefault } }
  userErrors { field code message } } }"""


async def test_account_lifecycle(gql, engine):
    c = await make_customer(engine)
    created = (
        await gql.data(
            CREATE,
            {
                "input": {
                    "name": "Acme",
                    "customerId": gid("Customer", c.id),
                    "billingContactName": "Wile",
                    "billingPhone": "+1 415 555 2671",
                    "billingLine1": "1 Desert Rd",
                    "billingRegion": "AZ",
                    "billingCountry": "us",
                }
            },
        )
    )["accountCreate"]
    assert created["userErrors"] == []
    account = created["account"]
    assert account["number"].startswith("A-") and account["customers"] == [{"number": c.number}]
    assert account["billingAddress"] == {"region": "AZ", "country": "US"}
    assert account["billingContact"]["phone"] == "+14155552671"
    method = {
        "accountId": account["id"],
        "token": "tok_1Abc",
        "brand": "visa",
        "last4": "4242",
        "expMonth": 12,
        "expYear": 2031,
        "isDefault": True,
    }
    first = (await gql.data(ADD, {"input": method}))["paymentMethodAdd"]
    second = (await gql.data(ADD, {"input": {**method, "token": "tok_2Xyz", "last4": "1881"}}))[
        "paymentMethodAdd"
    ]
    assert [m["isDefault"] for m in second["account"]["paymentMethods"]] == [True, False]
    assert second["account"]["paymentMethods"][0]["last4"] == "1881"
    removed = await gql.data(
        "mutation($input: PaymentMethodIdInput!) { paymentMethodRemove(input: $input) {"
        " account { paymentMethods { last4 } } } }",
        {"input": {"id": first["paymentMethod"]["id"]}},
    )
    assert removed["paymentMethodRemove"]["account"]["paymentMethods"] == [{"last4": "1881"}]
    detached = await gql.data(
        "mutation($input: AccountCustomerInput!) { accountDetachCustomer(input: $input) {"
        " customer { account { number } } } }",
        {"input": {"customerId": gid("Customer", c.id)}},
    )
    assert detached["accountDetachCustomer"]["customer"]["account"] is None


@pytest.mark.parametrize(
    "over",
    [
        {"token": "4111111111111111"},
        {"token": "tok_ok", "brand": "visa 4111 1111 1111 1111"},
        {"token": "tok_ok", "processor": "5500-0000-0000-0004"},
    ],
)
async def test_card_numbers_are_refused_and_never_stored_or_logged(gql, engine, over, caplog):
    caplog.set_level(logging.DEBUG)
    c = await make_customer(engine)
    acct = (await gql.data(CREATE, {"input": {"name": "A", "customerId": gid("Customer", c.id)}}))[
        "accountCreate"
    ]["account"]
    body = await gql(ADD, {"input": {"accountId": acct["id"], "last4": "1111", **over}})
    errors = body["data"]["paymentMethodAdd"]["userErrors"]
    assert errors == [
        {"field": ["input"], "code": "CARD_NUMBER_REFUSED", "message": errors[0]["message"]}
    ]
    digits = "".join(ch for ch in str(over) if ch.isdigit())
    assert digits not in str(body) and digits not in caplog.text
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM payment_method"))).scalar() == 0
        dump = (
            await conn.execute(text("SELECT string_agg(t::text, ' ') FROM timeline_event t"))
        ).scalar() or ""
    assert digits not in dump


@pytest.mark.parametrize(
    "over,field",
    [
        ({"token": "x"}, "token"),
        ({"last4": "42"}, "last4"),
        ({"expMonth": 13, "expYear": 2030}, "expMonth"),
        ({"expMonth": 1, "expYear": 2020}, "expYear"),
    ],
)
async def test_payment_method_validation(gql, engine, over, field):
    c = await make_customer(engine)
    acct = (await gql.data(CREATE, {"input": {"name": "A", "customerId": gid("Customer", c.id)}}))[
        "accountCreate"
    ]["account"]
    data = await gql.data(ADD, {"input": {"accountId": acct["id"], "token": "tok_good", **over}})
    assert data["paymentMethodAdd"]["userErrors"][0]["field"] == ["input", field]


UPDATE = """mutation($input: AccountUpdateInput!) { accountUpdate(input: $input) {
  account { name billingContact { email phone } billingAddress { region country } }
  userErrors { field code message } } }"""
ATTACH = """mutation($input: AccountCustomerInput!) { accountAttachCustomer(input: $input) {
  account { number customers { number } } customer { account { number } }
  userErrors { field code message } } }"""


async def test_update_reads_region_and_phone_in_the_stored_country(gql, engine):
    from tests.factories import make_account

    acct = await make_account(engine, billing_country="GB", billing_region=None)
    data = await gql.data(
        UPDATE,
        {
            "input": {
                "id": gid("Account", acct.id),
                "name": "Acme UK",
                "billingRegion": "wsm",
                "billingPhone": "020 7925 0918",
                "billingEmail": " ap@acme.test ",
            }
        },
    )
    assert data["accountUpdate"] == {
        "account": {
            "name": "Acme UK",
            "billingContact": {"email": "ap@acme.test", "phone": "+442079250918"},
            "billingAddress": {"region": "WSM", "country": "GB"},
        },
        "userErrors": [],
    }


@pytest.mark.parametrize(
    "over,field,code",
    [
        ({"name": " "}, ["input", "name"], "REQUIRED"),
        ({"billingEmail": "nope"}, ["input", "billingEmail"], "INVALID"),
        ({"billingCountry": "XX"}, ["input", "billingCountry"], "INVALID"),
        ({"billingRegion": "ZZ"}, ["input", "billingRegion"], "INVALID"),
        ({"billingPhone": "12"}, ["input", "billingPhone"], "INVALID"),
        ({"billingLine2": "4111 1111 1111 1111"}, ["input"], "CARD_NUMBER_REFUSED"),
        ({"id": gid("Account", 999)}, ["input", "id"], "NOT_FOUND"),
    ],
)
async def test_update_refusals_change_nothing(gql, engine, over, field, code):
    from tests.factories import make_account

    acct = await make_account(engine)
    data = await gql.data(UPDATE, {"input": {"id": gid("Account", acct.id), **over}})
    assert data["accountUpdate"] == {
        "account": None,
        "userErrors": [{"field": field, "code": code, "message": ANY}],
    }
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT name, billing_line2 FROM account"))).one()
    assert tuple(row) == ("Acme Corp", None)


async def test_attach_detach_and_timeline(gql, engine):
    from tests.factories import make_account

    acct = await make_account(engine)
    c = await make_customer(engine)
    variables = {
        "input": {"accountId": gid("Account", acct.id), "customerId": gid("Customer", c.id)}
    }
    data = await gql.data(ATTACH, variables)
    assert data["accountAttachCustomer"] == {
        "account": {"number": acct.number, "customers": [{"number": c.number}]},
        "customer": {"account": {"number": acct.number}},
        "userErrors": [],
    }
    await gql.data(
        "mutation($input: AccountCustomerInput!) { accountDetachCustomer(input: $input) {"
        " userErrors { code } } }",
        {"input": {"customerId": gid("Customer", c.id)}},
    )
    async with engine.connect() as conn:
        kinds = (await conn.execute(text("SELECT kind FROM timeline_event ORDER BY id"))).scalars()
        assert list(kinds) == ["ACCOUNT_ATTACHED", "ACCOUNT_DETACHED"]
    missing = await gql.data(
        ATTACH, {"input": {"accountId": gid("Account", 999), "customerId": gid("Customer", c.id)}}
    )
    assert missing["accountAttachCustomer"]["userErrors"] == [
        {"field": ["input", "accountId"], "code": "NOT_FOUND", "message": ANY}
    ]
    no_account = await gql.data(ATTACH, {"input": {"customerId": gid("Customer", c.id)}})
    assert no_account["accountAttachCustomer"]["userErrors"] == [
        {"field": ["input", "accountId"], "code": "REQUIRED", "message": ANY}
    ]


async def test_a_rep_cannot_reach_other_accounts(client, engine):
    from tests.conftest import GraphQLClient
    from tests.factories import make_account, make_payment_method, make_user

    rep, token = await make_user(engine, role="SALES_REP", email="rep@reps.test")
    _, user_token = await make_user(engine, role="CUSTOMER", email="me@site.test")
    mine = await make_customer(engine, sales_rep_id=rep)
    theirs = await make_account(engine, name="Someone else's")
    method = await make_payment_method(engine, theirs.id)
    as_rep = GraphQLClient(client, token)
    attach = await as_rep.data(
        ATTACH,
        {"input": {"accountId": gid("Account", theirs.id), "customerId": gid("Customer", mine.id)}},
    )
    assert attach["accountAttachCustomer"]["userErrors"] == [
        {"field": ["input", "accountId"], "code": "NOT_FOUND", "message": ANY}
    ]
    create = await as_rep.data(
        "mutation($input: CustomerCreateInput!) { customerCreate(input: $input) {"
        " userErrors { field code message } } }",
        {"input": {"firstName": "New", "accountId": gid("Account", theirs.id)}},
    )
    assert create["customerCreate"]["userErrors"] == [
        {"field": ["input", "accountId"], "code": "NOT_FOUND", "message": ANY}
    ]
    removed = await as_rep.data(
        "mutation($input: PaymentMethodIdInput!) { paymentMethodRemove(input: $input) {"
        " userErrors { field code message } } }",
        {"input": {"id": gid("PaymentMethod", method.id)}},
    )
    assert removed["paymentMethodRemove"]["userErrors"] == [
        {"field": ["input", "id"], "code": "NOT_FOUND", "message": ANY}
    ]
    no_customer = await as_rep.data(CREATE, {"input": {"name": "Rep's"}})
    assert no_customer["accountCreate"]["userErrors"] == [
        {"field": ["input", "customerId"], "code": "REQUIRED", "message": ANY}
    ]
    site_user = await GraphQLClient(client, user_token).data(CREATE, {"input": {"name": "Mine"}})
    assert site_user["accountCreate"]["userErrors"] == [
        {"field": None, "code": "FORBIDDEN", "message": ANY}
    ]
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM account"))).scalar() == 1
        assert (await conn.execute(text("SELECT count(*) FROM payment_method"))).scalar() == 1
