"""Custom fields: definitions by admins, typed values, required fields, archiving."""

import base64

import pytest

from tests.conftest import GraphQLClient
from tests.factories import make_customer, make_user

DEFINE = """mutation($input: CustomFieldDefinitionInput!) {
  customFieldDefinitionCreate(input: $input) { definition { id key type options }
  userErrors { field code message } } }"""
SET = """mutation($input: CustomFieldValueInput!) { customFieldValueSet(input: $input) {
  customer { customFields { key value numberValue dateValue booleanValue textValue } }
  userErrors { field code message } } }"""


def gid(t: str, pk) -> str:
    return base64.b64encode(f"{t}:{pk}".encode()).decode()


async def define(gql, key, type_, **kw) -> dict:
    return (
        await gql.data(DEFINE, {"input": {"key": key, "label": key.title(), "type": type_, **kw}})
    )["customFieldDefinitionCreate"]


async def test_typed_values(gql, engine):
    c = await make_customer(engine)
    await define(gql, "tier", "SELECT", options=["gold", "silver"])
    await define(gql, "ltv", "NUMBER")
    await define(gql, "since", "DATE")
    await define(gql, "vip", "BOOLEAN")
    for key, value in (
        ("tier", "gold"),
        ("ltv", "1234.50"),
        ("since", "2020-02-29"),
        ("vip", "true"),
    ):
        result = await gql.data(
            SET, {"input": {"customerId": gid("Customer", c.id), "key": key, "value": value}}
        )
        assert result["customFieldValueSet"]["userErrors"] == []
    fields = {f["key"]: f for f in result["customFieldValueSet"]["customer"]["customFields"]}
    assert fields["ltv"]["numberValue"] == "1234.50" and fields["since"]["dateValue"] == (
        "2020-02-29"
    )
    assert fields["vip"]["booleanValue"] is True and fields["tier"]["textValue"] == "gold"


@pytest.mark.parametrize(
    "key,value",
    [("tier", "platinum"), ("ltv", "lots"), ("since", "2020-02-30"), ("vip", "yes")],
)
async def test_bad_values(gql, engine, key, value):
    c = await make_customer(engine)
    await define(gql, "tier", "SELECT", options=["gold"])
    await define(gql, "ltv", "NUMBER")
    await define(gql, "since", "DATE")
    await define(gql, "vip", "BOOLEAN")
    data = await gql.data(
        SET, {"input": {"customerId": gid("Customer", c.id), "key": key, "value": value}}
    )
    assert data["customFieldValueSet"]["userErrors"][0]["field"] == ["input", "value"]


async def test_definition_rules(gql, engine, client):
    assert (await define(gql, "Bad Key", "TEXT"))["userErrors"][0]["field"] == ["input", "key"]
    assert (await define(gql, "pick", "SELECT"))["userErrors"][0]["field"] == ["input", "options"]
    assert (await define(gql, "note", "TEXT", options=["a"]))["userErrors"][0]["code"] == "INVALID"
    first = await define(gql, "dup", "TEXT")
    assert (await define(gql, "dup", "TEXT"))["userErrors"][0]["code"] == "DUPLICATE"
    _, rep_token = await make_user(engine, role="SALES_REP", email="r@reps.test")
    as_rep = GraphQLClient(client, rep_token)
    assert (await define(as_rep, "mine", "TEXT"))["userErrors"][0]["code"] == "FORBIDDEN"
    archived = await gql.data(
        "mutation($input: CustomFieldDefinitionIdInput!) { customFieldDefinitionArchive("
        "input: $input) { definition { archived } } }",
        {"input": {"id": first["definition"]["id"]}},
    )
    assert archived["customFieldDefinitionArchive"]["definition"]["archived"] is True
    listed = await gql.data("{ customFieldDefinitions { key } }")
    assert listed["customFieldDefinitions"] == []


async def test_required_values_cannot_be_cleared(gql, engine):
    c = await make_customer(engine)
    await define(gql, "region_code", "TEXT", required=True)
    await gql.data(
        SET, {"input": {"customerId": gid("Customer", c.id), "key": "region_code", "value": "EMEA"}}
    )
    data = await gql.data(
        "mutation($input: CustomFieldClearInput!) { customFieldValueClear(input: $input) {"
        " userErrors { code } } }",
        {"input": {"customerId": gid("Customer", c.id), "key": "region_code"}},
    )
    assert data["customFieldValueClear"]["userErrors"] == [{"code": "REQUIRED"}]


SET_MANY = """mutation($input: CustomerSetCustomFieldsInput!) {
  customerSetCustomFields(input: $input) { customer { customFields { key value archived } }
  userErrors { field code message } } }"""


async def test_set_many_validates_and_archived_values_stay_readable(gql, engine):
    c = await make_customer(engine)
    tier = await define(gql, "tier", "SELECT", options=["gold", "silver"])
    await define(gql, "owner", "TEXT", required=True, helpText="Who owns the relationship")
    cid = gid("Customer", c.id)
    missing = await gql.data(
        SET_MANY, {"input": {"customerId": cid, "values": [{"key": "tier", "value": "gold"}]}}
    )
    assert missing["customerSetCustomFields"]["userErrors"][0]["code"] == "REQUIRED"
    wrong = await gql.data(
        SET_MANY,
        {
            "input": {
                "customerId": cid,
                "values": [{"key": "owner", "value": "Ann"}, {"key": "tier", "value": "tin"}],
            }
        },
    )
    assert wrong["customerSetCustomFields"]["userErrors"][0]["field"] == [
        "input",
        "values",
        "1",
        "value",
    ]
    ok = await gql.data(
        SET_MANY,
        {
            "input": {
                "customerId": cid,
                "values": [{"key": "owner", "value": "Ann"}, {"key": "tier", "value": "gold"}],
            }
        },
    )
    assert ok["customerSetCustomFields"]["userErrors"] == []
    await gql.data(
        "mutation($input: CustomFieldDefinitionIdInput!) {"
        " customFieldDefinitionArchive(input: $input) { definition { id } } }",
        {"input": {"id": tier["definition"]["id"]}},
    )
    data = await gql.data(
        f'{{ customer(number: "{c.number}") {{ customFields {{ key value archived }} }} }}'
    )
    assert data["customer"]["customFields"] == [
        {"key": "owner", "value": "Ann", "archived": False},
        {"key": "tier", "value": "gold", "archived": True},
    ]
