"""Ledger mutations: signs, balances, transfers, idempotency, concurrency, permissions."""

import asyncio
from decimal import Decimal
from unittest.mock import ANY

import pytest
from sqlalchemy import text

from tests.conftest import GraphQLClient, gid
from tests.factories import make_customer, make_user

ENTRY = """mutation($input: LedgerEntryInput!) { %s(input: $input) {
  transactions { kind amount { amount currency } balanceAfter { amount } }
  balance { amount currency } userErrors { field code message } } }"""
TRANSFER = """mutation($input: LedgerTransferInput!) { ledgerTransfer(input: $input) {
  transactions { kind amount { amount } balanceAfter { amount } customer { number } }
  balance { amount } userErrors { field code message } } }"""


async def post(gql, op: str, customer, amount, currency="USD", **extra) -> dict:
    data = await gql.data(
        ENTRY % op,
        {
            "input": {
                "customerId": gid("Customer", customer.id),
                "amount": amount,
                "currency": currency,
                **extra,
            }
        },
    )
    return data[op]


async def ledger_sums(engine, customer_id: int) -> tuple[Decimal, Decimal]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT sum(amount), (array_agg(balance_after ORDER BY id DESC))[1]"
                    " FROM ledger_transaction WHERE customer_id = :c AND currency = 'USD'"
                ),
                {"c": customer_id},
            )
        ).one()
    return row[0], row[1]


async def test_signs_and_running_balance(gql, engine):
    c = await make_customer(engine)
    assert (await post(gql, "ledgerCharge", c, "100.00"))["balance"] == {
        "amount": "100.00",
        "currency": "USD",
    }
    assert (await post(gql, "ledgerPayment", c, "60.50"))["balance"]["amount"] == "39.50"
    assert (await post(gql, "ledgerCredit", c, "9.50"))["balance"]["amount"] == "30.00"
    result = await post(gql, "ledgerAdjust", c, "-5.00")
    assert result["transactions"] == [
        {
            "kind": "ADJUSTMENT",
            "amount": {"amount": "-5.00", "currency": "USD"},
            "balanceAfter": {"amount": "25.00"},
        }
    ]
    assert await ledger_sums(engine, c.id) == (Decimal("25.00"), Decimal("25.00"))
    data = await gql.data(
        f'{{ customer(number: "{c.number}") {{ balances {{ amount }} '
        "timeline(first: 10) { totalCount } } }"
    )
    assert data["customer"]["balances"] == [{"amount": "25.00"}]
    assert data["customer"]["timeline"]["totalCount"] == 4


@pytest.mark.parametrize(
    "op,amount,currency,field,code",
    [
        ("ledgerCharge", "0", "USD", "amount", "INVALID"),
        ("ledgerCharge", "-5", "USD", "amount", "INVALID"),
        ("ledgerCharge", "1.005", "USD", "amount", "INVALID"),
        ("ledgerAdjust", "0.00", "USD", "amount", "INVALID"),
        ("ledgerCharge", "5", "XYZ", "currency", "INVALID"),
    ],
)
async def test_bad_amounts_are_user_errors(gql, engine, op, amount, currency, field, code):
    c = await make_customer(engine)
    result = await post(gql, op, c, amount, currency)
    assert result["userErrors"][0]["field"] == ["input", field]
    assert result["userErrors"][0]["code"] == code
    assert await ledger_sums(engine, c.id) == (None, None)


async def test_transfer_moves_credit_and_refuses_to_overdraw(gql, engine):
    giver = await make_customer(engine, first_name="Giver")
    taker = await make_customer(engine, first_name="Taker")
    await post(gql, "ledgerCredit", giver, "50.00")  # giver has 50 in credit
    variables = {
        "fromCustomerId": gid("Customer", giver.id),
        "toCustomerId": gid("Customer", taker.id),
        "amount": "30.00",
        "currency": "USD",
    }
    data = await gql.data(TRANSFER, {"input": variables})
    result = data["ledgerTransfer"]
    assert result["userErrors"] == []
    assert [(t["kind"], t["amount"]["amount"]) for t in result["transactions"]] == [
        ("TRANSFER_OUT", "30.00"),
        ("TRANSFER_IN", "-30.00"),
    ]
    too_much = await gql.data(TRANSFER, {"input": {**variables, "amount": "30.00"}})
    assert too_much["ledgerTransfer"]["userErrors"][0]["code"] == "INSUFFICIENT_FUNDS"
    allowed = await gql.data(TRANSFER, {"input": {**variables, "allowOverdraft": True}})
    assert allowed["ledgerTransfer"]["balance"] == {"amount": "10.00"}
    async with engine.connect() as conn:
        groups = (
            await conn.execute(
                text(
                    "SELECT count(DISTINCT transfer_group), sum(amount) FROM ledger_transaction"
                    " WHERE transfer_group IS NOT NULL"
                )
            )
        ).one()
    assert groups == (2, Decimal("0.00"))
    same = await gql.data(
        TRANSFER, {"input": {**variables, "toCustomerId": gid("Customer", giver.id)}}
    )
    assert same["ledgerTransfer"]["userErrors"][0]["code"] == "INVALID"


async def test_idempotency_replays_and_conflicts(gql, engine):
    c = await make_customer(engine)
    first = await post(gql, "ledgerCharge", c, "10.00", idempotencyKey="order-1")
    again = await post(gql, "ledgerCharge", c, "10.00", idempotencyKey="order-1")
    assert again == first
    assert await ledger_sums(engine, c.id) == (Decimal("10.00"), Decimal("10.00"))
    other = await post(gql, "ledgerCharge", c, "11.00", idempotencyKey="order-1")
    assert other["userErrors"] == [
        {
            "field": ["input", "idempotencyKey"],
            "code": "IDEMPOTENCY_CONFLICT",
            "message": other["userErrors"][0]["message"],
        }
    ]
    # A refused request stores nothing: the key stays free for a valid retry.
    bad = await post(gql, "ledgerCharge", c, "-1", idempotencyKey="order-2")
    assert bad["userErrors"][0]["code"] == "INVALID"
    good = await post(gql, "ledgerCharge", c, "1.00", idempotencyKey="order-2")
    assert good["userErrors"] == [] and good["balance"]["amount"] == "11.00"


async def test_concurrent_same_key_charges_once(gql, engine):
    c = await make_customer(engine)
    results = await asyncio.gather(
        *(post(gql, "ledgerCharge", c, "7.00", idempotencyKey="same") for _ in range(5))
    )
    assert all(r == results[0] for r in results)
    assert await ledger_sums(engine, c.id) == (Decimal("7.00"), Decimal("7.00"))


async def test_twenty_concurrent_charges_keep_exact_balances(gql, engine):
    c = await make_customer(engine)
    await asyncio.gather(*(post(gql, "ledgerCharge", c, f"{i}.00") for i in range(1, 21)))
    total, latest = await ledger_sums(engine, c.id)
    assert total == latest == Decimal("210.00")
    async with engine.connect() as conn:
        running = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT balance_after, sum(amount) OVER (ORDER BY id) s"
                    " FROM ledger_transaction WHERE customer_id = :c) x WHERE balance_after <> s"
                ),
                {"c": c.id},
            )
        ).scalar()
    assert running == 0


async def test_permissions(client, engine):
    rep, rep_token = await make_user(engine, role="SALES_REP", email="rep@reps.test")
    user, user_token = await make_user(engine, role="CUSTOMER", email="me@site.test")
    mine = await make_customer(engine, sales_rep_id=rep)
    other = await make_customer(engine, first_name="Other")
    own = await make_customer(engine, user_id=user, first_name="Own")
    as_rep = GraphQLClient(client, rep_token)
    assert (await post(as_rep, "ledgerCharge", mine, "1.00"))["userErrors"] == []
    assert (await post(as_rep, "ledgerCharge", other, "1.00"))["userErrors"][0]["code"] == (
        "NOT_FOUND"
    )
    as_user = GraphQLClient(client, user_token)
    assert (await post(as_user, "ledgerCredit", own, "1.00"))["userErrors"][0]["code"] == (
        "FORBIDDEN"
    )


async def test_two_hundred_concurrent_transfers_among_ten_customers(gql, engine):
    import random

    customers = [await make_customer(engine, first_name=f"C{i}") for i in range(10)]
    for c in customers:
        await post(gql, "ledgerCredit", c, "100.00")  # everyone starts with 100 in credit
    rng = random.Random(7)
    pairs = [rng.sample(customers, 2) for _ in range(200)]
    results = await asyncio.gather(
        *(
            gql.data(
                TRANSFER,
                {
                    "input": {
                        "fromCustomerId": gid("Customer", a.id),
                        "toCustomerId": gid("Customer", b.id),
                        "amount": f"{rng.randint(1, 40)}.00",
                        "currency": "USD",
                    }
                },
            )
            for a, b in pairs
        )
    )
    outcomes = [r["ledgerTransfer"]["userErrors"] for r in results]
    assert all(o == [] or o[0]["code"] == "INSUFFICIENT_FUNDS" for o in outcomes)
    assert sum(o == [] for o in outcomes) > 50
    async with engine.connect() as conn:

        def one(sql):
            return conn.execute(text(sql))

        # Every balance equals the sum of its entries, and every running balance is exact.
        assert (
            await one(
                "SELECT count(*) FROM (SELECT balance_after, sum(amount) OVER (PARTITION BY"
                " customer_id, currency ORDER BY id) s FROM ledger_transaction) x"
                " WHERE balance_after <> s"
            )
        ).scalar() == 0
        # Nobody was overdrawn: no balance ever went above zero (owing) by a transfer.
        assert (
            await one(
                "SELECT count(*) FROM ledger_transaction WHERE kind = 'TRANSFER_OUT'"
                " AND balance_after > 0"
            )
        ).scalar() == 0
        # No transfer is half-written: every group has one OUT and one IN summing to zero.
        assert (
            await one(
                "SELECT count(*) FROM (SELECT transfer_group FROM ledger_transaction"
                " WHERE transfer_group IS NOT NULL GROUP BY transfer_group"
                " HAVING count(*) <> 2 OR sum(amount) <> 0) g"
            )
        ).scalar() == 0
        assert (await one("SELECT sum(amount) FROM ledger_transaction")).scalar() == Decimal(
            "-1000.00"
        )


async def test_retried_transfer_writes_once(gql, engine):
    a = await make_customer(engine, first_name="A")
    b = await make_customer(engine, first_name="B")
    await post(gql, "ledgerCredit", a, "50.00")
    variables = {
        "input": {
            "fromCustomerId": gid("Customer", a.id),
            "toCustomerId": gid("Customer", b.id),
            "amount": "20.00",
            "currency": "USD",
            "idempotencyKey": "t-1",
        }
    }
    first, second = [await gql.data(TRANSFER, variables) for _ in range(2)]
    assert first == second
    async with engine.connect() as conn:
        groups = (
            await conn.execute(
                text("SELECT count(DISTINCT transfer_group) FROM ledger_transaction")
            )
        ).scalar()
    assert groups == 1


async def test_transfer_records_out_and_in_on_each_timeline(gql, engine):
    a = await make_customer(engine, first_name="A")
    b = await make_customer(engine, first_name="B")
    await post(gql, "ledgerCredit", a, "50.00")
    data = await gql.data(
        TRANSFER,
        {
            "input": {
                "fromCustomerId": gid("Customer", a.id),
                "toCustomerId": gid("Customer", b.id),
                "amount": "20.00",
                "currency": "USD",
                "memo": "Gift card",
            }
        },
    )
    assert data["ledgerTransfer"]["userErrors"] == []
    async with engine.connect() as conn:
        events = (
            await conn.execute(
                text(
                    "SELECT customer_id, kind, data->>'amount', data->>'counterparty'"
                    " FROM timeline_event WHERE kind LIKE 'TRANSFER%' ORDER BY id"
                )
            )
        ).all()
    assert [tuple(e) for e in events] == [
        (a.id, "TRANSFER_OUT", "20.00", b.number),
        (b.id, "TRANSFER_IN", "-20.00", a.number),
    ]


@pytest.mark.parametrize(
    "over,field,code",
    [
        ({"memo": "from card 4111 1111 1111 1111"}, ["input"], "CARD_NUMBER_REFUSED"),
        ({"toCustomerId": gid("Customer", 999)}, ["input", "toCustomerId"], "NOT_FOUND"),
        ({"fromCustomerId": gid("Customer", 999)}, ["input", "fromCustomerId"], "NOT_FOUND"),
        ({"currency": "usd1"}, ["input", "currency"], "INVALID"),
        ({"amount": "0"}, ["input", "amount"], "INVALID"),
        ({"amount": "1000.00"}, ["input", "amount"], "INSUFFICIENT_FUNDS"),
        ({"idempotencyKey": ""}, ["input", "idempotencyKey"], "INVALID"),
    ],
)
async def test_transfer_refusals_write_nothing(gql, engine, over, field, code):
    a = await make_customer(engine, first_name="A")
    b = await make_customer(engine, first_name="B")
    await post(gql, "ledgerCredit", a, "50.00")
    variables = {
        "fromCustomerId": gid("Customer", a.id),
        "toCustomerId": gid("Customer", b.id),
        "amount": "20.00",
        "currency": "USD",
        **over,
    }
    data = await gql.data(TRANSFER, {"input": variables})
    assert data["ledgerTransfer"] == {
        "transactions": [],
        "balance": None,
        "userErrors": [{"field": field, "code": code, "message": ANY}],
    }
    async with engine.connect() as conn:
        counts = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM ledger_transaction),"
                    " (SELECT count(*) FROM timeline_event), (SELECT count(*) FROM idempotency_key)"
                )
            )
        ).one()
    assert tuple(counts) == (1, 1, 0)  # the opening credit only


async def test_transfer_needs_both_customers_in_scope(client, engine):
    rep, token = await make_user(engine, role="SALES_REP", email="rep@reps.test")
    mine = await make_customer(engine, sales_rep_id=rep, first_name="Mine")
    also_mine = await make_customer(engine, sales_rep_id=rep, first_name="AlsoMine")
    other = await make_customer(engine, first_name="Other")
    as_rep = GraphQLClient(client, token)
    await post(as_rep, "ledgerCredit", mine, "10.00")
    base = {"fromCustomerId": gid("Customer", mine.id), "amount": "5.00", "currency": "USD"}
    ok = await as_rep.data(
        TRANSFER, {"input": {**base, "toCustomerId": gid("Customer", also_mine.id)}}
    )
    assert ok["ledgerTransfer"]["userErrors"] == []
    out = await as_rep.data(
        TRANSFER, {"input": {**base, "toCustomerId": gid("Customer", other.id)}}
    )
    assert out["ledgerTransfer"]["userErrors"] == [
        {"field": ["input", "toCustomerId"], "code": "NOT_FOUND", "message": ANY}
    ]


async def test_a_key_belongs_to_one_operation_and_one_actor(client, gql, engine):
    c = await make_customer(engine)
    await post(gql, "ledgerCharge", c, "5.00", idempotencyKey="k-1")
    reused = await post(gql, "ledgerPayment", c, "5.00", idempotencyKey="k-1")
    assert reused["userErrors"] == [
        {"field": ["input", "idempotencyKey"], "code": "IDEMPOTENCY_CONFLICT", "message": ANY}
    ]
    # Keys are scoped per actor (as Stripe scopes them per account): another admin's k-1 is new.
    _, token = await make_user(engine, role="ADMIN", email="other-admin@example.com")
    theirs = await post(
        GraphQLClient(client, token), "ledgerCharge", c, "5.00", idempotencyKey="k-1"
    )
    assert theirs["userErrors"] == [] and theirs["balance"]["amount"] == "10.00"


async def test_unknown_customer_is_not_found(gql, engine):
    class Ghost:
        id = 999

    result = await post(gql, "ledgerCharge", Ghost, "5.00")
    assert result == {
        "transactions": [],
        "balance": None,
        "userErrors": [{"field": ["input", "customerId"], "code": "NOT_FOUND", "message": ANY}],
    }


async def test_balances_are_per_currency(gql, engine):
    c = await make_customer(engine)
    await post(gql, "ledgerCharge", c, "10.00", "USD")
    eur = await post(gql, "ledgerCharge", c, "3.00", "eur")
    assert eur["balance"] == {"amount": "3.00", "currency": "EUR"}
    data = await gql.data(
        f'{{ customer(number: "{c.number}") {{ balances {{ amount currency }} }} }}'
    )
    assert data["customer"]["balances"] == [
        {"amount": "3.00", "currency": "EUR"},
        {"amount": "10.00", "currency": "USD"},
    ]


async def test_ten_concurrent_transfers_among_three_customers_in_every_direction(gql, engine):
    """Transfers between the same customers, both ways at once (the pairs whose row locks a
    careless order would deadlock), ten at a time: no error reaches a client, every balance
    is the sum of its postings, every running balance is exact, and each transfer wrote its
    two timeline events."""
    customers = [await make_customer(engine, first_name=f"C{i}") for i in range(3)]
    directions = [(a, b) for a in customers for b in customers if a is not b]
    transfers = [(*directions[i % len(directions)], Decimal(f"{i + 1}.00")) for i in range(30)]
    expected = {c.id: Decimal("0.00") for c in customers}
    for a, b, amount in transfers:
        expected[a.id] += amount  # the giver owes more (TRANSFER_OUT is +amount)
        expected[b.id] -= amount

    async def one(a, b, amount: Decimal) -> dict:
        return await gql.data(
            TRANSFER,
            {
                "input": {
                    "fromCustomerId": gid("Customer", a.id),
                    "toCustomerId": gid("Customer", b.id),
                    "amount": str(amount),
                    "currency": "USD",
                    "allowOverdraft": True,
                }
            },
        )

    for start in range(0, len(transfers), 10):
        batch = transfers[start : start + 10]
        results = await asyncio.gather(*(one(*t) for t in batch))
        assert [r["ledgerTransfer"]["userErrors"] for r in results] == [[]] * len(batch)
        for (_, _, amount), r in zip(batch, results, strict=True):
            assert [t["amount"]["amount"] for t in r["ledgerTransfer"]["transactions"]] == [
                str(amount),
                str(-amount),
            ]
    for c in customers:
        assert await ledger_sums(engine, c.id) == (expected[c.id], expected[c.id])
    async with engine.connect() as conn:
        wrong = await conn.scalar(
            text(
                "SELECT count(*) FROM (SELECT balance_after, sum(amount) OVER (PARTITION BY"
                " customer_id, currency ORDER BY id) s FROM ledger_transaction) x"
                " WHERE balance_after <> s"
            )
        )
        events = (
            await conn.execute(
                text(
                    "SELECT kind, count(*), count(DISTINCT data->>'entry') FROM timeline_event"
                    " GROUP BY kind ORDER BY kind"
                )
            )
        ).all()
    assert wrong == 0
    assert [tuple(e) for e in events] == [("TRANSFER_IN", 30, 30), ("TRANSFER_OUT", 30, 30)]


async def test_a_running_transfer_does_not_hold_the_timeline_order_lock(
    engine, app_engine, monkeypatch
):
    """The timeline's order lock (every event-writing transaction commits in turn) is taken
    by the server with COMMIT, not while the mutation's transaction waits on this process:
    in the middle of a transfer another session can take it."""
    from models.enums import Role
    from resolvers import ledger_mutations
    from resolvers.context import Context
    from resolvers.timeline import ORDER_LOCK
    from resolvers.viewer import Viewer
    from server.settings import get_settings

    a = await make_customer(engine, first_name="A")
    b = await make_customer(engine, first_name="B")
    admin, _ = await make_user(engine, role="ADMIN", email="lock@example.com")
    ctx = Context(engine=app_engine, settings=get_settings(), viewer=Viewer(admin, Role.ADMIN))
    free_meanwhile = []

    real = ledger_mutations.record_many

    async def record_then_probe(*args, **kw) -> None:  # after both entries and their events
        await real(*args, **kw)
        async with engine.connect() as conn:
            free_meanwhile.append(
                await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": ORDER_LOCK})
            )
            await conn.rollback()

    monkeypatch.setattr(ledger_mutations, "record_many", record_then_probe)
    rows, balance, _ = await ledger_mutations.transfer(
        ctx, a.id, b.id, "5.00", "USD", None, True, None
    )
    assert free_meanwhile == [True]
    assert [r.kind for r in rows] == ["TRANSFER_OUT", "TRANSFER_IN"] and balance == Decimal("5.00")
    async with engine.connect() as conn:
        kinds = (await conn.execute(text("SELECT kind FROM timeline_event ORDER BY id"))).all()
    assert [k for (k,) in kinds] == ["TRANSFER_OUT", "TRANSFER_IN"]
