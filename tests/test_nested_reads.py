"""Nested customer reads: correct per-parent pages and a fixed SQL cost per level.

The page of N customers with orders, lines, addresses, ledger, balances, custom fields,
tax certificates, timeline, channels, rep and account must cost the same number of SQL
statements for N = 1 and N = 50: one per relation, never one per parent.
"""

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert

from models import (
    Address,
    CustomerSalesChannel,
    LedgerTransaction,
    Order,
    OrderLine,
    TaxExemptionCertificate,
    TimelineEvent,
)
from tests.factories import (
    T0,
    make_account,
    make_custom_field,
    make_customer,
    make_payment_method,
    make_sales_channel,
    make_user,
    set_custom_value,
)


@pytest.fixture
def settings(settings):
    """The page's worst case (50 customers x 10 orders x 500 lines) is over the default cost
    limit; these tests count statements, so they lift it."""
    return dataclasses.replace(settings, max_cost=10**9)


ORDERS_EACH = 12
LEDGER_EACH = 12


async def seed_customers(engine, n: int) -> list:
    """n customers, each with 12 orders (2 lines), 2 addresses, 12 ledger entries, etc."""
    rep_id, _ = await make_user(engine, role="SALES_REP", email="rep@example.com")
    account = await make_account(engine)
    await make_payment_method(engine, account.id)
    web = await make_sales_channel(engine, "web")
    tier = await make_custom_field(engine, "tier", "SELECT", options=["gold", "silver"])
    customers = []
    for i in range(n):
        customers.append(
            await make_customer(
                engine,
                first_name=f"First{i:03d}",
                last_name=f"Last{i:03d}",
                email=f"c{i}@example.com",
                sales_rep_id=rep_id,
                account_id=account.id,
                tax_status="EXEMPT",
            )
        )
    ids = [c.id for c in customers]
    orders, lines, addresses, ledger, certs, events, links = [], [], [], [], [], [], []
    oid = 0
    for cid in ids:
        links.append({"customer_id": cid, "sales_channel_id": web.id})
        for k, kind in enumerate(("SHIPPING", "BILLING")):
            addresses.append(
                dict(
                    customer_id=cid,
                    kind=kind,
                    is_default=True,
                    line1=f"{k} Road",
                    city="Lyon",
                    country="FR",
                )
            )
        for j in range(ORDERS_EACH):
            oid += 1
            orders.append(
                dict(
                    id=oid,
                    customer_id=cid,
                    number=f"O-T{oid:05d}",
                    source="CHECKOUT",
                    currency="EUR",
                    subtotal=Decimal("20.00"),
                    tax_total=Decimal("0.00"),
                    shipping_total=Decimal("0.00"),
                    total=Decimal("20.00"),
                    placed_at=T0 + timedelta(days=j),
                )
            )
            for p in (1, 2):
                lines.append(
                    dict(
                        order_id=oid,
                        customer_id=cid,
                        position=p,
                        sku=f"S{p}",
                        description="x",
                        quantity=1,
                        unit_price=Decimal("10.00"),
                        line_total=Decimal("10.00"),
                    )
                )
        balance = Decimal("0")
        for _ in range(LEDGER_EACH):
            balance += Decimal("5.00")
            ledger.append(
                dict(
                    customer_id=cid,
                    kind="CHARGE",
                    amount=Decimal("5.00"),
                    currency="EUR",
                    balance_after=balance,
                )
            )
        certs.append(dict(customer_id=cid, number=f"EX-{cid}", country="FR", valid_from=T0.date()))
        events.extend(
            dict(customer_id=cid, kind="NOTE_ADDED", summary=f"note {j}") for j in range(3)
        )
    async with engine.begin() as conn:
        for model, rows in (
            (CustomerSalesChannel, links),
            (Address, addresses),
            (Order, orders),
            (OrderLine, lines),
            (LedgerTransaction, ledger),
            (TaxExemptionCertificate, certs),
            (TimelineEvent, events),
        ):
            await conn.execute(insert(model.__table__), rows)
    for cid in ids:
        await set_custom_value(engine, cid, tier.id, text_value="gold")
    return customers


PAGE = """
query Page($n: Int!) {
  customers(first: $n, orderBy: {field: NAME}) {
    edges { cursor node {
      id number displayName
      account { number name billingAddress { city } paymentMethods { brand last4 } }
      salesRep { email }
      salesChannels { code }
      addresses { kind city country isDefault }
      orders(first: 10) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { node {
          number placedAt total { amount currency } lines { sku lineTotal { amount } }
        } }
      }
      ledgerTransactions(first: 10) {
        edges { node { kind amount { amount } balanceAfter { amount currency } } }
      }
      balances { amount currency }
      customFields { key label type value textValue }
      taxStatus { status taxCode exemptionCertificates { number isValid } }
      timeline(first: 2) { edges { node { kind summary } } }
    } }
  }
}
"""

# token lookup + customers page, then one statement per relation at each level:
# level 2: account, salesRep, salesChannels, addresses, orders, orders.totalCount, ledger,
#          balances, customFields, taxStatus.exemptionCertificates, timeline  (11)
# level 3: account.paymentMethods, order.lines                                  (2)
EXPECTED_STATEMENTS = 1 + 1 + 11 + 2


async def run_page(gql, counter, n: int) -> tuple[dict, int]:
    counter.reset()
    data = await gql.data(PAGE, {"n": n})
    return data, counter.count


async def test_statement_count_is_independent_of_page_size(gql, engine, counter):
    await seed_customers(engine, 50)
    one, cost_one = await run_page(gql, counter, 1)
    fifty, cost_fifty = await run_page(gql, counter, 50)
    assert len(one["customers"]["edges"]) == 1
    assert len(fifty["customers"]["edges"]) == 50
    assert cost_one == cost_fifty == EXPECTED_STATEMENTS, counter.statements


async def test_first_ten_orders_of_each_of_fifty_customers(gql, engine, counter):
    """LIMIT applies per parent (LATERAL), not to the whole batch."""
    await seed_customers(engine, 50)
    data, _ = await run_page(gql, counter, 50)
    for edge in data["customers"]["edges"]:
        node = edge["node"]
        orders = node["orders"]
        assert len(orders["edges"]) == 10
        assert orders["totalCount"] == ORDERS_EACH
        assert orders["pageInfo"]["hasNextPage"] is True
        placed = [o["node"]["placedAt"] for o in orders["edges"]]
        assert placed == sorted(placed, reverse=True), "orders are newest first"
        assert all(len(o["node"]["lines"]) == 2 for o in orders["edges"])
        ledger = node["ledgerTransactions"]["edges"]
        assert len(ledger) == 10
        # Newest first: the first entry carries the full balance.
        assert ledger[0]["node"]["balanceAfter"] == {"amount": "60.00", "currency": "EUR"}
        assert node["balances"] == [{"amount": "60.00", "currency": "EUR"}]
        assert node["customFields"] == [
            {"key": "tier", "label": "Tier", "type": "SELECT", "value": "gold", "textValue": "gold"}
        ]
        assert node["taxStatus"]["status"] == "EXEMPT"
        assert node["taxStatus"]["exemptionCertificates"][0]["isValid"] is True
        assert [a["kind"] for a in node["addresses"]] == ["SHIPPING", "BILLING"]
        assert node["account"]["paymentMethods"] == [{"brand": "visa", "last4": "4242"}]
        assert node["salesRep"] == {"email": "rep@example.com"}
        assert node["salesChannels"] == [{"code": "web"}]
        assert len(node["timeline"]["edges"]) == 2


async def test_nested_orders_page_forward_with_cursor(gql, engine):
    customer = (await seed_customers(engine, 1))[0]
    query = """query($n: String!, $after: String) { customer(number: $n) {
        orders(first: 5, after: $after) { pageInfo { hasNextPage hasPreviousPage endCursor }
          edges { node { number } } } } }"""
    seen, after = [], None
    while True:
        data = await gql.data(query, {"n": customer.number, "after": after})
        orders = data["customer"]["orders"]
        seen += [e["node"]["number"] for e in orders["edges"]]
        if not orders["pageInfo"]["hasNextPage"]:
            break
        after = orders["pageInfo"]["endCursor"]
    assert len(seen) == ORDERS_EACH == len(set(seen))


@pytest.mark.parametrize("path", ["order", "address", "ledger", "timeline"])
async def test_children_lead_back_to_customer(gql, engine, path):
    customer = (await seed_customers(engine, 1))[0]
    field = {
        "order": "orders(first: 1) { edges { node { customer { number } } } }",
        "address": "addresses { customer { number } }",
        "ledger": "ledgerTransactions(first: 1) { edges { node { customer { number } } } }",
        "timeline": "timeline(first: 1) { edges { node { customer { number } } } }",
    }[path]
    data = await gql.data(f'{{ customer(number: "{customer.number}") {{ {field} }} }}')
    found = list(_customers_in(data["customer"]))
    assert found and all(c == {"number": customer.number} for c in found), data


def _customers_in(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "customer":
                yield item
            else:
                yield from _customers_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _customers_in(item)
