"""Orders and their lines."""

from collections.abc import Sequence

from sqlalchemy import Select

from models import Order, OrderLine
from resolvers.children import visible
from resolvers.context import Context
from resolvers.loading import one_per_key
from resolvers.pagination import Ordering
from resolvers.relations import ById, ChildConnection, ChildList, ForeignObject
from resolvers.scope import ScopeKind

order = Order.__table__
order_line = OrderLine.__table__
NEWEST_FIRST = Ordering((order.c.placed_at, order.c.id), descending=True)
# Customer.orders, declared once (resolvers/relations.py): loader and compiled SQL.
ORDERS = ChildConnection(order, NEWEST_FIRST)
ORDER_ROWS = ById(order, lambda ctx: visible(ctx, order), ScopeKind.CHILD)
# LedgerTransaction.order, declared once.
LEDGER_ORDER = ForeignObject(ORDER_ROWS, "order_id")
# An order has at most MAX_LINES lines: createOrder refuses more, and Order.lines is capped
# at it in SQL on both read paths, so the cost limit counts a real bound.
MAX_LINES = 500


async def order_by_number(ctx: Context, number: str):
    rows = await ctx.rows(visible(ctx, order).where(order.c.number == number))
    return rows[0] if rows else None


def visible_lines(ctx: Context) -> Select:
    # Lines carry no currency of their own: it is the order's, joined in the same statement.
    return (
        visible(ctx, order_line)
        .add_columns(order.c.currency)
        .join(order, order.c.id == order_line.c.order_id)
    )


async def lines_by_id(ctx: Context, keys: Sequence[int]) -> list:
    return await one_per_key(ctx, visible_lines(ctx), order_line.c.id, keys)


# As placed: the one ordering of Order.lines (both read paths).
LINE_ORDER = (order_line.c.position, order_line.c.id)


# Order.lines, declared once (resolvers/relations.py); a line's currency is its order's.
LINES = ChildList(
    order_line,
    order_line.c.order_id,
    LINE_ORDER,
    lambda ctx: visible(ctx, order_line),
    inherit={"currency": order.c.currency},
    limit=MAX_LINES,
)
