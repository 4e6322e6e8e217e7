"""Accounts and payment methods: tokens only, card numbers refused and never stored."""

import base64
import logging

import pytest
from sqlalchemy import text

from tests.factories import make_customer

CREATE = """mutation($input: AccountInput!) { accountCreate(input: $input) {
  account { id number name billingContact { name phone } billingAddress { region country }
            customers { number } }
  userErrors { field code message } } }"""
ADD = """mutation($input: PaymentMethodInput!) { paymentMethodAdd(input: $input) {
  paymentMethod { id brand last4 expMonth expYear isDefault }
  account { paymentMethods { last4 isDefault } }
  userErrors { field code message } } }"""


def gid(t: str, pk) -> str:
    return base64.b64encode(f"{t}:{pk}".encode()).decode()


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
