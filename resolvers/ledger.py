"""Ledger reads: entries newest first, and balances per currency."""

from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import distinct_on

from models import LedgerTransaction
from resolvers.children import visible
from resolvers.context import Context
from resolvers.loading import many_per_key
from resolvers.pagination import Ordering
from resolvers.relations import ChildConnection

ledger = LedgerTransaction.__table__
NEWEST_FIRST = Ordering((ledger.c.id,), descending=True)
# Customer.ledgerTransactions, declared once (resolvers/relations.py).
ENTRIES = ChildConnection(ledger, NEWEST_FIRST)


async def balances_by_customer(ctx: Context, keys: Sequence[int]) -> list:
    """The latest balance_after per (customer, currency): DISTINCT ON walks the index."""
    stmt = (
        visible(ctx, ledger)
        .with_only_columns(ledger.c.customer_id, ledger.c.currency, ledger.c.balance_after)
        .ext(distinct_on(ledger.c.customer_id, ledger.c.currency))
        .order_by(ledger.c.customer_id, ledger.c.currency, ledger.c.id.desc())
    )
    return await many_per_key(ctx, stmt, ledger.c.customer_id, keys)
