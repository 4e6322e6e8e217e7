"""Merging duplicates: everything moves, balances add up, all-or-nothing, idempotent."""

import asyncio
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.conftest import gid
from tests.factories import (
    link_channel,
    make_address,
    make_certificate,
    make_custom_field,
    make_customer,
    make_event,
    make_ledger,
    make_order,
    make_sales_channel,
    make_user,
    set_custom_value,
)

MERGE = """mutation($input: CustomerMergeInput!) { customerMerge(input: $input) {
  customer { number email version status balances { amount currency } }
  userErrors { field code message } } }"""
PREVIEW = """query($s: ID!, $d: [ID!]!) { customerMergePreview(survivorId: $s, duplicateIds: $d) {
  survivor { number } duplicates { number }
  conflicts { field survivorValue values { customerNumber value } }
  moves { what count } balances { amount currency } versions { customerId version } } }"""


async def snapshot(engine) -> dict:
    """Every table's rows, to prove a failed merge changed nothing."""
    out = {}
    async with engine.connect() as conn:
        for table in (
            "customer",
            "orders",
            "order_line",
            "address",
            "ledger_transaction",
            "custom_field_value",
            "tax_exemption_certificate",
            "timeline_event",
            "customer_sales_channel",
        ):
            rows = await conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))
            out[table] = [tuple(r) for r in rows]
    return out


async def scenario(engine):
    web = await make_sales_channel(engine, "web")
    shop = await make_sales_channel(engine, "shop")
    tier = await make_custom_field(engine, "tier")
    vip = await make_custom_field(engine, "vip_since", "DATE")
    survivor = await make_customer(engine, email="ada@example.com", note="met at fair")
    dup = await make_customer(
        engine, email="ada.l@example.com", phone="+442071234567", note="prefers email"
    )
    await make_order(engine, survivor.id)
    for _ in range(2):
        await make_order(engine, dup.id)
    await make_address(engine, survivor.id, is_default=True, postal_code="SW1A 1AA")
    await make_address(engine, dup.id, is_default=True, postal_code="sw1a1aa")  # identical
    await make_address(engine, dup.id, kind="BILLING", line1="2 Other St", is_default=True)
    await make_ledger(engine, survivor.id, ["10.00"])
    await make_ledger(engine, dup.id, ["30.00", "-5.00"])
    await make_ledger(engine, dup.id, ["5.00"], currency="EUR")
    await set_custom_value(engine, survivor.id, tier.id, text_value="silver")
    await set_custom_value(engine, dup.id, tier.id, text_value="gold")
    await set_custom_value(engine, dup.id, vip.id, date_value=date(2020, 1, 1))
    await make_certificate(engine, dup.id)
    await make_event(engine, dup.id, summary="dup history")
    await link_channel(engine, survivor.id, web.id)
    await link_channel(engine, dup.id, web.id)
    await link_channel(engine, dup.id, shop.id)
    return survivor, dup


async def test_preview_shows_conflicts_and_moves_without_writing(gql, engine):
    survivor, dup = await scenario(engine)
    before = await snapshot(engine)
    data = await gql.data(
        PREVIEW, {"s": gid("Customer", survivor.id), "d": [gid("Customer", dup.id)]}
    )
    preview = data["customerMergePreview"]
    conflicts = {c["field"]: c for c in preview["conflicts"]}
    assert conflicts["email"]["survivorValue"] == "ada@example.com"
    assert conflicts["email"]["values"] == [
        {"customerNumber": dup.number, "value": "ada.l@example.com"}
    ]
    moves = {m["what"]: m["count"] for m in preview["moves"]}
    assert moves["orders"] == 2 and moves["address"] == 2 and moves["order_line"] == 4
    assert preview["balances"] == [
        {"amount": "5.00", "currency": "EUR"},
        {"amount": "25.00", "currency": "USD"},
    ]
    assert await snapshot(engine) == before


async def test_merge_moves_every_kind_of_child(gql, engine):
    survivor, dup = await scenario(engine)
    data = await gql.data(
        MERGE,
        {
            "input": {
                "survivorId": gid("Customer", survivor.id),
                "duplicateIds": [gid("Customer", dup.id)],
                "fieldChoices": [
                    {"field": "customFields.tier", "customerId": gid("Customer", dup.id)}
                ],
            }
        },
    )
    result = data["customerMerge"]
    assert result["userErrors"] == []
    merged = result["customer"]
    assert merged["number"] == survivor.number and merged["email"] == "ada@example.com"
    # Balances: survivor 10 USD + duplicate 25 USD and 5 EUR, moved by transfers.
    assert sorted((b["currency"], b["amount"]) for b in merged["balances"]) == [
        ("EUR", "5.00"),
        ("USD", "35.00"),
    ]
    async with engine.connect() as conn:

        def q(sql, **kw):
            return conn.execute(text(sql), kw)

        counts = (
            await q(
                "SELECT (SELECT count(*) FROM orders WHERE customer_id = :s),"
                " (SELECT count(*) FROM order_line WHERE customer_id = :s),"
                " (SELECT count(*) FROM address WHERE customer_id = :s),"
                " (SELECT count(*) FROM tax_exemption_certificate WHERE customer_id = :s),"
                " (SELECT count(*) FROM customer_sales_channel WHERE customer_id = :s),"
                " (SELECT count(*) FROM custom_field_value WHERE customer_id = :d),"
                " (SELECT count(*) FROM address WHERE customer_id = :s AND is_default)",
                s=survivor.id,
                d=dup.id,
            )
        ).one()
        assert tuple(counts) == (3, 6, 2, 1, 2, 0, 2)  # identical address collapsed
        values = dict(
            (
                await q(
                    "SELECT d.key, coalesce(v.text_value, v.date_value::text)"
                    " FROM custom_field_value v JOIN custom_field_definition d"
                    " ON d.id = v.definition_id WHERE customer_id = :s",
                    s=survivor.id,
                )
            ).all()
        )
        assert values == {"tier": "gold", "vip_since": "2020-01-01"}
        status = (
            await q(
                "SELECT status, merged_into_id, phone, note FROM customer WHERE id = :d", d=dup.id
            )
        ).one()
        assert status[:2] == ("MERGED", survivor.id)
        kept = (await q("SELECT phone, note FROM customer WHERE id = :s", s=survivor.id)).one()
        assert kept == ("+442071234567", "met at fair\n\nprefers email")
        # History is not rewritten: the duplicate keeps its entries plus a TRANSFER_OUT.
        groups = (
            await q(
                "SELECT count(DISTINCT transfer_group), sum(amount) FROM ledger_transaction"
                " WHERE transfer_group IS NOT NULL"
            )
        ).one()
        assert groups == (1, Decimal("0.00"))
        sums = dict(
            (
                await q(
                    "SELECT customer_id || currency, sum(amount) FROM ledger_transaction GROUP BY 1"
                )
            ).all()
        )
        assert sums == {
            f"{survivor.id}USD": Decimal("35.00"),
            f"{survivor.id}EUR": Decimal("5.00"),
            f"{dup.id}USD": Decimal("0.00"),
            f"{dup.id}EUR": Decimal("0.00"),
        }
        kinds = [
            r[0]
            for r in await q("SELECT kind FROM timeline_event WHERE customer_id = :d", d=dup.id)
        ]
        assert kinds == ["MERGED_INTO"]
        survivor_kinds = [
            r[0]
            for r in await q(
                "SELECT kind FROM timeline_event WHERE customer_id = :s ORDER BY id", s=survivor.id
            )
        ]
        assert survivor_kinds == ["NOTE_ADDED", "CUSTOMER_MERGED"]


async def test_lookups_of_a_merged_customer_lead_to_the_survivor(gql, engine):
    survivor, dup = await scenario(engine)
    await gql.data(
        MERGE,
        {
            "input": {
                "survivorId": gid("Customer", survivor.id),
                "duplicateIds": [gid("Customer", dup.id)],
            }
        },
    )
    for args in (
        f'number: "{dup.number}"',
        'email: "ada.l@example.com"',
        f'id: "{gid("Customer", dup.id)}"',
    ):
        data = await gql.data(f"{{ customer({args}) {{ number }} }}")
        assert data["customer"] == {"number": survivor.number}, args
    node = await gql.data(
        "query($id: ID!) { node(id: $id) { ... on Customer { status mergedInto { number } } } }",
        {"id": gid("Customer", dup.id)},
    )
    assert node["node"] == {"status": "MERGED", "mergedInto": {"number": survivor.number}}


async def test_merge_is_idempotent_on_retry(gql, engine):
    survivor, dup = await scenario(engine)
    variables = {
        "input": {
            "survivorId": gid("Customer", survivor.id),
            "duplicateIds": [gid("Customer", dup.id)],
        }
    }
    first = await gql.data(MERGE, variables)
    after_first = await snapshot(engine)
    second = await gql.data(MERGE, variables)
    assert second == first
    assert await snapshot(engine) == after_first


async def test_injected_failure_leaves_everyone_as_they_were(gql, engine, monkeypatch):
    from resolvers import merges

    survivor, dup = await scenario(engine)
    before = await snapshot(engine)

    async def fail(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(merges, "_transfer_balances", fail)  # after most rows moved
    body = await gql(
        MERGE,
        {
            "input": {
                "survivorId": gid("Customer", survivor.id),
                "duplicateIds": [gid("Customer", dup.id)],
            }
        },
    )
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert await snapshot(engine) == before


async def test_concurrent_overlapping_merges_one_wins_one_conflicts(gql, engine):
    a = await make_customer(engine, last_name="Same")
    b = await make_customer(engine, last_name="Same")
    c = await make_customer(engine, last_name="Same")
    results = await asyncio.gather(
        gql.data(
            MERGE,
            {
                "input": {
                    "survivorId": gid("Customer", a.id),
                    "duplicateIds": [gid("Customer", b.id)],
                }
            },
        ),
        gql.data(
            MERGE,
            {
                "input": {
                    "survivorId": gid("Customer", c.id),
                    "duplicateIds": [gid("Customer", b.id)],
                }
            },
        ),
    )
    errors = [r["customerMerge"]["userErrors"] for r in results]
    assert sorted(len(e) for e in errors) == [0, 1]
    [conflict] = next(e for e in errors if e)
    assert conflict["code"] == "CONFLICT"


async def test_stale_preview_version_conflicts(gql, engine):
    survivor, dup = await scenario(engine)
    preview = await gql.data(
        PREVIEW, {"s": gid("Customer", survivor.id), "d": [gid("Customer", dup.id)]}
    )
    versions = preview["customerMergePreview"]["versions"]
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE customer SET version = version + 1 WHERE id = :d"), {"d": dup.id}
        )
    data = await gql.data(
        MERGE,
        {
            "input": {
                "survivorId": gid("Customer", survivor.id),
                "duplicateIds": [gid("Customer", dup.id)],
                "expectedVersions": versions,
            }
        },
    )
    assert data["customerMerge"]["userErrors"][0]["code"] == "CONFLICT"


async def test_sales_rep_merges_only_their_customers(client, engine):
    from tests.conftest import GraphQLClient

    rep, token = await make_user(engine, role="SALES_REP", email="rep@reps.test")
    mine = await make_customer(engine, sales_rep_id=rep)
    mine_too = await make_customer(engine, sales_rep_id=rep)
    other = await make_customer(engine)
    as_rep = GraphQLClient(client, token)
    data = await as_rep.data(
        MERGE,
        {
            "input": {
                "survivorId": gid("Customer", mine.id),
                "duplicateIds": [gid("Customer", other.id)],
            }
        },
    )
    assert data["customerMerge"]["userErrors"][0]["code"] == "NOT_FOUND"
    data = await as_rep.data(
        MERGE,
        {
            "input": {
                "survivorId": gid("Customer", mine.id),
                "duplicateIds": [gid("Customer", mine_too.id)],
            }
        },
    )
    assert data["customerMerge"]["userErrors"] == []


@pytest.mark.parametrize(
    "choice,code",
    [
        ({"field": "email", "customerId": "OTHER"}, "INVALID"),
        ({"field": "shoeSize", "customerId": "DUP"}, "INVALID"),
    ],
)
async def test_bad_field_choices(gql, engine, choice, code):
    survivor, dup = await scenario(engine)
    outsider = await make_customer(engine, last_name="Outsider")
    ids = {"OTHER": gid("Customer", outsider.id), "DUP": gid("Customer", dup.id)}
    choice = {**choice, "customerId": ids[choice["customerId"]]}
    data = await gql.data(
        MERGE,
        {
            "input": {
                "survivorId": gid("Customer", survivor.id),
                "duplicateIds": [gid("Customer", dup.id)],
                "fieldChoices": [choice],
            }
        },
    )
    assert data["customerMerge"]["userErrors"][0]["code"] == code
