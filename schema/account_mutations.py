"""Account and payment-method mutations."""

from typing import Any

import strawberry
from strawberry.types import Info

from resolvers import account_mutations as q
from resolvers import accounts as account_q
from resolvers import customers as customer_q
from resolvers.context import viewer_of
from resolvers.errors import UserErrorCode
from resolvers.global_ids import decode_id
from resolvers.mutations import Refused
from schema.accounts import Account, PaymentMethod
from schema.base import build
from schema.customers import Customer
from schema.errors import UserError, refused_payload

UNSET: Any = strawberry.UNSET


@strawberry.input
class AccountInput:
    name: str
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="Bill this customer to the new account."
    )
    billing_contact_name: str | None = None
    billing_email: str | None = None
    billing_phone: str | None = None
    billing_line1: str | None = None
    billing_line2: str | None = None
    billing_city: str | None = None
    billing_region: str | None = None
    billing_postal_code: str | None = None
    billing_country: str | None = None


@strawberry.input
class AccountUpdateInput:
    id: strawberry.ID
    name: str | None = UNSET
    billing_contact_name: str | None = UNSET
    billing_email: str | None = UNSET
    billing_phone: str | None = UNSET
    billing_line1: str | None = UNSET
    billing_line2: str | None = UNSET
    billing_city: str | None = UNSET
    billing_region: str | None = UNSET
    billing_postal_code: str | None = UNSET
    billing_country: str | None = UNSET


@strawberry.input
class AccountCustomerInput:
    account_id: strawberry.ID | None = None
    customer_id: strawberry.ID


@strawberry.input(
    description="A stored card or mandate: the processor's token and display "
    "details only. A card number anywhere is refused."
)
class PaymentMethodInput:
    account_id: strawberry.ID
    processor: str = "stripe"
    token: str
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    is_default: bool = False


@strawberry.input
class PaymentMethodIdInput:
    id: strawberry.ID


@strawberry.type
class AccountPayload:
    account: Account | None
    customer: Customer | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PaymentMethodPayload:
    payment_method: PaymentMethod | None
    account: Account | None
    user_errors: list[UserError]


FIELDS = ("name", *q.BILLING)


async def _account(info: Info, aid: int, customer_id: int | None = None) -> AccountPayload:
    ctx = info.context.fresh()
    row = await ctx.loader(account_q.accounts_by_id).load(aid)
    cust = await ctx.loader(customer_q.customers_by_id).load(customer_id) if customer_id else None
    return AccountPayload(account=build("Account", row), customer=build("Customer", cust))


@strawberry.type
class AccountMutations:
    @strawberry.mutation(description="Open a billing account.")
    async def account_create(self, info: Info, input: AccountInput) -> AccountPayload:
        viewer_of(info)
        try:
            cid = (
                decode_id(input.customer_id, "Customer", "customerId")
                if input.customer_id
                else None
            )
            aid = await q.create_account(info.context, {k: getattr(input, k) for k in FIELDS}, cid)
        except Refused as refused:
            return refused_payload(AccountPayload, refused)
        return await _account(info, aid, cid)

    @strawberry.mutation(description="Change a billing account (only the fields you send).")
    async def account_update(self, info: Info, input: AccountUpdateInput) -> AccountPayload:
        viewer_of(info)
        try:
            aid = decode_id(input.id, "Account", "id")
            values = {k: getattr(input, k) for k in FIELDS if getattr(input, k) is not UNSET}
            await q.update_account(info.context, aid, values)
        except Refused as refused:
            return refused_payload(AccountPayload, refused)
        return await _account(info, aid)

    @strawberry.mutation(description="Bill a customer to an account.")
    async def account_attach_customer(
        self, info: Info, input: AccountCustomerInput
    ) -> AccountPayload:
        viewer_of(info)
        try:
            if input.account_id is None:
                raise Refused.one(["input", "accountId"], UserErrorCode.REQUIRED, "Which account?")
            aid = decode_id(input.account_id, "Account", "accountId")
            cid = decode_id(input.customer_id, "Customer", "customerId")
            await q.attach(info.context, aid, cid)
        except Refused as refused:
            return refused_payload(AccountPayload, refused)
        return await _account(info, aid, cid)

    @strawberry.mutation(description="Stop billing a customer to their account.")
    async def account_detach_customer(
        self, info: Info, input: AccountCustomerInput
    ) -> AccountPayload:
        viewer_of(info)
        try:
            cid = decode_id(input.customer_id, "Customer", "customerId")
            await q.detach(info.context, cid)
        except Refused as refused:
            return refused_payload(AccountPayload, refused)
        row = await info.context.fresh().loader(customer_q.customers_by_id).load(cid)
        return AccountPayload(account=None, customer=build("Customer", row))

    @strawberry.mutation(description="Store a payment method (token only) on an account.")
    async def payment_method_add(
        self, info: Info, input: PaymentMethodInput
    ) -> PaymentMethodPayload:
        viewer_of(info)
        try:
            aid = decode_id(input.account_id, "Account", "accountId")
            values = {
                k: getattr(input, k)
                for k in ("processor", "token", "brand", "last4", "exp_month", "exp_year")
            }
            pid = await q.add_payment_method(info.context, aid, values, input.is_default)
        except Refused as refused:
            return refused_payload(PaymentMethodPayload, refused)
        ctx = info.context.fresh()
        method = await ctx.loader(account_q.payment_methods_by_id).load(pid)
        return PaymentMethodPayload(
            payment_method=build("PaymentMethod", method),
            account=build("Account", await ctx.loader(account_q.accounts_by_id).load(aid)),
            user_errors=[],
        )

    @strawberry.mutation(description="Forget a payment method.")
    async def payment_method_remove(
        self, info: Info, input: PaymentMethodIdInput
    ) -> PaymentMethodPayload:
        viewer_of(info)
        try:
            aid = await q.remove_payment_method(
                info.context, decode_id(input.id, "PaymentMethod", "id")
            )
        except Refused as refused:
            return refused_payload(PaymentMethodPayload, refused)
        row = await info.context.fresh().loader(account_q.accounts_by_id).load(aid)
        return PaymentMethodPayload(
            payment_method=None, account=build("Account", row), user_errors=[]
        )
