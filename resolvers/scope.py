"""Who sees what, applied in SQL, once. Every query builder and loader passes through here.

ADMIN: everything. SALES_REP: customers assigned to them and their children.
CUSTOMER (a site user): their own customer record and its children. Anonymous: nothing.
An object outside the scope is filtered out in SQL, so it is indistinguishable from one
that does not exist.
"""

import enum

from sqlalchemy import ColumnElement, Select, false, or_, select

from models import Account, AppUser, Customer
from models.enums import Role
from resolvers.viewer import Viewer

customer = Customer.__table__


class ScopeKind(enum.StrEnum):
    """Which of this module's rules applies to a table (the compiled path prints them)."""

    CUSTOMER = "customer"  # scope_customers
    CHILD = "child"  # scope_children: tables with customer_id
    ACCOUNT = "account"  # scope_accounts
    PAYMENT_METHOD = "payment_method"  # through the visible accounts
    USER = "user"  # scope_users


def customer_predicate(viewer: Viewer) -> ColumnElement[bool] | None:
    """A WHERE clause on the customer table, or None when the viewer sees every customer."""
    if viewer.role is Role.ADMIN:
        return None
    if viewer.role is Role.SALES_REP:
        return customer.c.sales_rep_id == viewer.user_id
    if viewer.role is Role.CUSTOMER:
        return customer.c.user_id == viewer.user_id
    return false()


def scope_customers(stmt: Select, viewer: Viewer) -> Select:
    """Restrict a select over the customer table."""
    predicate = customer_predicate(viewer)
    return stmt if predicate is None else stmt.where(predicate)


def scope_children(stmt: Select, viewer: Viewer, customer_id: ColumnElement) -> Select:
    """Restrict a select over a child table through its customer_id column."""
    predicate = customer_predicate(viewer)
    if predicate is None:
        return stmt
    return stmt.where(customer_id.in_(select(customer.c.id).where(predicate)))


def scope_accounts(stmt: Select, viewer: Viewer) -> Select:
    """An account is visible when one of its customers is."""
    predicate = customer_predicate(viewer)
    if predicate is None:
        return stmt
    visible = select(customer.c.account_id).where(predicate, customer.c.account_id.is_not(None))
    return stmt.where(Account.__table__.c.id.in_(visible))


def scope_users(stmt: Select, viewer: Viewer) -> Select:
    """Staff see staff (names of colleagues and reps); a site user is visible to staff only
    through a customer record they may see (a rep never sees another rep's site users);
    a site user sees only themselves."""
    users = AppUser.__table__
    if viewer.role is Role.ADMIN:
        return stmt
    if viewer.role is Role.SALES_REP:
        predicate = customer_predicate(viewer)
        own_site_users = select(customer.c.user_id).where(
            predicate, customer.c.user_id.is_not(None)
        )
        return stmt.where(or_(users.c.role != Role.CUSTOMER, users.c.id.in_(own_site_users)))
    if viewer.role is Role.CUSTOMER:
        return stmt.where(users.c.id == viewer.user_id)
    return stmt.where(false())
