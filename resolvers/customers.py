"""Customer queries: scoped lookups, keyset-paginated lists, and loaders."""

from __future__ import annotations

import enum

from sqlalchemy import ColumnElement, Select, Text, and_, case, cast, func, select

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


async def customer_by(ctx: Context, *, pk: int | None, number: str | None, email: str | None):
    """One customer; a merged one leads to its survivor (merges can chain)."""
    if pk is not None:
        row = await ctx.loader(customers_by_id).load(pk)
    else:
        stmt = visible_customers(ctx)
        if number is not None:
            stmt = stmt.where(customer.c.number == number)
        else:  # a live customer owns the email; else the newest merged one that had it
            stmt = stmt.where(customer.c.email == email).order_by(
                (customer.c.status == CustomerStatus.MERGED).asc(), customer.c.id.desc()
            )
        rows = await ctx.rows(stmt.limit(1))
        row = rows[0] if rows else None
    for _ in range(10):  # bounded: a cycle is impossible, but never loop on bad data
        if row is None or row.merged_into_id is None:
            return row
        row = await ctx.loader(customers_by_id).load(row.merged_into_id)
    return row


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
