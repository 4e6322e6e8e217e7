"""Tax status and exemption certificates."""

import base64

from tests.factories import make_customer

ADD = """mutation($input: TaxCertificateInput!) { taxExemptionCertificateAdd(input: $input) {
  certificate { id number region isValid } customer { taxStatus { status
  exemptionCertificates { number } } } userErrors { field code message } } }"""


def gid(t: str, pk) -> str:
    return base64.b64encode(f"{t}:{pk}".encode()).decode()


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
