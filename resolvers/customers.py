"""Customer queries: scoped lookups, keyset-paginated lists, and loaders."""

from __future__ import annotations

import enum
from collections.abc import Callable

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
)

from models import Customer, CustomerSalesChannel
from models.enums import CustomerKind, CustomerStatus
from resolvers.context import Context
from resolvers.pagination import Ordering, Page, PageArgs, paginate
from resolvers.relations import ById, Embedded, ForeignObject
from resolvers.scope import ScopeKind, scope_customers

customer = Customer.__table__
link = CustomerSalesChannel.__table__


class CustomerOrderField(enum.Enum):
    NAME = "NAME"
    NUMBER = "NUMBER"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"


SORT_COLUMNS = {
    CustomerOrderField.NAME: (customer.c.sort_name, customer.c.id),
    CustomerOrderField.NUMBER: (customer.c.number, customer.c.id),
    CustomerOrderField.CREATED_AT: (customer.c.created_at, customer.c.id),
    CustomerOrderField.UPDATED_AT: (customer.c.updated_at, customer.c.id),
}


def _person(c) -> ColumnElement:
    """First and last name joined by a space, or NULL when both are empty."""
    first, last = func.nullif(c.first_name, ""), func.nullif(c.last_name, "")
    return func.nullif(func.concat_ws(" ", first, last), "")


_company = func.nullif(customer.c.company_name, "")
# Customer.displayName, the one declaration: a column every customer query selects (the
# dataloader path) and the compiled read path prints inline (resolvers/compiled/fields.py).
DISPLAY_NAME = case(
    (and_(customer.c.kind == CustomerKind.BUSINESS, _company.is_not(None)), _company),
    else_=func.coalesce(
        _person(customer.c),
        _company,
        func.nullif(cast(customer.c.email, Text), ""),
        customer.c.number,
    ),
)
# Computed fields of Customer: column name -> SQL expression over the customer table.
COMPUTED = {"display_name": DISPLAY_NAME}


def customer_row() -> Select:
    """SELECT of a whole customer row: its columns and its computed fields."""
    return select(customer, *(e.label(name) for name, e in COMPUTED.items()))


def visible_customers(ctx: Context) -> Select:
    """Every customer query starts here: the viewer's scope is applied once."""
    return scope_customers(customer_row(), ctx.viewer)


# A merged customer lives on in its survivor: the one "live customer" rule (both paths).
LIVE = customer.c.status != CustomerStatus.MERGED


def live(stmt: Select) -> Select:
    return stmt.where(LIVE)


# The viewer's customers by id (resolvers/relations.py): one loader for every relation
# to a customer and for node().
CUSTOMERS = ById(customer, visible_customers, ScopeKind.CUSTOMER)
customers_by_id = CUSTOMERS.batch
# Customer.mergedInto, and the customer a child row (order, address, …) belongs to.
MERGED_INTO = ForeignObject(CUSTOMERS, "merged_into_id")
OWNER = ForeignObject(CUSTOMERS, "customer_id")
# Customer.taxStatus: the customer's own columns (its certificates are read by its id).
TAX_STATUS = Embedded({"status": "tax_status", "tax_code": "tax_code", "customer_id": "id"})


MAX_MERGE_HOPS = 10  # a cycle is impossible, but never loop on bad data


def lookup(*, pk: int | None, number: str | None, email: str | None) -> Select:
    """The customer a lookup names: by id, by number, or by email (a live owner of the
    email first, else the newest merged customer that had it)."""
    stmt = select(customer.c.id, customer.c.merged_into_id)
    if pk is not None:
        return stmt.where(customer.c.id == pk)
    if number is not None:
        return stmt.where(customer.c.number == number)
    stmt = stmt.where(customer.c.email == email)
    merged_last = (customer.c.status == CustomerStatus.MERGED).asc()
    return stmt.order_by(merged_last, customer.c.id.desc()).limit(1)


def survivor(start: Select, scoped: Callable[[Select], Select]) -> Select:
    """The id of the customer `start` leads to: itself, or the one it was merged into, hop
    after hop (merges can chain), each hop through the viewer's scope (`scoped`): a hop the
    viewer may not see answers nothing. One recursive CTE for both read paths (the
    compiled builder prints it with its own scope predicate)."""
    anchor = start.with_only_columns(
        customer.c.id, customer.c.merged_into_id.label("next"), literal_column("0").label("depth")
    )
    chain = scoped(anchor).cte("chain", recursive=True)
    step = select(customer.c.id, customer.c.merged_into_id, chain.c.depth + 1).join_from(
        customer, chain, customer.c.id == chain.c.next
    )
    chain = chain.union_all(scoped(step.where(chain.c.depth < MAX_MERGE_HOPS)))
    last = or_(chain.c.next.is_(None), chain.c.depth == MAX_MERGE_HOPS)
    return select(chain.c.id).where(last).order_by(chain.c.depth.desc()).limit(1)


async def customer_by(ctx: Context, *, pk: int | None, number: str | None, email: str | None):
    """One customer; a merged one leads to its survivor (`survivor`)."""
    start = lookup(pk=pk, number=number, email=email)
    chain = survivor(start, lambda stmt: scope_customers(stmt, ctx.viewer))
    rows = await ctx.rows(visible_customers(ctx).where(customer.c.id == chain.scalar_subquery()))
    return rows[0] if rows else None


async def customer_page(
    ctx: Context,
    args: PageArgs,
    field: CustomerOrderField,
    descending: bool,
    base: Select | None = None,
) -> tuple[Page, Select]:
    """A keyset page of `base` (default: live customers); also returns the unpaged select
    for totalCount."""
    base = live(visible_customers(ctx)) if base is None else base
    ordering = Ordering(SORT_COLUMNS[field], descending)
    stmt, to_page = paginate(base, ordering, args)
    return to_page(await ctx.rows(stmt)), base


async def customer_of_user(ctx: Context, user_id: int):
    """A site user's own customer record (through the same scope as everything else)."""
    rows = await ctx.rows(visible_customers(ctx).where(customer.c.user_id == user_id))
    return rows[0] if rows else None
