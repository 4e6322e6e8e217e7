"""The whole customer lifecycle through GraphQL alone, every step on the timeline."""

import base64

from tests.factories import make_customer


async def run(gql, name: str, input_type: str, selection: str, input_: dict) -> dict:
    data = await gql.data(
        f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ {selection} "
        "userErrors { field code message } } }",
        {"input": input_},
    )
    assert data[name]["userErrors"] == [], (name, data[name]["userErrors"])
    return data[name]


async def test_create_to_transfer(gql, engine):
    friend = await make_customer(engine, first_name="Friend")
    created = await run(
        gql,
        "customerCreate",
        "CustomerCreateInput",
        "customer { id number }",
        {"firstName": "Lin", "lastName": "Ng", "email": "lin@example.com", "phone": "4155552671"},
    )
    cid, number = created["customer"]["id"], created["customer"]["number"]
    await run(
        gql,
        "addressCreate",
        "AddressInput",
        "address { id }",
        {
            "customerId": cid,
            "line1": "1 Market St",
            "city": "San Francisco",
            "region": "CA",
            "postalCode": "94105",
            "country": "US",
            "isDefault": True,
        },
    )
    account = await run(
        gql,
        "accountCreate",
        "AccountInput",
        "account { id }",
        {"name": "Lin Ng", "customerId": cid},
    )
    await run(
        gql,
        "paymentMethodAdd",
        "PaymentMethodInput",
        "paymentMethod { last4 }",
        {
            "accountId": account["account"]["id"],
            "token": "pm_lin_1",
            "brand": "visa",
            "last4": "4242",
            "expMonth": 1,
            "expYear": 2099,
        },
    )
    await run(
        gql,
        "customFieldDefinitionCreate",
        "CustomFieldDefinitionInput",
        "definition { id }",
        {"key": "segment", "label": "Segment", "type": "SELECT", "options": ["retail", "pro"]},
    )
    await run(
        gql,
        "customerSetCustomFields",
        "CustomerSetCustomFieldsInput",
        "customer { id }",
        {"customerId": cid, "values": [{"key": "segment", "value": "pro"}]},
    )
    await run(
        gql,
        "customerSetTaxStatus",
        "TaxStatusInput",
        "customer { id }",
        {"customerId": cid, "status": "TAXABLE", "taxCode": "C-STD"},
    )
    await run(
        gql,
        "taxExemptionCertificateAdd",
        "TaxCertificateInput",
        "certificate { id }",
        {
            "customerId": cid,
            "number": "CA-RESALE-1",
            "country": "US",
            "region": "CA",
            "reason": "Resale",
            "validFrom": "2020-01-01",
        },
    )
    order = await run(
        gql,
        "checkout",
        "CheckoutInput",
        "order { id number taxTotal { amount } total { amount } customer { number } }",
        {
            "email": "LIN@example.com",
            "shippingAddress": {
                "line1": "1 Market St",
                "city": "San Francisco",
                "region": "CA",
                "postalCode": "94105",
                "country": "US",
            },
            "currency": "USD",
            "lines": [{"description": "Tool kit", "quantity": 2, "unitPrice": "40.00"}],
            "paymentToken": "pm_lin_1",
            "idempotencyKey": "cart-lin-1",
        },
    )
    assert order["order"]["customer"]["number"] == number  # found by email, not created
    assert order["order"]["taxTotal"] == {"amount": "0.00"}  # the CA certificate applies
    await run(
        gql,
        "orderRefund",
        "OrderRefundInput",
        "order { amountRefunded { amount } }",
        {"orderId": order["order"]["id"], "amount": "10.00"},
    )
    await run(
        gql,
        "ledgerCredit",
        "LedgerEntryInput",
        "balance { amount }",
        {"customerId": cid, "amount": "25.00", "currency": "USD", "memo": "Goodwill"},
    )
    moved = await run(
        gql,
        "ledgerTransfer",
        "LedgerTransferInput",
        "balance { amount }",
        {
            "fromCustomerId": cid,
            "toCustomerId": base64.b64encode(f"Customer:{friend.id}".encode()).decode(),
            "amount": "15.00",
            "currency": "USD",
            "idempotencyKey": "gift-1",
        },
    )
    assert moved["balance"] == {"amount": "-10.00"}  # 25 credit - 15 given away
    await run(
        gql,
        "customerAddNote",
        "CustomerAddNoteInput",
        "event { kind }",
        {"customerId": cid, "note": "Asked about bulk pricing"},
    )
    data = await gql.data(
        f'{{ customer(number: "{number}") {{ balances {{ amount currency }}'
        " customFields { key value } paymentMethods: account { paymentMethods { last4 } }"
        " timeline(first: 50) { totalCount edges { node { kind actor { email } } } } } }"
    )
    customer = data["customer"]
    assert customer["balances"] == [{"amount": "-10.00", "currency": "USD"}]
    assert customer["customFields"] == [{"key": "segment", "value": "pro"}]
    assert customer["paymentMethods"] == {"paymentMethods": [{"last4": "4242"}]}
    kinds = [e["node"]["kind"] for e in customer["timeline"]["edges"]]
    assert kinds == [
        "NOTE_ADDED",
        "TRANSFER_OUT",
        "CREDIT_ISSUED",
        "ORDER_REFUNDED",
        "PAYMENT_RECEIVED",
        "ORDER_PLACED",
        "TAX_CERTIFICATE_ADDED",
        "TAX_STATUS_CHANGED",
        "CUSTOM_FIELDS_CHANGED",
        "PAYMENT_METHOD_ADDED",
        "ACCOUNT_ATTACHED",
        "ADDRESS_ADDED",
        "CUSTOMER_CREATED",
    ]
    assert {e["node"]["actor"]["email"] for e in customer["timeline"]["edges"]} == {
        "admin@example.com"
    }
