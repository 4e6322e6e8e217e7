"""Orders: server-side totals, checkout all-or-nothing, cancel, refunds within what was paid."""

from decimal import Decimal
from unittest.mock import ANY

import pytest
from sqlalchemy import text

from tests.conftest import gid
from tests.factories import make_address, make_customer

CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) {
  order { number status source currency subtotal { amount } taxTotal { amount }
          shippingTotal { amount } total { amount } amountPaid { amount }
          lines { sku quantity lineTotal { amount } }
          customer { email number balances { amount currency } addresses { line1 isDefault }
                     timeline(first: 10) { edges { node { kind } } } } }
  userErrors { field code message } } }"""
CREATE = """mutation($input: OrderCreateInput!) { orderCreate(input: $input) {
  order { id number status subtotal { amount } taxTotal { amount } total { amount currency }
          lines { taxRate }
          customer { balances { amount } } }
  userErrors { field code message } } }"""
REFUND = """mutation($input: OrderRefundInput!) { orderRefund(input: $input) {
  order { status amountRefunded { amount } customer { balances { amount } } }
  userErrors { field code message } } }"""


def checkout_input(**over) -> dict:
    base = {
        "email": "buyer@shop.test",
        "firstName": "Bea",
        "lastName": "Buyer",
        "shippingAddress": {
            "line1": "1 Rue de Rivoli",
            "city": "Paris",
            "postalCode": "75001",
            "country": "FR",
        },
        "currency": "EUR",
        "paymentToken": "tok_visa_abc",
        "lines": [
            {"sku": "TEE", "description": "Tee", "quantity": 2, "unitPrice": "19.90"},
            {"sku": "MUG", "description": "Mug", "quantity": 1, "unitPrice": "12.50"},
        ],
        "shippingTotal": "4.90",
    }
    return {**base, **over}


CANCEL = """mutation($input: OrderCancelInput!) { orderCancel(input: $input) {
  order { status } userErrors { field code message } } }"""


TABLES = ("customer", "address", "orders", "order_line", "ledger_transaction", "timeline_event")


async def unpaid_order(client, customer) -> str:
    """An order entered by staff for `customer` (PLACED, charged 10.00 USD): its global id."""
    created = await client.data(
        CREATE,
        {
            "input": {
                "customerId": gid("Customer", customer.id),
                "currency": "USD",
                "lines": [{"description": "x", "unitPrice": "10.00"}],
            }
        },
    )
    return created["orderCreate"]["order"]["id"]


async def snapshot(engine) -> tuple:
    counts = []
    async with engine.connect() as conn:
        for table in TABLES:
            counts.append((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar())
    return tuple(counts)


async def test_checkout_creates_everything(gql, engine):
    data = await gql.data(CHECKOUT, {"input": checkout_input()})
    result = data["checkout"]
    assert result["userErrors"] == []
    order = result["order"]
    # 2 x 19.90 + 12.50 = 52.30; FR VAT 20% = 10.46; + 4.90 shipping = 67.66
    assert (
        order["subtotal"]["amount"],
        order["taxTotal"]["amount"],
        order["shippingTotal"]["amount"],
        order["total"]["amount"],
    ) == ("52.30", "10.46", "4.90", "67.66")
    assert order["status"] == "PAID" and order["amountPaid"]["amount"] == "67.66"
    assert order["source"] == "CHECKOUT" and [x["sku"] for x in order["lines"]] == ["TEE", "MUG"]
    customer = order["customer"]
    assert customer["balances"] == [{"amount": "0.00", "currency": "EUR"}]
    assert customer["addresses"] == [{"line1": "1 Rue de Rivoli", "isDefault": True}]
    kinds = [e["node"]["kind"] for e in customer["timeline"]["edges"]]
    assert kinds == ["PAYMENT_RECEIVED", "ORDER_PLACED", "ADDRESS_ADDED", "CUSTOMER_CREATED"]
    # The same buyer again: found by email, the address reused.
    again = await gql.data(CHECKOUT, {"input": checkout_input(email="BUYER@shop.test")})
    assert again["checkout"]["order"]["customer"]["number"] == customer["number"]
    assert len(again["checkout"]["order"]["customer"]["addresses"]) == 1


async def test_checkout_is_all_or_nothing(gql, engine, monkeypatch):
    from resolvers import order_mutations

    before = await snapshot(engine)
    calls = {"n": 0}
    real = order_mutations.append

    async def fail_on_payment(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # after customer, address, order and CHARGE were written
            raise RuntimeError("processor down")
        return await real(*args, **kwargs)

    monkeypatch.setattr(order_mutations, "append", fail_on_payment)
    body = await gql(CHECKOUT, {"input": checkout_input()})
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert await snapshot(engine) == before


@pytest.mark.parametrize(
    "over,field,code",
    [
        ({"currency": "EURO"}, ["input", "currency"], "INVALID"),
        ({"lines": []}, ["input", "lines"], "REQUIRED"),
        (
            {"lines": [{"description": "x", "quantity": 0, "unitPrice": "1"}]},
            ["input", "lines", "0", "quantity"],
            "INVALID",
        ),
        ({"shippingAddress": {"line1": "x", "country": "XX"}}, ["input", "country"], "INVALID"),
        ({"paymentToken": "4242 4242 4242 4242"}, ["input"], "CARD_NUMBER_REFUSED"),
    ],
)
async def test_checkout_bad_input_writes_nothing(gql, engine, over, field, code):
    before = await snapshot(engine)
    data = await gql.data(CHECKOUT, {"input": checkout_input(**over)})
    error = data["checkout"]["userErrors"][0]
    assert (error["field"], error["code"]) == (field, code)
    assert await snapshot(engine) == before


async def test_checkout_idempotent(gql, engine):
    first = await gql.data(CHECKOUT, {"input": checkout_input(idempotencyKey="cart-42")})
    second = await gql.data(CHECKOUT, {"input": checkout_input(idempotencyKey="cart-42")})
    assert first == second
    assert (await snapshot(engine))[2] == 1
    other = await gql.data(
        CHECKOUT, {"input": checkout_input(idempotencyKey="cart-42", shippingTotal="9.99")}
    )
    assert other["checkout"]["userErrors"][0]["code"] == "IDEMPOTENCY_CONFLICT"


async def test_admin_order_taxes_and_exemption(gql, engine):
    taxed = await make_customer(engine)
    addr = await make_address(engine, taxed.id, country="US")
    exempt = await make_customer(engine, first_name="Ex", tax_status="EXEMPT")
    lines = [{"description": "Consulting", "quantity": 3, "unitPrice": "100.00"}]
    data = await gql.data(
        CREATE,
        {
            "input": {
                "customerId": gid("Customer", taxed.id),
                "currency": "USD",
                "lines": lines,
                "shippingAddressId": gid("Address", addr.id),
            }
        },
    )
    order = data["orderCreate"]["order"]
    assert (
        order["status"],
        order["subtotal"]["amount"],
        order["taxTotal"]["amount"],
        order["total"]["amount"],
    ) == ("PLACED", "300.00", "21.75", "321.75")
    assert order["customer"]["balances"] == [{"amount": "321.75"}]
    assert order["lines"] == [{"taxRate": "0.0725"}]
    data = await gql.data(
        CREATE,
        {"input": {"customerId": gid("Customer", exempt.id), "currency": "USD", "lines": lines}},
    )
    assert data["orderCreate"]["order"]["taxTotal"]["amount"] == "0.00"


async def test_cancel_unpaid_and_refuse_paid(gql, engine):
    c = await make_customer(engine)
    order_id = await unpaid_order(gql, c)
    cancel = """mutation($input: OrderCancelInput!) { orderCancel(input: $input) {
        order { status customer { balances { amount } } } userErrors { code } } }"""
    data = await gql.data(cancel, {"input": {"orderId": order_id}})
    assert data["orderCancel"]["order"]["status"] == "CANCELLED"
    assert data["orderCancel"]["order"]["customer"]["balances"] == [{"amount": "0.00"}]
    paid = await gql.data(CHECKOUT, {"input": checkout_input()})
    number = paid["checkout"]["order"]["number"]
    order = await gql.data(f'{{ order(number: "{number}") {{ id }} }}')
    refused = await gql.data(cancel, {"input": {"orderId": order["order"]["id"]}})
    assert refused["orderCancel"]["userErrors"] == [{"code": "CONFLICT"}]


async def test_refunds_never_exceed_what_was_paid(gql, engine):
    paid = await gql.data(CHECKOUT, {"input": checkout_input()})
    number = paid["checkout"]["order"]["number"]
    order_id = (await gql.data(f'{{ order(number: "{number}") {{ id }} }}'))["order"]["id"]
    partial = await gql.data(REFUND, {"input": {"orderId": order_id, "amount": "20.00"}})
    assert partial["orderRefund"]["order"]["status"] == "PAID"
    assert partial["orderRefund"]["order"]["amountRefunded"] == {"amount": "20.00"}
    assert partial["orderRefund"]["order"]["customer"]["balances"] == [{"amount": "0.00"}]
    too_much = await gql.data(REFUND, {"input": {"orderId": order_id, "amount": "50.00"}})
    assert too_much["orderRefund"]["userErrors"][0]["code"] == "INVALID"
    rest = await gql.data(REFUND, {"input": {"orderId": order_id}})
    assert rest["orderRefund"]["order"]["status"] == "REFUNDED"
    assert rest["orderRefund"]["order"]["amountRefunded"] == {"amount": "67.66"}
    async with engine.connect() as conn:
        refunds = (
            await conn.execute(
                text("SELECT count(*), sum(amount) FROM ledger_transaction WHERE kind = 'REFUND'")
            )
        ).one()
    assert refunds == (4, Decimal("0.00"))


async def order_id_of(gql, number: str) -> str:
    return (await gql.data(f'{{ order(number: "{number}") {{ id }} }}'))["order"]["id"]


async def test_retried_full_refund_replays(gql, engine):
    paid = await gql.data(CHECKOUT, {"input": checkout_input()})
    order_id = await order_id_of(gql, paid["checkout"]["order"]["number"])
    request = {"input": {"orderId": order_id, "idempotencyKey": "refund-all"}}
    first = await gql.data(REFUND, request)
    # The retry is the same request ("refund the rest") although the rest is now 0.
    second = await gql.data(REFUND, request)
    assert first == second
    assert first["orderRefund"]["userErrors"] == []
    assert first["orderRefund"]["order"]["amountRefunded"] == {"amount": "67.66"}
    other = await gql.data(
        REFUND, {"input": {"orderId": order_id, "amount": "1.00", "idempotencyKey": "refund-all"}}
    )
    assert other["orderRefund"]["userErrors"] == [
        {"field": ["input", "idempotencyKey"], "code": "IDEMPOTENCY_CONFLICT", "message": ANY}
    ]
    async with engine.connect() as conn:
        refunds = (
            await conn.execute(
                text("SELECT count(*) FROM ledger_transaction WHERE kind = 'REFUND'")
            )
        ).scalar()
    assert refunds == 2


@pytest.mark.parametrize(
    "amount,code",
    [("0.00", "INVALID"), ("-1.00", "INVALID"), ("1.001", "INVALID"), ("67.67", "INVALID")],
)
async def test_refund_refusals_write_nothing(gql, engine, amount, code):
    paid = await gql.data(CHECKOUT, {"input": checkout_input()})
    order_id = await order_id_of(gql, paid["checkout"]["order"]["number"])
    before = await snapshot(engine)
    data = await gql.data(REFUND, {"input": {"orderId": order_id, "amount": amount}})
    assert data["orderRefund"] == {
        "order": None,
        "userErrors": [{"field": ["input", "amount"], "code": code, "message": ANY}],
    }
    assert await snapshot(engine) == before


async def test_unpaid_order_cannot_be_refunded(gql, engine):
    c = await make_customer(engine)
    order_id = await unpaid_order(gql, c)
    data = await gql.data(REFUND, {"input": {"orderId": order_id}})
    assert data["orderRefund"]["userErrors"] == [
        {"field": ["input", "amount"], "code": "INVALID", "message": ANY}
    ]


async def test_order_create_is_idempotent(gql, engine):
    c = await make_customer(engine)
    request = {
        "input": {
            "customerId": gid("Customer", c.id),
            "currency": "USD",
            "lines": [{"description": "Phone order", "quantity": 2, "unitPrice": "15.00"}],
            "idempotencyKey": "phone-order-7",
        }
    }
    first = await gql.data(CREATE, request)
    second = await gql.data(CREATE, request)
    assert first == second and first["orderCreate"]["userErrors"] == []
    assert (await snapshot(engine))[2:5] == (1, 1, 1)  # one order, one line, one CHARGE
    changed = {"input": {**request["input"], "currency": "EUR"}}
    conflict = await gql.data(CREATE, changed)
    assert conflict["orderCreate"]["userErrors"] == [
        {"field": ["input", "idempotencyKey"], "code": "IDEMPOTENCY_CONFLICT", "message": ANY}
    ]


@pytest.mark.parametrize(
    "over,field,code",
    [
        ({"currency": "XXX1"}, ["input", "currency"], "INVALID"),
        ({"lines": []}, ["input", "lines"], "REQUIRED"),
        (
            {"lines": [{"description": " ", "unitPrice": "1.00"}]},
            ["input", "lines", "0", "description"],
            "REQUIRED",
        ),
        (
            {"lines": [{"description": "x", "unitPrice": "-1.00"}]},
            ["input", "lines", "0", "unitPrice"],
            "INVALID",
        ),
        ({"shippingTotal": "-5"}, ["input", "shippingTotal"], "INVALID"),
        ({"customerId": gid("Customer", 999)}, ["input", "customerId"], "NOT_FOUND"),
        ({"salesChannelId": gid("SalesChannel", 999)}, ["input", "salesChannelId"], "NOT_FOUND"),
        ({"shippingAddressId": "OTHER"}, ["input", "shippingAddressId"], "NOT_FOUND"),
        (
            {"lines": [{"description": "4111 1111 1111 1111", "unitPrice": "1.00"}]},
            ["input"],
            "CARD_NUMBER_REFUSED",
        ),
    ],
)
async def test_order_create_refusals_write_nothing(gql, engine, over, field, code):
    c = await make_customer(engine)
    other = await make_customer(engine, first_name="Other")
    theirs = await make_address(engine, other.id)
    if over.get("shippingAddressId") == "OTHER":  # another customer's address
        over = {"shippingAddressId": gid("Address", theirs.id)}
    before = await snapshot(engine)
    base = {
        "customerId": gid("Customer", c.id),
        "currency": "USD",
        "lines": [{"description": "x", "unitPrice": "10.00"}],
    }
    data = await gql.data(CREATE, {"input": {**base, **over}})
    assert data["orderCreate"] == {
        "order": None,
        "userErrors": [{"field": field, "code": code, "message": ANY}],
    }
    assert await snapshot(engine) == before


async def test_order_permissions(client, engine):
    from tests.conftest import GraphQLClient
    from tests.factories import make_order, make_user

    rep_id, rep_token = await make_user(engine, role="SALES_REP", email="rep@reps.test")
    user_id, user_token = await make_user(engine, role="CUSTOMER", email="me@site.test")
    mine = await make_customer(engine, sales_rep_id=rep_id)
    own = await make_customer(engine, user_id=user_id, first_name="Own")
    their_order = await make_order(engine, own.id)
    rep, me = GraphQLClient(client, rep_token), GraphQLClient(client, user_token)
    lines = [{"description": "x", "unitPrice": "10.00"}]
    ok = await rep.data(
        CREATE,
        {"input": {"customerId": gid("Customer", mine.id), "currency": "USD", "lines": lines}},
    )
    assert ok["orderCreate"]["userErrors"] == []
    hidden = await rep.data(
        CREATE,
        {"input": {"customerId": gid("Customer", own.id), "currency": "USD", "lines": lines}},
    )
    assert hidden["orderCreate"]["userErrors"][0]["code"] == "NOT_FOUND"
    forbidden = await me.data(
        CREATE,
        {"input": {"customerId": gid("Customer", own.id), "currency": "USD", "lines": lines}},
    )
    assert forbidden["orderCreate"]["userErrors"] == [
        {"field": None, "code": "FORBIDDEN", "message": ANY}
    ]
    order_id = gid("Order", their_order.id)
    assert (await rep.data(CANCEL, {"input": {"orderId": order_id}}))["orderCancel"][
        "userErrors"
    ] == [{"field": ["input", "orderId"], "code": "NOT_FOUND", "message": ANY}]
    assert (await me.data(CANCEL, {"input": {"orderId": order_id}}))["orderCancel"][
        "userErrors"
    ] == [{"field": None, "code": "FORBIDDEN", "message": ANY}]
    # Checkout as a site user: only as themselves.
    as_other = await me.data(CHECKOUT, {"input": checkout_input(email="someone@else.test")})
    assert as_other["checkout"]["userErrors"] == [
        {"field": ["input", "email"], "code": "FORBIDDEN", "message": ANY}
    ]


async def test_cancel_records_reason_and_refuses_card_numbers(gql, engine):
    c = await make_customer(engine)
    order_id = await unpaid_order(gql, c)
    refused = await gql.data(
        CANCEL, {"input": {"orderId": order_id, "reason": "paid by 4111 1111 1111 1111"}}
    )
    assert refused["orderCancel"]["userErrors"] == [
        {"field": ["input"], "code": "CARD_NUMBER_REFUSED", "message": ANY}
    ]
    done = await gql.data(
        CANCEL, {"input": {"orderId": order_id, "reason": "Customer changed mind"}}
    )
    assert done["orderCancel"]["order"]["status"] == "CANCELLED"
    again = await gql.data(CANCEL, {"input": {"orderId": order_id}})  # a no-op, not an error
    assert again["orderCancel"] == {"order": {"status": "CANCELLED"}, "userErrors": []}
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT kind, data->>'reason' FROM timeline_event"
                    " WHERE kind = 'ORDER_CANCELLED'"
                )
            )
        ).all()
        adjustments = (
            await conn.execute(
                text("SELECT count(*) FROM ledger_transaction WHERE kind = 'ADJUSTMENT'")
            )
        ).scalar()
    assert [tuple(r) for r in rows] == [("ORDER_CANCELLED", "Customer changed mind")]
    assert adjustments == 1


async def test_checkout_keeps_the_token_out_of_readable_places(gql, engine):
    bad = await gql.data(CHECKOUT, {"input": checkout_input(paymentToken=" ")})
    assert bad["checkout"]["userErrors"] == [
        {"field": ["input", "paymentToken"], "code": "INVALID", "message": ANY}
    ]
    ok = await gql.data(CHECKOUT, {"input": checkout_input(paymentToken="tok_secret_123")})
    assert ok["checkout"]["userErrors"] == []
    async with engine.connect() as conn:
        dump = (
            await conn.execute(
                text(
                    "SELECT (SELECT string_agg(l::text, ' ') FROM ledger_transaction l)"
                    " || (SELECT string_agg(t::text, ' ') FROM timeline_event t)"
                )
            )
        ).scalar()
    assert "tok_secret_123" not in dump


async def test_tax_rounds_half_up_to_the_cent(gql, engine):
    c = await make_customer(engine)
    addr = await make_address(engine, c.id, country="US")
    data = await gql.data(
        """mutation($input: OrderCreateInput!) { orderCreate(input: $input) {
          order { taxTotal { amount } lines { taxRate } } } }""",
        {
            "input": {
                "customerId": gid("Customer", c.id),
                "currency": "USD",
                "lines": [{"description": "x", "quantity": 1, "unitPrice": "10.00"}],
                "shippingAddressId": gid("Address", addr.id),
            }
        },
    )
    order = data["orderCreate"]["order"]
    assert order["lines"] == [{"taxRate": "0.0725"}]
    assert order["taxTotal"] == {"amount": "0.73"}  # 10.00 x 7.25 % = 0.725, half-up
