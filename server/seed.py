"""Deterministic, realistic demo data, bulk-loaded with COPY.

`customer-graph seed --customers N [--seed S] [--reset]`. The same seed gives the same data.
Customers are generated and copied in chunks, so memory stays flat even for 1,000,000.
Every ledger balance_after is the exact running balance per (customer, currency); order
totals satisfy the table's checks; a few customers share a phone and a name with an
earlier one (planted duplicates for the duplicate report).
"""

from __future__ import annotations

import asyncio
import functools
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import phonenumbers
from sqlalchemy import text
from tqdm import tqdm

from server.database import make_engine

CHUNK = 5_000
T0 = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_DAYS = 1400
CENT = Decimal("0.01")

FIRST = (
    "Ada Alan Grace Linus Margaret Dennis Barbara Ken Frances Edsger Radia John Hedy "
    "Tim Katherine Guido Sophie Yukihiro Anita Bjarne Jean José Zoë Émile Søren Ingrid "
    "Mateo Aiko Priya Omar Lucía Noah Chloé Björn Fatima Diego Hana Lars Amara Felix"
).split()
LAST = (
    "Lovelace Turing Hopper Torvalds Hamilton Ritchie Liskov Thompson Allen Dijkstra "
    "Perlman McCarthy Lamarr Berners-Lee Johnson Rossum Wilson Matsumoto Borg Stroustrup "
    "Sammet García Müller Dupont Kierkegaard Svensson Rossi Tanaka Patel Haddad López "
    "Smith Martin Andersson Okafor Schmidt Nguyen Kowalski O'Brien Jensen"
).split()
COMPANY = (
    "Acme Globex Initech Umbrella Hooli Stark Wayne Tyrell Cyberdyne Soylent Vandelay "
    "Wonka Gringotts Aperture Monarch Oscorp Pied Piper Dunder Prestige"
).split()
SUFFIX = ("Corp", "Ltd", "GmbH", "SARL", "Pty Ltd", "Inc", "& Co")

# country: (currency, tax rate, [(region, city, postal code pattern, phone prefix)])
COUNTRIES = {
    "US": (
        "USD",
        Decimal("0.0725"),
        [
            ("CA", "San Francisco", "941##", "+1415"),
            ("NY", "New York", "100##", "+1212"),
            ("TX", "Austin", "787##", "+1512"),
            ("WA", "Seattle", "981##", "+1206"),
        ],
    ),
    "CA": (
        "CAD",
        Decimal("0.13"),
        [("ON", "Toronto", "M5V #A#", "+1416"), ("BC", "Vancouver", "V6B #C#", "+1604")],
    ),
    "GB": (
        "GBP",
        Decimal("0.20"),
        [("ENG", "London", "SW1A #AA", "+4420"), ("SCT", "Edinburgh", "EH1 #YZ", "+44131")],
    ),
    "DE": (
        "EUR",
        Decimal("0.19"),
        [("BE", "Berlin", "101##", "+4930"), ("BY", "München", "803##", "+4989")],
    ),
    "FR": (
        "EUR",
        Decimal("0.20"),
        [("IDF", "Paris", "750##", "+331"), ("ARA", "Lyon", "6900#", "+334")],
    ),
    "AU": (
        "AUD",
        Decimal("0.10"),
        [("NSW", "Sydney", "20##", "+612"), ("VIC", "Melbourne", "30##", "+613")],
    ),
}
COUNTRY_CODES = list(COUNTRIES)
PHONE_DIGITS = {
    "+1415": 7,
    "+1212": 7,
    "+1512": 7,
    "+1206": 7,
    "+1416": 7,
    "+1604": 7,
    "+4420": 8,
    "+44131": 7,
    "+4930": 8,
    "+4989": 8,
    "+331": 8,
    "+334": 8,
    "+612": 8,
    "+613": 8,
}
CHANNELS = [
    ("web", "Web shop"),
    ("marketplace", "Marketplace"),
    ("retail", "Retail stores"),
    ("wholesale", "Wholesale"),
    ("phone", "Phone orders"),
]
REPS = [
    ("Dana", "Scully"),
    ("Fox", "Mulder"),
    ("Walter", "Skinner"),
    ("Monica", "Reyes"),
    ("John", "Doggett"),
    ("Jeffrey", "Spender"),
]
FIELDS = [
    ("tier", "Tier", "SELECT", ["gold", "silver", "bronze"]),
    ("lifetime_value", "Lifetime value", "NUMBER", None),
    ("newsletter", "Newsletter", "BOOLEAN", None),
    ("first_contact", "First contact", "DATE", None),
    ("source_note", "Source note", "TEXT", None),
]
PRODUCTS = [
    ("TEE-001", "Organic cotton tee", "19.90"),
    ("MUG-002", "Enamel mug", "12.50"),
    ("BAG-003", "Canvas tote", "24.00"),
    ("HAT-004", "Wool beanie", "29.95"),
    ("SOC-005", "Merino socks", "15.00"),
    ("JKT-006", "Rain jacket", "129.00"),
    ("BTL-007", "Steel bottle", "32.00"),
    ("NBK-008", "Dot-grid notebook", "9.75"),
]


@dataclass
class Chunk:
    """Rows of one chunk of customers, per table, in COPY column order."""

    rows: dict[str, list[tuple]] = field(default_factory=lambda: {t: [] for t in COLUMNS})


COLUMNS = {
    "account": (
        "id",
        "number",
        "name",
        "billing_contact_name",
        "billing_email",
        "billing_line1",
        "billing_city",
        "billing_region",
        "billing_postal_code",
        "billing_country",
    ),
    "payment_method": (
        "account_id",
        "processor",
        "token",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "is_default",
    ),
    "customer": (
        "id",
        "number",
        "kind",
        "first_name",
        "last_name",
        "company_name",
        "email",
        "phone",
        "reference_id",
        "account_id",
        "sales_rep_id",
        "tax_status",
        "tax_code",
        "note",
        "created_at",
        "updated_at",
        "tags",
        "email_marketing_state",
        "email_marketing_opt_in_level",
        "email_marketing_updated_at",
        "email_marketing_source",
    ),
    "customer_sales_channel": ("customer_id", "sales_channel_id"),
    "address": (
        "customer_id",
        "kind",
        "is_default",
        "name",
        "line1",
        "city",
        "region",
        "postal_code",
        "country",
        "phone",
    ),
    "orders": (
        "id",
        "number",
        "customer_id",
        "status",
        "source",
        "sales_channel_id",
        "currency",
        "subtotal",
        "tax_total",
        "shipping_total",
        "total",
        "amount_paid",
        "shipping_address",
        "placed_at",
    ),
    "order_line": (
        "order_id",
        "customer_id",
        "position",
        "sku",
        "description",
        "quantity",
        "unit_price",
        "tax_rate",
        "line_total",
    ),
    "ledger_transaction": (
        "customer_id",
        "kind",
        "amount",
        "currency",
        "balance_after",
        "order_id",
        "memo",
        "created_at",
    ),
    "custom_field_value": (
        "customer_id",
        "definition_id",
        "text_value",
        "number_value",
        "boolean_value",
        "date_value",
    ),
    "tax_exemption_certificate": (
        "customer_id",
        "number",
        "country",
        "region",
        "reason",
        "valid_from",
        "valid_to",
    ),
    "timeline_event": ("customer_id", "kind", "occurred_at", "summary", "data"),
}
TABLES = [*COLUMNS, "sales_channel", "custom_field_definition", "app_user", "api_token"]


def _postal(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in pattern)


def _phone(rng: random.Random, prefix: str) -> str:
    """A number the write side accepts (phonenumbers' rules): demo data re-imports as is."""
    digits = PHONE_DIGITS[prefix]
    while True:
        first = str(rng.randrange(2, 10))  # NANP exchanges and most subscriber numbers avoid 0/1
        number = prefix + first + "".join(str(rng.randrange(10)) for _ in range(digits - 1))
        if _valid_phone(number):
            return number


@functools.cache
def _valid_phone(number: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.parse(number))


class Generator:
    def __init__(self, seed: int, reps: list[int], channels: list[int], fields: list[int]):
        self.rng = random.Random(seed)
        self.reps, self.channels, self.fields = reps, channels, fields
        self.order_id = 0
        self.account_id = 0
        self.recent: list[tuple] = []  # (first, last, phone) to plant duplicates

    def customer(self, cid: int, chunk: Chunk) -> None:
        rng = self.rng
        rows = chunk.rows
        country = rng.choice(COUNTRY_CODES)
        currency, rate, places = COUNTRIES[country]
        region, city, postal, prefix = rng.choice(places)
        business = rng.random() < 0.2
        first, last = rng.choice(FIRST), rng.choice(LAST)
        phone = _phone(rng, prefix)
        if cid % 200 == 0 and self.recent:  # planted duplicate: same person typed again
            first, last, phone = rng.choice(self.recent)
        else:
            self.recent = ([*self.recent, (first, last, phone)])[-50:]
        company = f"{rng.choice(COMPANY)} {rng.choice(SUFFIX)}" if business else None
        email = f"{first}.{last}.{cid}@example.{country.lower()}".lower().replace("'", "")
        created = T0 + timedelta(days=rng.randrange(SPAN_DAYS), seconds=rng.randrange(86400))
        account_id = None
        if business:
            self.account_id += 1
            account_id = self.account_id
            rows["account"].append(
                (
                    account_id,
                    f"A-{account_id:06d}",
                    company,
                    f"{first} {last}",
                    f"billing.{cid}@example.{country.lower()}",
                    f"{rng.randrange(1, 999)} Market St",
                    city,
                    region,
                    _postal(rng, postal),
                    country,
                )
            )
            for k in range(rng.randrange(1, 3)):
                rows["payment_method"].append(
                    (
                        account_id,
                        "stripe",
                        f"tok_{cid}_{k}_{rng.getrandbits(40):010x}",
                        rng.choice(("visa", "mastercard", "amex")),
                        f"{rng.randrange(10000):04d}",
                        rng.randrange(1, 13),
                        rng.randrange(2026, 2032),
                        k == 0,
                    )
                )
        exempt = rng.random() < 0.05
        # Tags and consent follow from the id, not the random stream, so the rest of the
        # data stays what it was before they existed.
        tags = sorted(
            (["VIP"] if cid % 23 == 0 else [])
            + (["wholesale"] if business else [])
            + (["newsletter"] if cid % 3 == 0 else [])
            + ([f"fair-{2024 + cid % 3}"] if cid % 11 == 0 else []),
            key=str.lower,
        )
        subscribed = cid % 3 == 0
        rows["customer"].append(
            (
                cid,
                f"C-{cid:06d}",
                "BUSINESS" if business else "INDIVIDUAL",
                first,
                last,
                company,
                email,
                phone,
                f"LEGACY-{cid * 7919 % 1000003}" if rng.random() < 0.3 else None,
                account_id,
                rng.choice(self.reps),
                "EXEMPT" if exempt else "TAXABLE",
                f"EX-{cid}" if exempt else None,
                None,
                created,
                created,
                tags,
                "SUBSCRIBED" if subscribed else "NOT_SUBSCRIBED",
                ("CONFIRMED" if cid % 2 else "SINGLE") if subscribed else None,
                created if subscribed else None,
                "checkout" if subscribed else None,
            )
        )
        for channel in rng.sample(self.channels, rng.randrange(1, 3)):
            rows["customer_sales_channel"].append((cid, channel))
        address = (
            f"{rng.randrange(1, 999)} {rng.choice(LAST)} Road",
            city,
            region,
            _postal(rng, postal),
            country,
        )
        rows["address"].append((cid, "SHIPPING", True, f"{first} {last}", *address, phone))
        if rng.random() < 0.5:
            rows["address"].append((cid, "BILLING", True, f"{first} {last}", *address, None))
        events = [(cid, "CUSTOMER_CREATED", created, f"Customer {first} {last} created", "{}")]
        if exempt:
            rows["tax_exemption_certificate"].append(
                (
                    cid,
                    f"EX-{cid}",
                    country,
                    region,
                    "Resale",
                    created.date(),
                    created.date() + timedelta(days=rng.choice((365, 730, 1095))),
                )
            )
        for def_id, (_, _, kind, options) in zip(self.fields, FIELDS, strict=True):
            if rng.random() < 0.6:
                value = [None, None, None, None]
                if kind == "SELECT":
                    value[0] = rng.choice(options)
                elif kind == "TEXT":
                    value[0] = rng.choice(("trade fair", "referral", "ads", "newsletter"))
                elif kind == "NUMBER":
                    value[1] = Decimal(rng.randrange(0, 500000)) / 100
                elif kind == "BOOLEAN":
                    value[2] = rng.random() < 0.5
                else:
                    value[3] = date(2015, 1, 1) + timedelta(days=rng.randrange(3650))
                rows["custom_field_value"].append((cid, def_id, *value))
        balance = Decimal(0)
        when = created
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3, 4, 6))):
            when = when + timedelta(days=rng.randrange(1, 60), seconds=rng.randrange(86400))
            self.order_id += 1
            oid = self.order_id
            subtotal = Decimal(0)
            for pos in range(1, rng.randrange(1, 4) + 1):
                sku, name, price = rng.choice(PRODUCTS)
                qty = rng.randrange(1, 4)
                line = Decimal(price) * qty
                subtotal += line
                tax_rate = Decimal(0) if exempt else rate
                rows["order_line"].append(
                    (oid, cid, pos, sku, name, qty, Decimal(price), tax_rate, line)
                )
            tax = Decimal(0) if exempt else (subtotal * rate).quantize(CENT)
            shipping = Decimal("0.00") if subtotal > 50 else Decimal("4.90")
            total = subtotal + tax + shipping
            paid = rng.random() < 0.85
            status = rng.choice(("PAID", "FULFILLED")) if paid else "PLACED"
            rows["orders"].append(
                (
                    oid,
                    f"O-{oid:06d}",
                    cid,
                    status,
                    rng.choice(("CHECKOUT", "CHECKOUT", "ADMIN")),
                    rng.choice(self.channels),
                    currency,
                    subtotal,
                    tax,
                    shipping,
                    total,
                    total if paid else Decimal(0),
                    f'{{"line1": "{address[0]}", "city": "{city}", "country": "{country}"}}',
                    when,
                )
            )
            balance += total
            rows["ledger_transaction"].append(
                (cid, "CHARGE", total, currency, balance, oid, f"Order O-{oid:06d}", when)
            )
            events.append(
                (
                    cid,
                    "ORDER_PLACED",
                    when,
                    f"Order O-{oid:06d} placed",
                    f'{{"order": "O-{oid:06d}", "total": "{total}"}}',
                )
            )
            if paid:
                balance -= total
                paid_at = when + timedelta(minutes=rng.randrange(1, 120))
                rows["ledger_transaction"].append(
                    (cid, "PAYMENT", -total, currency, balance, oid, "Card payment", paid_at)
                )
                events.append(
                    (cid, "PAYMENT_RECEIVED", paid_at, f"Payment of {total} {currency}", "{}")
                )
        # Timelines and ledgers list newest first by id: every later row gets a later time,
        # so the lists read in time order too.
        latest = max(t[2] for t in events)
        if rng.random() < 0.1:
            credit = Decimal(rng.randrange(500, 5000)) / 100
            balance -= credit
            latest += timedelta(days=rng.randrange(0, 30), minutes=rng.randrange(1, 600))
            rows["ledger_transaction"].append(
                (cid, "CREDIT", -credit, currency, balance, None, "Goodwill credit", latest)
            )
        if rng.random() < 0.2:
            latest += timedelta(days=rng.randrange(0, 30), minutes=rng.randrange(1, 600))
            events.append((cid, "NOTE_ADDED", latest, "Called about delivery times", "{}"))
        rows["timeline_event"].extend(events)


async def _copy(raw, chunk: Chunk) -> int:
    n = 0
    for table, rows in chunk.rows.items():
        if rows:
            await raw.copy_records_to_table(table, records=rows, columns=COLUMNS[table])
            n += len(rows)
    return n


async def _reference_data(conn) -> tuple[list[int], list[int], list[int]]:
    reps, channels, fields = [], [], []
    for first, last in REPS:
        reps.append(
            await conn.fetchval(
                "INSERT INTO app_user (email, role, first_name, last_name)"
                " VALUES ($1, 'SALES_REP', $2, $3) RETURNING id",
                f"{first}.{last}@reps.example".lower(),
                first,
                last,
            )
        )
    for code, name in CHANNELS:
        channels.append(
            await conn.fetchval(
                "INSERT INTO sales_channel (code, name) VALUES ($1, $2) RETURNING id", code, name
            )
        )
    for position, (key, label, kind, options) in enumerate(FIELDS):
        fields.append(
            await conn.fetchval(
                "INSERT INTO custom_field_definition (key, label, type, options, position)"
                " VALUES ($1, $2, $3, $4, $5) RETURNING id",
                key,
                label,
                kind,
                options,
                position,
            )
        )
    return reps, channels, fields


RESET = "TRUNCATE " + ", ".join([*TABLES, "duplicate_dismissal"]) + " RESTART IDENTITY CASCADE"


async def seed(url: str, *, customers: int, seed: int = 42, reset: bool = False) -> dict:
    """Load `customers` demo customers (and everything around them) into the database."""
    engine = make_engine(url, pool_size=1)
    started = time.perf_counter()
    try:
        async with engine.connect() as sa_conn:
            raw = (await sa_conn.get_raw_connection()).driver_connection
            # Binary COPY needs a binary codec; citext's wire format is text's (UTF-8 bytes).
            await raw.set_type_codec(
                "citext",
                schema="public",
                format="binary",
                encoder=str.encode,
                decoder=bytes.decode,
            )
            async with raw.transaction():
                if reset:
                    # The ledger refuses TRUNCATE through its trigger; replica mode skips it.
                    await raw.execute("SET LOCAL session_replication_role = replica")
                    await raw.execute(RESET)
                    await raw.execute("SET LOCAL session_replication_role = origin")
                if await raw.fetchval("SELECT count(*) FROM customer"):
                    raise SystemExit("the database already has customers: use --reset")
                gen = Generator(seed, *(await _reference_data(raw)))
                rows = 0
                bar = tqdm(total=customers, unit="customers", file=sys.stderr, disable=None)
                for start in range(1, customers + 1, CHUNK):
                    chunk = Chunk()
                    for cid in range(start, min(start + CHUNK, customers + 1)):
                        gen.customer(cid, chunk)
                    rows += await _copy(raw, chunk)
                    bar.update(len(chunk.rows["customer"]))
                bar.close()
                # Later inserts continue after the seeded ids and numbers.
                for table, seq in (
                    ("customer", "customer_number_seq"),
                    ("account", "account_number_seq"),
                    ("orders", "order_number_seq"),
                ):
                    await raw.execute(
                        f"SELECT setval('{seq}', greatest(1, (SELECT count(*) FROM {table})))"
                    )
                for table in ("customer", "account", "orders"):
                    await raw.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" greatest(1, (SELECT max(id) FROM {table})))"
                    )
            await raw.execute("ANALYZE")
    finally:
        await engine.dispose()
    seconds = time.perf_counter() - started
    summary = {"customers": customers, "rows": rows, "seconds": round(seconds, 1)}
    print(f"seeded {customers:,} customers ({rows:,} rows) in {seconds:.1f} s", file=sys.stderr)
    return summary


async def seed_if_empty(url: str, *, customers: int) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            empty = not (await conn.execute(text("SELECT exists(SELECT 1 FROM customer)"))).scalar()
    finally:
        await engine.dispose()
    if empty:
        await seed(url, customers=customers)


if __name__ == "__main__":  # pragma: no cover - use `customer-graph seed`
    asyncio.run(seed(sys.argv[1], customers=int(sys.argv[2])))
