"""Billing accounts and payment methods, visible through the customers that use them."""

from collections.abc import Sequence

from sqlalchemy import Select, select

from models import Account, PaymentMethod
from resolvers import customers as customer_q
from resolvers.context import Context
from resolvers.loading import one_per_key
from resolvers.pagination import Ordering, Page, PageArgs, paginate
from resolvers.relations import ChildList
from resolvers.scope import ScopeKind, scope_accounts

account = Account.__table__
payment_method = PaymentMethod.__table__
BY_NUMBER = Ordering((account.c.number, account.c.id))
# Account.customers is a plain list that attaching customers can grow without end: it
# returns the first ACCOUNT_CUSTOMERS_CAP by id (a LIMIT in SQL on both read paths), so
# the cost limit can count it.
ACCOUNT_CUSTOMERS_CAP = 50
BY_ID = Ordering((customer_q.customer.c.id,))


def visible_accounts(ctx: Context) -> Select:
    return scope_accounts(select(account), ctx.viewer)


async def accounts_by_id(ctx: Context, keys: Sequence[int]) -> list:
    return await one_per_key(ctx, visible_accounts(ctx), account.c.id, keys)


async def account_page(
    ctx: Context, args: PageArgs, base: Select | None = None
) -> tuple[Page, Select]:
    base = visible_accounts(ctx) if base is None else base
    stmt, to_page = paginate(base, BY_NUMBER, args)
    return to_page(await ctx.rows(stmt)), base


def visible_payment_methods(ctx: Context) -> Select:
    return select(payment_method).where(
        payment_method.c.account_id.in_(visible_accounts(ctx).with_only_columns(account.c.id))
    )


async def payment_methods_by_id(ctx: Context, keys: Sequence[int]) -> list:
    return await one_per_key(ctx, visible_payment_methods(ctx), payment_method.c.id, keys)


# The default first: the one ordering of Account.paymentMethods (both read paths).
PAYMENT_METHOD_ORDER = (payment_method.c.is_default.desc(), payment_method.c.id)


# Account.paymentMethods, declared once (resolvers/relations.py).
PAYMENT_METHODS = ChildList(
    payment_method,
    "account_id",
    PAYMENT_METHOD_ORDER,
    visible_payment_methods,
    scope=ScopeKind.PAYMENT_METHOD,
)


# Account.customers, declared once: the first ACCOUNT_CUSTOMERS_CAP live, visible customers
# by id (a cap in SQL on both paths, which the cost limit counts).
ACCOUNT_CUSTOMERS = ChildList(
    customer_q.customer,
    "account_id",
    (customer_q.customer.c.id,),
    customer_q.visible_customers,
    scope=ScopeKind.CUSTOMER,
    where=(customer_q.LIVE,),
    limit=ACCOUNT_CUSTOMERS_CAP,
)
