"""Billing accounts and payment methods, visible through the customers that use them."""

from sqlalchemy import Select, select

from models import Account, PaymentMethod
from resolvers import customers as customer_q
from resolvers.context import Context
from resolvers.pagination import Ordering, Page, PageArgs, paginate
from resolvers.relations import ById, ChildList, Embedded, ForeignObject
from resolvers.scope import ScopeKind, scope_accounts

account = Account.__table__
payment_method = PaymentMethod.__table__
BY_NUMBER = Ordering((account.c.number, account.c.id))
# Account.customers is a plain list that attaching customers can grow without end: it
# returns the first ACCOUNT_CUSTOMERS_CAP by id (a LIMIT in SQL on both read paths), so
# the cost limit can count it.
ACCOUNT_CUSTOMERS_CAP = 50


# Account.billingContact and billingAddress, declared once: the account's own columns; no
# address at all (null) while billing_line1 is unset.
BILLING_CONTACT = Embedded(
    {"name": "billing_contact_name", "email": "billing_email", "phone": "billing_phone"}
)
BILLING_ADDRESS = Embedded(
    {
        name: f"billing_{name}"
        for name in ("line1", "line2", "city", "region", "postal_code", "country")
    },
    present="billing_line1",
)


def visible_accounts(ctx: Context) -> Select:
    return scope_accounts(select(account), ctx.viewer)


ACCOUNTS = ById(account, visible_accounts, ScopeKind.ACCOUNT)
accounts_by_id = ACCOUNTS.batch
# Customer.account, declared once (resolvers/relations.py).
CUSTOMER_ACCOUNT = ForeignObject(ACCOUNTS, "account_id")


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


PAYMENT_METHOD_ROWS = ById(payment_method, visible_payment_methods, ScopeKind.PAYMENT_METHOD)
payment_methods_by_id = PAYMENT_METHOD_ROWS.batch


# The default first: the one ordering of Account.paymentMethods (both read paths).
PAYMENT_METHOD_ORDER = (payment_method.c.is_default.desc(), payment_method.c.id)


# Account.paymentMethods, declared once (resolvers/relations.py): at most
# PAYMENT_METHODS_CAP, a LIMIT on both paths that the cost limit counts.
PAYMENT_METHODS_CAP = 50
PAYMENT_METHODS = ChildList(
    payment_method,
    payment_method.c.account_id,
    PAYMENT_METHOD_ORDER,
    visible_payment_methods,
    scope=ScopeKind.PAYMENT_METHOD,
    limit=PAYMENT_METHODS_CAP,
)


# Account.customers, declared once: the first ACCOUNT_CUSTOMERS_CAP live, visible customers
# by id (a cap in SQL on both paths, which the cost limit counts).
ACCOUNT_CUSTOMERS = ChildList(
    customer_q.customer,
    customer_q.customer.c.account_id,
    (customer_q.customer.c.id,),
    customer_q.visible_customers,
    scope=ScopeKind.CUSTOMER,
    where=(customer_q.LIVE,),
    limit=ACCOUNT_CUSTOMERS_CAP,
)
