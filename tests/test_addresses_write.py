"""Address mutations: ISO codes, E.164 phones, one default per kind (in the database),
old -> new on the timeline, permissions, nothing written on refusal."""

import asyncio
import base64
from unittest.mock import ANY

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import GraphQLClient, gid
from tests.factories import make_address, make_customer, make_user

CREATE = """mutation($input: AddressInput!) { addressCreate(input: $input) {
  address { id kind isDefault line1 line2 city region postalCode country phone }
  customer { version addresses { id kind isDefault } }
  userErrors { field code message } } }"""
UPDATE = """mutation($input: AddressUpdateInput!) { addressUpdate(input: $input) {
  address { id kind isDefault line1 region country phone }
  customer { addresses { id kind isDefault } }
  userErrors { field code message } } }"""
SET_DEFAULT = """mutation($input: AddressIdInput!) { addressSetDefault(input: $input) {
  address { id isDefault } customer { addresses { id kind isDefault } }
  userErrors { field code message } } }"""
DELETE = """mutation($input: AddressIdInput!) { addressDelete(input: $input) {
  address { id } customer { addresses { id } } userErrors { field code message } } }"""
TIMELINE = """query($n: String!) { customer(number: $n) {
  timeline(first: 1) { edges { node { kind data } } } } }"""


async def address_count(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM address"))).scalar()


async def latest_event(gql, number: str) -> dict:
    data = await gql.data(TIMELINE, {"n": number})
    return data["customer"]["timeline"]["edges"][0]["node"]


async def test_create_normalises_codes_and_phone(gql, engine):
    c = await make_customer(engine)
    data = await gql.data(
        CREATE,
        {
            "input": {
                "customerId": gid("Customer", c.id),
                "kind": "BILLING",
                "line1": " 10 Downing St ",
                "city": "London",
                "region": "gb-wsm",
                "postalCode": "SW1A 2AA",
                "country": "gb",
                "phone": "020 7925 0918",
            }
        },
    )
    result = data["addressCreate"]
    assert result["userErrors"] == []
    assert {k: v for k, v in result["address"].items() if k != "id"} == {
        "kind": "BILLING",
        "isDefault": False,
        "line1": "10 Downing St",
        "line2": None,
        "city": "London",
        "region": "WSM",
        "postalCode": "SW1A 2AA",
        "country": "GB",
        "phone": "+442079250918",  # national number read in the address's country
    }
    assert result["customer"]["version"] == 2
    assert await latest_event(gql, c.number) == {
        "kind": "ADDRESS_ADDED",
        "data": {"address": int(base64.b64decode(result["address"]["id"]).split(b":")[1])},
    }


@pytest.mark.parametrize(
    "over,field,code",
    [
        ({"country": "XX"}, ["input", "country"], "INVALID"),
        ({"country": "USA"}, ["input", "country"], "INVALID"),
        ({"region": "ZZ"}, ["input", "region"], "INVALID"),
        ({"phone": "12"}, ["input", "phone"], "INVALID"),
        ({"line1": "   "}, ["input", "line1"], "REQUIRED"),
        ({"line2": "card 4111-1111-1111-1111"}, ["input"], "CARD_NUMBER_REFUSED"),
        ({"customerId": gid("Customer", 999)}, ["input", "customerId"], "NOT_FOUND"),
    ],
)
async def test_create_refusals_write_nothing(gql, engine, over, field, code):
    c = await make_customer(engine)
    base = {"customerId": gid("Customer", c.id), "line1": "1 Main St", "country": "US"}
    data = await gql.data(CREATE, {"input": {**base, **over}})
    assert data["addressCreate"] == {
        "address": None,
        "customer": None,
        "userErrors": [{"field": field, "code": code, "message": ANY}],
    }
    assert await address_count(engine) == 0


async def test_one_default_per_kind(gql, engine):
    c = await make_customer(engine)
    base = {
        "customerId": gid("Customer", c.id),
        "line1": "1 Main St",
        "country": "us",
        "region": "CA",
        "isDefault": True,
    }
    first = (await gql.data(CREATE, {"input": base}))["addressCreate"]
    second = (await gql.data(CREATE, {"input": {**base, "line1": "2 Oak"}}))["addressCreate"]
    billing = (await gql.data(CREATE, {"input": {**base, "kind": "BILLING", "line1": "3 Elm"}}))[
        "addressCreate"
    ]
    flags = {(a["id"], a["kind"]): a["isDefault"] for a in billing["customer"]["addresses"]}
    assert flags == {
        (first["address"]["id"], "SHIPPING"): False,
        (second["address"]["id"], "SHIPPING"): True,
        (billing["address"]["id"], "BILLING"): True,  # a default of each kind
    }
    flip = (await gql.data(SET_DEFAULT, {"input": {"id": first["address"]["id"]}}))[
        "addressSetDefault"
    ]
    assert flip["address"] == {"id": first["address"]["id"], "isDefault": True}
    shipping = [a for a in flip["customer"]["addresses"] if a["kind"] == "SHIPPING"]
    assert [a["id"] for a in shipping if a["isDefault"]] == [first["address"]["id"]]


async def test_the_database_refuses_a_second_default(engine):
    c = await make_customer(engine)
    await make_address(engine, c.id, is_default=True)
    with pytest.raises(IntegrityError, match="uq_address_default_per_kind"):
        await make_address(engine, c.id, is_default=True, line1="2 Other St")


async def test_concurrent_set_default_leaves_exactly_one(gql, engine):
    c = await make_customer(engine)
    ids = [(await make_address(engine, c.id, line1=f"{i} Main St")).id for i in range(6)]
    results = await asyncio.gather(
        *(gql.data(SET_DEFAULT, {"input": {"id": gid("Address", a)}}) for a in ids)
    )
    assert all(r["addressSetDefault"]["userErrors"] == [] for r in results)
    async with engine.connect() as conn:
        defaults = (
            await conn.execute(text("SELECT count(*) FROM address WHERE is_default"))
        ).scalar()
    assert defaults == 1


async def test_update_records_old_and_new(gql, engine):
    c = await make_customer(engine)
    a = await make_address(engine, c.id, country="US", region="CA", line1="1 Main St")
    data = await gql.data(
        UPDATE,
        {"input": {"id": gid("Address", a.id), "line1": "9 Pine St", "region": "NY"}},
    )
    result = data["addressUpdate"]
    assert result["userErrors"] == []
    assert (result["address"]["line1"], result["address"]["region"]) == ("9 Pine St", "NY")
    assert await latest_event(gql, c.number) == {
        "kind": "ADDRESS_UPDATED",
        "data": {
            "address": a.id,
            "fields": ["line1", "region"],
            "changes": {
                "line1": {"old": "1 Main St", "new": "9 Pine St"},
                "region": {"old": "CA", "new": "NY"},
            },
        },
    }


async def test_moving_a_default_to_the_other_kind_takes_over_its_default(gql, engine):
    c = await make_customer(engine)
    ship = await make_address(engine, c.id, kind="SHIPPING", is_default=True)
    bill = await make_address(engine, c.id, kind="BILLING", is_default=True, line1="2 Bill St")
    data = await gql.data(UPDATE, {"input": {"id": gid("Address", ship.id), "kind": "BILLING"}})
    flags = {a["id"]: a["isDefault"] for a in data["addressUpdate"]["customer"]["addresses"]}
    assert flags == {gid("Address", ship.id): True, gid("Address", bill.id): False}


@pytest.mark.parametrize(
    "over,field,code",
    [
        ({"country": "ZZ"}, ["input", "country"], "INVALID"),
        ({"region": "QQ"}, ["input", "region"], "INVALID"),
        ({"phone": "not a phone"}, ["input", "phone"], "INVALID"),
        ({"line1": None}, ["input", "line1"], "REQUIRED"),
        ({"id": gid("Address", 999)}, ["input", "id"], "NOT_FOUND"),
    ],
)
async def test_update_refusals_change_nothing(gql, engine, over, field, code):
    c = await make_customer(engine)
    a = await make_address(engine, c.id, country="US", region="CA")
    data = await gql.data(UPDATE, {"input": {"id": gid("Address", a.id), **over}})
    assert data["addressUpdate"]["userErrors"] == [{"field": field, "code": code, "message": ANY}]
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT line1, region, country, phone FROM address"))).one()
        events = (await conn.execute(text("SELECT count(*) FROM timeline_event"))).scalar()
    assert tuple(row) == ("1 Main St", "CA", "US", None)
    assert events == 0


async def test_delete_then_not_found(gql, engine):
    c = await make_customer(engine)
    keep = await make_address(engine, c.id)
    gone = await make_address(engine, c.id, line1="2 Gone St")
    data = await gql.data(DELETE, {"input": {"id": gid("Address", gone.id)}})
    assert data["addressDelete"] == {
        "address": None,
        "customer": {"addresses": [{"id": gid("Address", keep.id)}]},
        "userErrors": [],
    }
    assert (await latest_event(gql, c.number))["kind"] == "ADDRESS_REMOVED"
    again = await gql.data(DELETE, {"input": {"id": gid("Address", gone.id)}})
    assert again["addressDelete"]["userErrors"] == [
        {"field": ["input", "id"], "code": "NOT_FOUND", "message": ANY}
    ]


async def test_who_may_change_addresses(client, engine):
    user_id, user_token = await make_user(engine, role="CUSTOMER", email="me@site.test")
    rep_id, rep_token = await make_user(engine, role="SALES_REP", email="rep@reps.test")
    own = await make_customer(engine, user_id=user_id, email="me@site.test")
    reps = await make_customer(engine, first_name="Reps", sales_rep_id=rep_id)
    other = await make_customer(engine, first_name="Other")
    own_address = await make_address(engine, own.id)
    other_address = await make_address(engine, other.id)
    me, rep = GraphQLClient(client, user_token), GraphQLClient(client, rep_token)

    mine = await me.data(SET_DEFAULT, {"input": {"id": gid("Address", own_address.id)}})
    assert mine["addressSetDefault"]["userErrors"] == []
    for who, target in ((me, other_address.id), (rep, other_address.id), (rep, own_address.id)):
        # Someone else's address does not exist for this viewer.
        data = await who.data(DELETE, {"input": {"id": gid("Address", target)}})
        assert data["addressDelete"]["userErrors"] == [
            {"field": ["input", "id"], "code": "NOT_FOUND", "message": ANY}
        ]
    created = await rep.data(
        CREATE,
        {"input": {"customerId": gid("Customer", reps.id), "line1": "1 Rep Rd", "country": "DE"}},
    )
    assert created["addressCreate"]["userErrors"] == []
    anonymous = await GraphQLClient(client).__call__(
        DELETE, {"input": {"id": gid("Address", own_address.id)}}
    )
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await address_count(engine) == 3
