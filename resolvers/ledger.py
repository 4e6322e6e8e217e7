"""Ledger reads: entries newest first, and balances per currency."""

from models import LedgerTransaction
from resolvers.children import visible
from resolvers.pagination import Ordering
from resolvers.relations import ChildConnection, LatestPer

ledger = LedgerTransaction.__table__
NEWEST_FIRST = Ordering((ledger.c.id,), descending=True)
# Customer.ledgerTransactions, declared once (resolvers/relations.py).
ENTRIES = ChildConnection(ledger, NEWEST_FIRST)


# Customer.balances, declared once (resolvers/relations.py): the latest balance_after per
# currency, at most one per ISO 4217 currency (ledger writes validate the code).
BALANCES = LatestPer(
    ledger,
    ledger.c.customer_id,
    per=(ledger.c.currency,),
    newest=(ledger.c.id.desc(),),
    columns={"amount": ledger.c.balance_after},
    visible=lambda ctx: visible(ctx, ledger),
    bound=180,
)
