"""A fast bench data set: N customers with orders + lines, addresses and ledger entries.

Plain INSERT ... SELECT generate_series (seconds for 100,000 customers), deterministic.
Used by `python -m bench.compare` when the project's own seeder is not at hand.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

FIRST = (
    "ARRAY['Ada','Alan','Grace','Edsger','Barbara','Donald','Frances','John','Leslie',"
    "'Margaret','Niklaus','Radia','Ken','Dennis','Hedy','Katherine','Tim','Vint','Anita','Guido']"
)

STATEMENTS = [
    "INSERT INTO sales_channel (code, name) VALUES ('web', 'Web'), ('store', 'Store')"
    " ON CONFLICT DO NOTHING",
    "INSERT INTO account (name, billing_contact_name, billing_line1, billing_city,"
    " billing_postal_code, billing_country)"
    " SELECT 'Account ' || g, 'Billing ' || g, g || ' Rue de la Paix', 'Lyon', '69001', 'FR'"
    " FROM generate_series(1, :accounts) g",
    f"INSERT INTO customer (first_name, last_name, email, kind, company_name, account_id, note)"
    f" SELECT ({FIRST})[1 + g % 20], 'Last' || lpad(((g * 7919) % :n)::text, 6, '0'),"
    " 'c' || g || '@bench.example',"
    " (CASE WHEN g % 10 = 0 THEN 'BUSINESS' ELSE 'INDIVIDUAL' END)::customer_kind,"
    " CASE WHEN g % 10 = 0 THEN 'Company ' || g END,"
    " CASE WHEN g % 3 = 0 THEN (SELECT min(id) FROM account) + g % :accounts END,"
    " CASE WHEN g % 5 = 0 THEN 'note ' || g END"
    " FROM generate_series(1, :n) g",
    "INSERT INTO customer_sales_channel (customer_id, sales_channel_id)"
    " SELECT c.id, s.id FROM customer c, sales_channel s WHERE s.code = 'web'",
    "INSERT INTO address (customer_id, kind, is_default, line1, city, postal_code, country)"
    " SELECT c.id, k.kind::address_kind, true, (c.id % 200) || ' Rue Mercière', 'Lyon',"
    " '6900' || (c.id % 9), 'FR'"
    " FROM customer c CROSS JOIN (VALUES ('SHIPPING'), ('BILLING')) k(kind)",
    "INSERT INTO orders (customer_id, source, status, currency, subtotal, tax_total,"
    " shipping_total, total, placed_at, sales_channel_id)"
    " SELECT c.id, 'CHECKOUT', 'PAID', 'EUR', s.sub, round(s.sub * 0.2, 2), 5.00,"
    " s.sub + round(s.sub * 0.2, 2) + 5.00,"
    " timestamptz '2024-01-01 00:00:00+00' + j * interval '9 days'"
    " + (c.id % 86400) * interval '1 s',"
    " (SELECT id FROM sales_channel WHERE code = 'web')"
    " FROM customer c CROSS JOIN LATERAL generate_series(1, c.id % 16) j"
    " CROSS JOIN LATERAL (SELECT (2 * ((c.id * j) % 90 + 10))::numeric(14, 2) AS sub) s",
    "INSERT INTO order_line (order_id, customer_id, position, sku, description, quantity,"
    " unit_price, line_total)"
    " SELECT o.id, o.customer_id, p, 'SKU-' || p, 'Item ' || p, 1, o.subtotal / 2, o.subtotal / 2"
    " FROM orders o CROSS JOIN generate_series(1, 2) p",
    "INSERT INTO ledger_transaction (customer_id, kind, amount, currency, balance_after, memo)"
    " SELECT c.id, 'CHARGE', a.amt, 'EUR', a.amt * k, 'charge ' || k"
    " FROM customer c CROSS JOIN LATERAL generate_series(1, c.id % 14) k"
    " CROSS JOIN LATERAL (SELECT (5 + c.id % 7)::numeric(14, 2) AS amt) a",
]


async def customer_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM customer"))).scalar_one()


async def seed(engine: AsyncEngine, n: int = 100_000) -> None:
    """Fill an empty database (callers check `customer_count` first)."""
    async with engine.begin() as conn:
        for sql in STATEMENTS:
            await conn.execute(text(sql), {"n": n, "accounts": max(1, n // 100)})
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("ANALYZE")
