"""Custom fields: definitions by admins, typed values, required fields, archiving."""

from unittest.mock import ANY

import pytest
from sqlalchemy import text

from tests.conftest import GraphQLClient, gid
from tests.factories import make_customer, make_user

DEFINE = """mutation($input: CustomFieldDefinitionInput!) {
  customFieldDefinitionCreate(input: $input) { definition { id key type options }
  userErrors { field code message } } }"""
SET = """mutation($input: CustomFieldValueInput!) { customFieldValueSet(input: $input) {
  customer { customFields { key value numberValue dateValue booleanValue textValue } }
  userErrors { field code message } } }"""


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


UPDATE_DEFINITION = """mutation($input: CustomFieldDefinitionUpdateInput!) {
  customFieldDefinitionUpdate(input: $input) { definition { label helpText required position
  options } userErrors { field code message } } }"""


async def test_help_text_is_saved_and_updated(gql, engine):
    created = await define(gql, "owner", "TEXT", helpText="  Who owns the relationship ")
    did = created["definition"]["id"]
    data = await gql.data(
        f'{{ node(id: "{did}") {{ ... on CustomFieldDefinition {{ helpText }} }} }}'
    )
    assert data["node"] == {"helpText": "Who owns the relationship"}
    changed = await gql.data(
        UPDATE_DEFINITION,
        {"input": {"id": did, "helpText": "Account owner", "label": " Owner ", "required": None}},
    )
    assert changed["customFieldDefinitionUpdate"] == {
        "definition": {
            "label": "Owner",
            "helpText": "Account owner",
            "required": False,  # null leaves a non-null setting as it was
            "position": 0,
            "options": None,
        },
        "userErrors": [],
    }


@pytest.mark.parametrize(
    "over,field,code",
    [
        ({"label": None}, ["input", "label"], "REQUIRED"),
        ({"options": ["a"]}, ["input", "options"], "INVALID"),  # a TEXT field has no options
        ({"helpText": "4111 1111 1111 1111"}, ["input"], "CARD_NUMBER_REFUSED"),
        ({"id": gid("CustomFieldDefinition", 999)}, ["input", "id"], "NOT_FOUND"),
    ],
)
async def test_definition_update_refusals(gql, engine, over, field, code):
    created = await define(gql, "owner", "TEXT")
    data = await gql.data(UPDATE_DEFINITION, {"input": {"id": created["definition"]["id"], **over}})
    assert data["customFieldDefinitionUpdate"] == {
        "definition": None,
        "userErrors": [{"field": field, "code": code, "message": ANY}],
    }


CREATE_CUSTOMER = """mutation($input: CustomerCreateInput!) { customerCreate(input: $input) {
  customer { number customFields { key value } timeline { edges { node { kind data } } } }
  userErrors { field code message } } }"""


async def test_customer_create_with_custom_fields(gql, engine):
    await define(gql, "owner", "TEXT", required=True)
    await define(gql, "tier", "SELECT", options=["gold", "silver"])
    # Without customFields a customer can still be created (quick-add, imports)...
    quick = await gql.data(CREATE_CUSTOMER, {"input": {"firstName": "Quick"}})
    assert quick["customerCreate"]["userErrors"] == []
    # ...but given some, they are validated like customerSetCustomFields, required included.
    refusals = [
        ([{"key": "tier", "value": "gold"}], ["input", "customFields"], "REQUIRED"),
        (
            [{"key": "owner", "value": "Ann"}, {"key": "tier", "value": "tin"}],
            ["input", "customFields", "1", "value"],
            "INVALID",
        ),
        (
            [{"key": "owner", "value": "Ann"}, {"key": "nope", "value": "x"}],
            ["input", "customFields", "1", "key"],
            "NOT_FOUND",
        ),
        (
            [{"key": "owner", "value": "card 4111 1111 1111 1111"}],
            ["input"],
            "CARD_NUMBER_REFUSED",
        ),
    ]
    for values, field, code in refusals:
        data = await gql.data(
            CREATE_CUSTOMER, {"input": {"firstName": "Full", "customFields": values}}
        )
        assert data["customerCreate"] == {
            "customer": None,
            "userErrors": [{"field": field, "code": code, "message": ANY}],
        }
    async with engine.connect() as conn:
        counts = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM customer),"
                    " (SELECT count(*) FROM custom_field_value)"
                )
            )
        ).one()
    assert tuple(counts) == (1, 0)  # only the quick one; nothing half-written
    values = [{"key": "owner", "value": "Ann"}, {"key": "tier", "value": "gold"}]
    ok = await gql.data(CREATE_CUSTOMER, {"input": {"firstName": "Full", "customFields": values}})
    customer = ok["customerCreate"]["customer"]
    assert customer["customFields"] == [
        {"key": "owner", "value": "Ann"},
        {"key": "tier", "value": "gold"},
    ]
    assert customer["timeline"]["edges"] == [
        {
            "node": {
                "kind": "CUSTOMER_CREATED",
                "data": {"source": "admin", "customFields": {"owner": "Ann", "tier": "gold"}},
            }
        }
    ]


@pytest.mark.parametrize("value", ["1e400", "NaN", "Infinity"])
async def test_numbers_out_of_range_are_refused(gql, engine, value):
    c = await make_customer(engine)
    await define(gql, "ltv", "NUMBER")
    data = await gql.data(
        SET, {"input": {"customerId": gid("Customer", c.id), "key": "ltv", "value": value}}
    )
    assert data["customFieldValueSet"]["userErrors"] == [
        {"field": ["input", "value"], "code": "INVALID", "message": ANY}
    ]


async def test_value_set_and_clear_record_events_and_respect_scope(client, gql, engine):
    rep, token = await make_user(engine, role="SALES_REP", email="rep@reps.test")
    mine = await make_customer(engine, sales_rep_id=rep)
    other = await make_customer(engine, first_name="Other")
    await define(gql, "tier", "SELECT", options=["gold"])
    as_rep = GraphQLClient(client, token)
    ok = await as_rep.data(
        SET, {"input": {"customerId": gid("Customer", mine.id), "key": "tier", "value": "gold"}}
    )
    assert ok["customFieldValueSet"]["userErrors"] == []
    hidden = await as_rep.data(
        SET, {"input": {"customerId": gid("Customer", other.id), "key": "tier", "value": "gold"}}
    )
    assert hidden["customFieldValueSet"]["userErrors"] == [
        {"field": ["input", "customerId"], "code": "NOT_FOUND", "message": ANY}
    ]
    unknown = await as_rep.data(
        SET, {"input": {"customerId": gid("Customer", mine.id), "key": "nope", "value": "x"}}
    )
    assert unknown["customFieldValueSet"]["userErrors"] == [
        {"field": ["input", "key"], "code": "NOT_FOUND", "message": ANY}
    ]
    cleared = await as_rep.data(
        "mutation($input: CustomFieldClearInput!) { customFieldValueClear(input: $input) {"
        " customer { customFields { key } } userErrors { code } } }",
        {"input": {"customerId": gid("Customer", mine.id), "key": "tier"}},
    )
    assert cleared["customFieldValueClear"] == {"customer": {"customFields": []}, "userErrors": []}
    async with engine.connect() as conn:
        kinds = (
            (await conn.execute(text("SELECT kind FROM timeline_event ORDER BY id")))
            .scalars()
            .all()
        )
    assert kinds == ["CUSTOM_FIELD_SET", "CUSTOM_FIELD_CLEARED"]
