"""Tax status and exemption certificates."""

from unittest.mock import ANY

import pytest
from sqlalchemy import text

from tests.conftest import GraphQLClient, gid
from tests.factories import make_customer, make_user

ADD = """mutation($input: TaxCertificateInput!) { taxExemptionCertificateAdd(input: $input) {
  certificate { id number region isValid } customer { taxStatus { status
  exemptionCertificates { number } } } userErrors { field code message } } }"""


async def test_status_and_certificates(gql, engine):
    c = await make_customer(engine)
    status = await gql.data(
        "mutation($input: TaxStatusInput!) { customerSetTaxStatus(input: $input) {"
        " customer { taxStatus { status taxCode } } } }",
        {"input": {"customerId": gid("Customer", c.id), "status": "EXEMPT", "taxCode": "NP-1"}},
    )
    assert status["customerSetTaxStatus"]["customer"]["taxStatus"] == {
        "status": "EXEMPT",
        "taxCode": "NP-1",
    }
    added = (
        await gql.data(
            ADD,
            {
                "input": {
                    "customerId": gid("Customer", c.id),
                    "number": "EX-9",
                    "country": "US",
                    "region": "NY",
                    "validFrom": "2024-01-01",
                }
            },
        )
    )["taxExemptionCertificateAdd"]
    assert added["certificate"]["isValid"] is True and added["certificate"]["region"] == "NY"
    revoked = await gql.data(
        "mutation($input: TaxCertificateIdInput!) { taxExemptionCertificateRevoke(input: $input) {"
        " certificate { isValid revokedAt } } }",
        {"input": {"id": added["certificate"]["id"]}},
    )
    assert revoked["taxExemptionCertificateRevoke"]["certificate"]["isValid"] is False
    bad = (
        await gql.data(
            ADD,
            {
                "input": {
                    "customerId": gid("Customer", c.id),
                    "number": "EX-10",
                    "country": "US",
                    "validFrom": "2024-01-01",
                    "validTo": "2023-01-01",
                }
            },
        )
    )["taxExemptionCertificateAdd"]
    assert bad["userErrors"][0]["field"] == ["input", "validTo"]


DETERMINE = """query($c: ID!, $r: String!, $on: Date) { taxDetermination(customerId: $c,
  region: $r, on: $on) { exempt reason taxCode certificate { number } } }"""


async def test_tax_determination_and_orders_use_it(gql, engine):
    from tests.factories import make_address, make_certificate

    c = await make_customer(engine)
    await make_certificate(engine, c.id, number="CA-RESALE", country="US", region="CA")
    ca = await make_address(engine, c.id, country="US", region="CA")
    ny = await make_address(engine, c.id, country="US", region="NY", line1="2 Other St")
    cid = gid("Customer", c.id)
    exempt = await gql.data(DETERMINE, {"c": cid, "r": "US-CA"})
    assert exempt["taxDetermination"] == {
        "exempt": True,
        "reason": "CERTIFICATE",
        "taxCode": None,
        "certificate": {"number": "CA-RESALE"},
    }
    taxed = await gql.data(DETERMINE, {"c": cid, "r": "US-NY"})
    assert taxed["taxDetermination"]["reason"] == "NONE"
    before = await gql.data(DETERMINE, {"c": cid, "r": "US-CA", "on": "2023-01-01"})
    assert before["taxDetermination"]["exempt"] is False
    bad = await gql(DETERMINE, {"c": cid, "r": "US-ZZ"})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    order = """mutation($input: OrderCreateInput!) { orderCreate(input: $input) {
        order { taxTotal { amount } } } }"""
    lines = [{"description": "x", "quantity": 1, "unitPrice": "100.00"}]
    in_ca = await gql.data(
        order,
        {
            "input": {
                "customerId": cid,
                "currency": "USD",
                "lines": lines,
                "shippingAddressId": gid("Address", ca.id),
            }
        },
    )
    in_ny = await gql.data(
        order,
        {
            "input": {
                "customerId": cid,
                "currency": "USD",
                "lines": lines,
                "shippingAddressId": gid("Address", ny.id),
            }
        },
    )
    assert in_ca["orderCreate"]["order"]["taxTotal"]["amount"] == "0.00"
    assert in_ny["orderCreate"]["order"]["taxTotal"]["amount"] == "7.25"


STATUS = """mutation($input: TaxStatusInput!) { customerSetTaxStatus(input: $input) {
  customer { taxStatus { status taxCode } } userErrors { field code message } } }"""
REVOKE = """mutation($input: TaxCertificateIdInput!) {
  taxExemptionCertificateRevoke(input: $input) { certificate { isValid }
  userErrors { field code message } } }"""


async def events(engine) -> list[tuple]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT kind, summary FROM timeline_event ORDER BY id"))
        return [tuple(r) for r in rows]


async def test_every_change_is_on_the_timeline(gql, engine):
    c = await make_customer(engine)
    cid = gid("Customer", c.id)
    await gql.data(STATUS, {"input": {"customerId": cid, "status": "EXEMPT", "taxCode": "NP"}})
    added = await gql.data(
        ADD,
        {
            "input": {
                "customerId": cid,
                "number": "EX-1",
                "country": "us",
                "region": "US-TX",
                "validFrom": "2024-01-01",
            }
        },
    )
    cert = added["taxExemptionCertificateAdd"]["certificate"]
    assert cert["region"] == "TX"
    await gql.data(REVOKE, {"input": {"id": cert["id"]}})
    again = await gql.data(REVOKE, {"input": {"id": cert["id"]}})  # revoking twice: a no-op
    assert again["taxExemptionCertificateRevoke"]["userErrors"] == []
    assert await events(engine) == [
        ("TAX_STATUS_CHANGED", "Tax status TAXABLE -> EXEMPT"),
        ("TAX_CERTIFICATE_ADDED", "Exemption certificate EX-1 (US-TX)"),
        ("TAX_CERTIFICATE_REVOKED", "Exemption certificate EX-1 revoked"),
    ]


@pytest.mark.parametrize(
    "over,field,code",
    [
        ({"number": " "}, ["input", "number"], "REQUIRED"),
        ({"country": "XX"}, ["input", "country"], "INVALID"),
        ({"region": "ZZ"}, ["input", "region"], "INVALID"),
        ({"validTo": "2023-12-31"}, ["input", "validTo"], "INVALID"),
        ({"reason": "card 4111 1111 1111 1111"}, ["input"], "CARD_NUMBER_REFUSED"),
        ({"customerId": gid("Customer", 999)}, ["input", "customerId"], "NOT_FOUND"),
    ],
)
async def test_certificate_refusals_write_nothing(gql, engine, over, field, code):
    c = await make_customer(engine)
    base = {
        "customerId": gid("Customer", c.id),
        "number": "EX-1",
        "country": "US",
        "region": "CA",
        "validFrom": "2024-01-01",
    }
    data = await gql.data(ADD, {"input": {**base, **over}})
    assert data["taxExemptionCertificateAdd"] == {
        "certificate": None,
        "customer": None,
        "userErrors": [{"field": field, "code": code, "message": ANY}],
    }
    assert await events(engine) == []


async def test_status_refusals_and_permissions(client, gql, engine):
    rep, rep_token = await make_user(engine, role="SALES_REP", email="rep@reps.test")
    user, user_token = await make_user(engine, role="CUSTOMER", email="me@site.test")
    mine = await make_customer(engine, sales_rep_id=rep)
    own = await make_customer(engine, user_id=user, first_name="Own")
    card = await gql.data(
        STATUS,
        {
            "input": {
                "customerId": gid("Customer", mine.id),
                "status": "EXEMPT",
                "taxCode": "4111 1111 1111 1111",
            }
        },
    )
    assert card["customerSetTaxStatus"]["userErrors"] == [
        {"field": ["input"], "code": "CARD_NUMBER_REFUSED", "message": ANY}
    ]
    as_rep = GraphQLClient(client, rep_token)
    ok = await as_rep.data(
        STATUS, {"input": {"customerId": gid("Customer", mine.id), "status": "EXEMPT"}}
    )
    assert ok["customerSetTaxStatus"]["customer"]["taxStatus"] == {
        "status": "EXEMPT",
        "taxCode": None,
    }
    hidden = await as_rep.data(
        STATUS, {"input": {"customerId": gid("Customer", own.id), "status": "EXEMPT"}}
    )
    assert hidden["customerSetTaxStatus"]["userErrors"] == [
        {"field": ["input", "customerId"], "code": "NOT_FOUND", "message": ANY}
    ]
    as_user = GraphQLClient(client, user_token)
    own_status = await as_user.data(
        STATUS, {"input": {"customerId": gid("Customer", own.id), "status": "EXEMPT"}}
    )
    assert own_status["customerSetTaxStatus"]["userErrors"] == [
        {"field": None, "code": "FORBIDDEN", "message": ANY}
    ]
    missing = await gql.data(REVOKE, {"input": {"id": gid("TaxExemptionCertificate", 999)}})
    assert missing["taxExemptionCertificateRevoke"]["userErrors"] == [
        {"field": ["input", "id"], "code": "NOT_FOUND", "message": ANY}
    ]
