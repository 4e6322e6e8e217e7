"""The request shapes `bench.compare` times, each written for this service and for
PostGraphile v5 (its generated schema over the same database), with a normaliser per side
that maps both answers onto one plain structure so `difference` can tell whether they hold
the same data.

    a  heavy page   50 customers by name: 10 latest orders with lines and totals, all
                    addresses, 10 latest ledger entries (about 225 KB of JSON)
    b  light page   50 customers: 4 scalars, 10 orders' number/status/placedAt, addresses'
                    city/postal code, 10 ledger entries' kind/amount
    c  mobile view  one customer by id with its 5 latest orders and their lines
    d  search       last-name prefix + country, at most 50 matches
    e  create       customerCreate; the peer's generated createCustomer
    f  transfer     ledgerTransfer between two of 1,000 customers; the peer has none

Money is a Decimal, timestamps are instants, addresses are compared as a set: the two
services print them differently and order addresses differently; everything else must be
equal, in the same order.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# Created customers carry this in their email, so a run can remove what it wrote.
CREATED_EMAIL = "cgbench-{n}@example.com"
CREATED_LIKE = "cgbench-%@example.com"
# wrk's script replaces this, in a request body, with a number unique to the run.
COUNTER = "__N__"

# PostGraphile has no prefix or related-row filter (its `condition` is equality on indexed
# columns): the way its users add a search is a STABLE SQL function, which it exposes as a
# root connection field. This one is our search's WHERE, word for word (resolvers/search.py),
# for a prefix of 4 characters or more, as every prefix the bench draws is.
PEER_SEARCH_FUNCTION = r"""
CREATE OR REPLACE FUNCTION bench_customer_search(last_name_prefix text, country text)
RETURNS SETOF customer LANGUAGE sql STABLE AS $$
  SELECT c.* FROM customer c
  WHERE c.status IN ('ACTIVE', 'ARCHIVED')
    AND cg_fold(c.last_name) ~>=~ cg_fold(btrim(last_name_prefix))
    AND cg_fold(c.last_name) ~<~ cg_prefix_end(cg_fold(btrim(last_name_prefix)))
    AND c.id IN (SELECT a.customer_id FROM address a WHERE a.country = upper(btrim(country)))
  ORDER BY c.sort_name, c.id
$$
"""


def gid(type_name: str, pk: int) -> str:
    """A Relay global ID as this service prints it (resolvers/global_ids.py)."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _money(value: Any) -> Decimal:
    """Ours: {"amount": "1.00", ...}; the peer: "1.00"."""
    return Decimal(value["amount"] if isinstance(value, dict) else value)


# ---------------------------------------------------------------------------------------
# a: the heavy page

HEAVY_OURS = """query Page($after: String) {
  customers(first: 50, after: $after, orderBy: {field: NAME}) {
    pageInfo { hasNextPage endCursor }
    nodes {
      number firstName lastName companyName email
      orders(first: 10) { nodes {
        number status placedAt
        subtotal { amount currency } taxTotal { amount } total { amount currency }
        lines { position sku description quantity unitPrice { amount } lineTotal { amount } }
      } }
      addresses { kind isDefault line1 city postalCode country }
      ledgerTransactions(first: 10) { nodes {
        kind memo createdAt amount { amount currency } balanceAfter { amount }
      } }
    }
  }
}"""

HEAVY_PEER = """query Page($after: Cursor) {
  allCustomers(first: 50, after: $after, orderBy: [SORT_NAME_ASC, PRIMARY_KEY_ASC]) {
    pageInfo { hasNextPage endCursor }
    nodes {
      number firstName lastName companyName email
      ordersByCustomerId(first: 10, orderBy: [PLACED_AT_DESC, PRIMARY_KEY_DESC]) { nodes {
        number status placedAt subtotal taxTotal total currency
        orderLinesByOrderId(orderBy: [POSITION_ASC, PRIMARY_KEY_ASC]) { nodes {
          position sku description quantity unitPrice lineTotal
        } }
      } }
      addressesByCustomerId(orderBy: PRIMARY_KEY_ASC) { nodes {
        kind isDefault line1 city postalCode country
      } }
      ledgerTransactionsByCustomerId(first: 10, orderBy: PRIMARY_KEY_DESC) { nodes {
        kind memo createdAt amount currency balanceAfter
      } }
    }
  }
}"""

_ADDRESS = ("kind", "isDefault", "line1", "city", "postalCode", "country")


def _heavy(c: dict, orders: list, lines: Callable, addresses: list, ledger: list) -> dict:
    def currency(x: dict, key: str) -> str:
        return x[key]["currency"] if isinstance(x[key], dict) else x["currency"]

    return {
        "customer": [c[k] for k in ("number", "firstName", "lastName", "companyName", "email")],
        "orders": [
            [
                o["number"],
                o["status"],
                _ts(o["placedAt"]),
                _money(o["subtotal"]),
                _money(o["taxTotal"]),
                _money(o["total"]),
                currency(o, "total"),
                [
                    [
                        li["position"],
                        li["sku"],
                        li["description"],
                        li["quantity"],
                        _money(li["unitPrice"]),
                        _money(li["lineTotal"]),
                    ]
                    for li in lines(o)
                ],
            ]
            for o in orders
        ],
        "addresses": sorted(tuple(a[k] for k in _ADDRESS) for a in addresses),
        "ledger": [
            [
                t["kind"],
                t["memo"],
                _ts(t["createdAt"]),
                _money(t["amount"]),
                currency(t, "amount"),
                _money(t["balanceAfter"]),
            ]
            for t in ledger
        ],
    }


def heavy_ours(data: dict) -> list:
    return [
        _heavy(
            c,
            c["orders"]["nodes"],
            lambda o: o["lines"],
            c["addresses"],
            c["ledgerTransactions"]["nodes"],
        )
        for c in data["customers"]["nodes"]
    ]


def heavy_peer(data: dict) -> list:
    return [
        _heavy(
            c,
            c["ordersByCustomerId"]["nodes"],
            lambda o: o["orderLinesByOrderId"]["nodes"],
            c["addressesByCustomerId"]["nodes"],
            c["ledgerTransactionsByCustomerId"]["nodes"],
        )
        for c in data["allCustomers"]["nodes"]
    ]


# ---------------------------------------------------------------------------------------
# b: the light page

LIGHT_OURS = """query Light($after: String) {
  customers(first: 50, after: $after, orderBy: {field: NAME}) {
    nodes {
      number firstName lastName email
      orders(first: 10) { nodes { number status placedAt } }
      addresses { city postalCode }
      ledgerTransactions(first: 10) { nodes { kind amount { amount } } }
    }
  }
}"""

LIGHT_PEER = """query Light($after: Cursor) {
  allCustomers(first: 50, after: $after, orderBy: [SORT_NAME_ASC, PRIMARY_KEY_ASC]) {
    nodes {
      number firstName lastName email
      ordersByCustomerId(first: 10, orderBy: [PLACED_AT_DESC, PRIMARY_KEY_DESC]) {
        nodes { number status placedAt }
      }
      addressesByCustomerId(orderBy: PRIMARY_KEY_ASC) { nodes { city postalCode } }
      ledgerTransactionsByCustomerId(first: 10, orderBy: PRIMARY_KEY_DESC) {
        nodes { kind amount }
      }
    }
  }
}"""


def _light(c: dict, orders: list, addresses: list, ledger: list) -> dict:
    return {
        "customer": [c[k] for k in ("number", "firstName", "lastName", "email")],
        "orders": [[o["number"], o["status"], _ts(o["placedAt"])] for o in orders],
        "addresses": sorted((a["city"], a["postalCode"]) for a in addresses),
        "ledger": [[t["kind"], _money(t["amount"])] for t in ledger],
    }


def light_ours(data: dict) -> list:
    return [
        _light(c, c["orders"]["nodes"], c["addresses"], c["ledgerTransactions"]["nodes"])
        for c in data["customers"]["nodes"]
    ]


def light_peer(data: dict) -> list:
    return [
        _light(
            c,
            c["ordersByCustomerId"]["nodes"],
            c["addressesByCustomerId"]["nodes"],
            c["ledgerTransactionsByCustomerId"]["nodes"],
        )
        for c in data["allCustomers"]["nodes"]
    ]


# ---------------------------------------------------------------------------------------
# c: one customer, as a mobile app shows it

MOBILE_OURS = """query Mobile($id: ID!) {
  customer(by: {id: $id}) {
    number firstName lastName email phone status
    orders(first: 5) { nodes {
      number status placedAt total { amount currency }
      lines { position sku description quantity lineTotal { amount } }
    } }
  }
}"""

MOBILE_PEER = """query Mobile($rowId: BigInt!) {
  customerByRowId(rowId: $rowId) {
    number firstName lastName email phone status
    ordersByCustomerId(first: 5, orderBy: [PLACED_AT_DESC, PRIMARY_KEY_DESC]) { nodes {
      number status placedAt total currency
      orderLinesByOrderId(orderBy: [POSITION_ASC, PRIMARY_KEY_ASC]) {
        nodes { position sku description quantity lineTotal }
      }
    } }
  }
}"""


def _mobile(c: dict | None, orders: Callable, lines: Callable) -> dict | None:
    if c is None:
        return None
    return {
        "customer": [c[k] for k in ("number", "firstName", "lastName", "email", "phone", "status")],
        "orders": [
            [
                o["number"],
                o["status"],
                _ts(o["placedAt"]),
                _money(o["total"]),
                o["total"]["currency"] if isinstance(o["total"], dict) else o["currency"],
                [
                    [li[k] for k in ("position", "sku", "description", "quantity")]
                    + [_money(li["lineTotal"])]
                    for li in lines(o)
                ],
            ]
            for o in orders(c)
        ],
    }


def mobile_ours(data: dict) -> dict | None:
    return _mobile(data["customer"], lambda c: c["orders"]["nodes"], lambda o: o["lines"])


def mobile_peer(data: dict) -> dict | None:
    return _mobile(
        data["customerByRowId"],
        lambda c: c["ordersByCustomerId"]["nodes"],
        lambda o: o["orderLinesByOrderId"]["nodes"],
    )


# ---------------------------------------------------------------------------------------
# d: search by last-name prefix and country

SEARCH_OURS = """query Search($prefix: String!, $country: String!) {
  customerSearch(filter: {lastName: $prefix, nameMatch: PREFIX, country: $country}, first: 50) {
    __typename
    ... on CustomerSearchMatches { customers { nodes { number firstName lastName email } } }
  }
}"""

SEARCH_PEER = """query Search($prefix: String!, $country: String!) {
  benchCustomerSearch(lastNamePrefix: $prefix, country: $country, first: 50) {
    nodes { number firstName lastName email }
  }
}"""

_PERSON = ("number", "firstName", "lastName", "email")


def search_ours(data: dict) -> Any:
    found = data["customerSearch"]
    if found["__typename"] != "CustomerSearchMatches":
        return {"asked to refine": found["__typename"]}  # never equal to the peer's list
    return [[c[k] for k in _PERSON] for c in found["customers"]["nodes"]]


def search_peer(data: dict) -> list:
    return [[c[k] for k in _PERSON] for c in data["benchCustomerSearch"]["nodes"]]


# ---------------------------------------------------------------------------------------
# e: create a customer

CREATE_OURS = """mutation Create($input: CustomerCreateInput!) {
  customerCreate(input: $input) {
    customer { firstName lastName email kind status }
    userErrors { field code message }
  }
}"""

CREATE_PEER = """mutation Create($input: CreateCustomerInput!) {
  createCustomer(input: $input) { customer { firstName lastName email kind status } }
}"""


def create_input(n: str) -> dict:
    """The new customer's fields; `n` makes the email unique (wrk puts a counter there)."""
    return {"firstName": "Bench", "lastName": "Zcreated", "email": CREATED_EMAIL.format(n=n)}


def _created(c: dict | None) -> list | None:
    if c is None:
        return None
    # The email differs by construction (each side writes its own): compare its form.
    local, _, domain = c["email"].partition("@")
    return [c["firstName"], c["lastName"], local.split("-")[0], domain, c["kind"], c["status"]]


def create_ours(data: dict) -> Any:
    payload = data["customerCreate"]
    return payload["userErrors"] or _created(payload["customer"])


def create_peer(data: dict) -> Any:
    return _created(data["createCustomer"]["customer"])


# ---------------------------------------------------------------------------------------
# f: a transfer between two customers (ours only)

TRANSFER_OURS = """mutation Transfer($input: LedgerTransferInput!) {
  ledgerTransfer(input: $input) {
    transactions { kind amount { amount currency } }
    userErrors { field code message }
  }
}"""

TRANSFER_AMOUNT = "1.00"


def transfer_input(source: int, target: int) -> dict:
    return {
        "fromCustomerId": gid("Customer", source),
        "toCustomerId": gid("Customer", target),
        "amount": TRANSFER_AMOUNT,
        "currency": "EUR",
        "allowOverdraft": True,  # seeded balances are debts: no credit to move otherwise
        "memo": "bench transfer",
    }


def transfer_ours(data: dict) -> Any:
    payload = data["ledgerTransfer"]
    return payload["userErrors"] or [
        [t["kind"], _money(t["amount"]), t["amount"]["currency"]] for t in payload["transactions"]
    ]


# What a transfer of TRANSFER_AMOUNT must record: out of one account, into the other.
TRANSFER_EXPECTED = [
    ["TRANSFER_OUT", Decimal(TRANSFER_AMOUNT), "EUR"],
    ["TRANSFER_IN", -Decimal(TRANSFER_AMOUNT), "EUR"],
]


# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    key: str
    title: str
    ours: str
    peer: str | None  # None: the peer has no equivalent, only ours is timed
    normal_ours: Callable[[dict], Any]
    normal_peer: Callable[[dict], Any] | None
    write: bool = False
    peer_note: str = ""


SHAPES = {
    s.key: s
    for s in (
        Shape("a", "heavy page", HEAVY_OURS, HEAVY_PEER, heavy_ours, heavy_peer),
        Shape("b", "light page", LIGHT_OURS, LIGHT_PEER, light_ours, light_peer),
        Shape("c", "mobile view", MOBILE_OURS, MOBILE_PEER, mobile_ours, mobile_peer),
        Shape(
            "d",
            "search",
            SEARCH_OURS,
            SEARCH_PEER,
            search_ours,
            search_peer,
            peer_note="peer: a SQL function (bench_customer_search) it exposes as a field",
        ),
        Shape(
            "e",
            "customerCreate",
            CREATE_OURS,
            CREATE_PEER,
            create_ours,
            create_peer,
            write=True,
            peer_note="peer: its generated createCustomer (a bare INSERT: no validation, "
            "no timeline event)",
        ),
        Shape(
            "f",
            "ledgerTransfer",
            TRANSFER_OURS,
            None,
            transfer_ours,
            None,
            write=True,
            peer_note="peer: none (its generated createLedgerTransaction inserts one row and"
            " computes no balance; no two-sided transfer)",
        ),
    )
}


def difference(ours: Any, peer: Any, path: str = "") -> str | None:
    """Where two normalised answers first differ (a path and both values), or None."""
    if isinstance(ours, (list, tuple)) and isinstance(peer, (list, tuple)):
        if len(ours) != len(peer):
            return f"{path or '.'}: {len(ours)} items vs {len(peer)}"
        for i, (x, y) in enumerate(zip(ours, peer, strict=True)):
            if found := difference(x, y, f"{path}[{i}]"):
                return found
        return None
    if isinstance(ours, dict) and isinstance(peer, dict):
        if ours.keys() != peer.keys():
            return f"{path or '.'}: keys {sorted(ours)} vs {sorted(peer)}"
        for k in ours:
            if found := difference(ours[k], peer[k], f"{path}.{k}"):
                return found
        return None
    return None if ours == peer else f"{path or '.'}: {ours!r} vs {peer!r}"


# ---------------------------------------------------------------------------------------
# parameters, drawn from the database (the same rows for both sides)

Params = list[tuple[dict, dict | None]]  # (our variables, the peer's)


async def mobile_params(engine: AsyncEngine, count: int, rng: random.Random) -> Params:
    async with engine.connect() as conn:
        ids = (
            await conn.execute(text("SELECT id FROM customer WHERE status <> 'MERGED' ORDER BY id"))
        ).scalars()
        ids = list(ids)
    chosen = rng.sample(ids, min(count, len(ids)))
    return [({"id": gid("Customer", i)}, {"rowId": str(i)}) for i in chosen]


async def search_params(engine: AsyncEngine, count: int, rng: random.Random) -> Params:
    """(prefix, country) pairs that match between 1 and 50 live customers: for each name
    and country, the shortest folded prefix that narrows it to 50 or fewer."""
    sql = text(
        """
        WITH person AS (
          SELECT DISTINCT c.id, cg_fold(c.last_name) AS name, a.country
          FROM customer c JOIN address a ON a.customer_id = c.id
          WHERE c.status IN ('ACTIVE', 'ARCHIVED') AND c.last_name IS NOT NULL
        ), prefixes AS (
          SELECT left(name, k) AS prefix, country, count(*) AS n
          FROM person, generate_series(4, 12) k  -- the peer function takes 4 or more
          WHERE length(name) >= k AND left(name, k) !~ '[%_\\\\]'
          GROUP BY 1, 2
        )
        SELECT DISTINCT ON (left(prefix, length(prefix) - 1), country) prefix, country, n
        FROM prefixes WHERE n <= 50
        ORDER BY left(prefix, length(prefix) - 1), country, n DESC, prefix
        """
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(sql)).all()
    chosen = rng.sample(rows, min(count, len(rows)))
    return [({"prefix": p, "country": c}, {"prefix": p, "country": c}) for p, c, _ in chosen]


async def transfer_params(engine: AsyncEngine, count: int, rng: random.Random) -> Params:
    """Transfers between random pairs of the first 1,000 live customers."""
    async with engine.connect() as conn:
        ids = list(
            (
                await conn.execute(
                    text("SELECT id FROM customer WHERE status <> 'MERGED' ORDER BY id LIMIT 1000")
                )
            ).scalars()
        )
    pairs = []
    for _ in range(count):
        source, target = rng.sample(ids, 2)
        pairs.append(({"input": transfer_input(source, target)}, None))
    return pairs


def create_params() -> Params:
    """One body per side, with the counter for wrk to fill in."""
    ours = create_input(COUNTER)
    return [({"input": ours}, {"input": {"customer": ours}})]


async def install_peer_search(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql(PEER_SEARCH_FUNCTION)


async def remove_created(engine: AsyncEngine) -> int:
    """Delete the customers earlier create slices wrote (they have no ledger rows)."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text("DELETE FROM customer WHERE email LIKE :like"), {"like": CREATED_LIKE}
        )
        return result.rowcount
