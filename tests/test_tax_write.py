"""Tax status and exemption certificates."""

import base64

from tests.factories import make_customer

ADD = """mutation($input: TaxCertificateInput!) { taxCertificateAdd(input: $input) {
  certificate { id number region isValid } customer { taxStatus { status
  exemptionCertificates { number } } } userErrors { field code message } } }"""


def gid(t: str, pk) -> str:
    return base64.b64encode(f"{t}:{pk}".encode()).decode()


async def test_status_and_certificates(gql, engine):
    c = await make_customer(engine)
    status = await gql.data(
        "mutation($input: TaxStatusInput!) { taxStatusSet(input: $input) {"
        " customer { taxStatus { status taxCode } } } }",
        {"input": {"customerId": gid("Customer", c.id), "status": "EXEMPT", "taxCode": "NP-1"}},
    )
    assert status["taxStatusSet"]["customer"]["taxStatus"] == {
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
    )["taxCertificateAdd"]
    assert added["certificate"]["isValid"] is True and added["certificate"]["region"] == "NY"
    revoked = await gql.data(
        "mutation($input: TaxCertificateIdInput!) { taxCertificateRevoke(input: $input) {"
        " certificate { isValid revokedAt } } }",
        {"input": {"id": added["certificate"]["id"]}},
    )
    assert revoked["taxCertificateRevoke"]["certificate"]["isValid"] is False
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
    )["taxCertificateAdd"]
    assert bad["userErrors"][0]["field"] == ["input", "validTo"]
