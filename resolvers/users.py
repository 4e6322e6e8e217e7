"""Users: staff (admins, sales reps) and site users."""

import re

from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from sqlalchemy import Text, cast, func, insert, select
from sqlalchemy.exc import IntegrityError

from models import AppUser, Customer
from models.enums import Role
from resolvers.context import Context
from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused, transaction
from resolvers.relations import ById, ForeignObject
from resolvers.rls import set_viewer
from resolvers.scope import ScopeKind, scope_users
from resolvers.timeline import record
from resolvers.tokens import issue_token
from resolvers.viewer import Viewer

customer = Customer.__table__
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

user = AppUser.__table__
PUBLIC = [c for c in user.c if c.name != "password_hash"]
# User.displayName, the one declaration (see resolvers.customers.DISPLAY_NAME): first and
# last name, else the email.
DISPLAY_NAME = func.coalesce(
    func.nullif(
        func.concat_ws(" ", func.nullif(user.c.first_name, ""), func.nullif(user.c.last_name, "")),
        "",
    ),
    cast(user.c.email, Text),
)
COMPUTED = {"display_name": DISPLAY_NAME}


def visible_users(ctx: Context):
    computed = (e.label(name) for name, e in COMPUTED.items())
    return scope_users(select(*PUBLIC, *computed), ctx.viewer)


USERS = ById(user, visible_users, ScopeKind.USER)
users_by_id = USERS.batch
# Customer.salesRep and TimelineEvent.actor, declared once (resolvers/relations.py).
SALES_REP = ForeignObject(USERS, "sales_rep_id")
ACTOR = ForeignObject(USERS, "actor_id")


async def sales_reps(ctx: Context) -> list:
    stmt = visible_users(ctx).where(user.c.role == Role.SALES_REP, user.c.is_active)
    return list(await ctx.rows(stmt.order_by(user.c.last_name, user.c.first_name, user.c.id)))


_hasher = PasswordHasher()


async def register(ctx: Context, *, email: str, password: str, first: str, last: str):
    """A site user and their customer record, in one transaction (the register screen)."""
    email = email.strip()
    problems = []
    if not EMAIL.fullmatch(email):
        problems.append(Problem(["input", "email"], UserErrorCode.INVALID, "Not an email address."))
    if len(password) < 10:
        problems.append(
            Problem(["input", "password"], UserErrorCode.INVALID, "Use at least 10 characters.")
        )
    if problems:
        raise Refused(*problems)
    password_hash = _hasher.hash(password)
    try:
        async with transaction(ctx) as conn:
            user_id = (
                await conn.execute(
                    insert(user)
                    .values(
                        email=email,
                        role=Role.CUSTOMER,
                        first_name=first,
                        last_name=last,
                        password_hash=password_hash,
                    )
                    .returning(user.c.id)
                )
            ).scalar_one()
            # Row-level security: from here on the transaction acts as the new login.
            await set_viewer(conn, Viewer(user_id=user_id, role=Role.CUSTOMER))
            # A customer the business already knows (an import, a phone order) keeps its
            # history: the new login attaches to it instead of creating a second record.
            # The record is no one's yet, so no viewer sees it: the database claims it
            # (cg_claim_customer, migration 0010: the live customer with this email and
            # no login).
            customer_id = (
                await conn.execute(select(func.cg_claim_customer(email, user_id)))
            ).scalar()
            kind = "SITE_ACCOUNT_CREATED"
            if customer_id is None:
                kind = "CUSTOMER_CREATED"
                customer_id = (
                    await conn.execute(
                        insert(customer)
                        .values(email=email, first_name=first, last_name=last, user_id=user_id)
                        .returning(customer.c.id)
                    )
                ).scalar_one()
            await record(
                conn,
                customer_id,
                kind,
                "Registered on the site",
                actor_id=user_id,
                data={"source": "registration"},
            )
    except IntegrityError as exc:  # the email belongs to a user or a live customer already
        raise Refused.one(
            ["input", "email"], UserErrorCode.DUPLICATE, "This email is already registered."
        ) from exc
    token = await issue_token(ctx.engine, user_id, name="login")
    return user_id, customer_id, token


async def login(ctx: Context, *, email: str, password: str) -> tuple[int, str]:
    """A token for a user whose password matches; the same answer for every failure."""
    rows = await ctx.rows(
        select(user.c.id, user.c.password_hash).where(
            user.c.email == email.strip(), user.c.is_active
        )
    )
    refused = Refused.one(["input"], UserErrorCode.INVALID, "Wrong email or password.")
    if not rows or rows[0].password_hash is None:
        _hasher.hash(password)  # spend the same time as a real check
        raise refused
    try:
        _hasher.verify(rows[0].password_hash, password)
    except VerifyMismatchError as exc:
        raise refused from exc
    return rows[0].id, await issue_token(ctx.engine, rows[0].id, name="login")
