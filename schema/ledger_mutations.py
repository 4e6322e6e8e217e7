"""Ledger mutations: inputs and payloads (see resolvers/ledger_mutations.py for the rules)."""

from decimal import Decimal

import strawberry
from strawberry.types import Info

from resolvers import ledger_mutations as q
from resolvers.context import viewer_of
from resolvers.global_ids import decode_id
from resolvers.mutations import Refused
from schema.base import Money, build_all
from schema.errors import UserError, refused_payload
from schema.ledger import LedgerTransaction


@strawberry.input
class LedgerEntryInput:
    customer_id: strawberry.ID
    amount: Decimal = strawberry.field(description="Positive (signed for ledgerAdjust).")
    currency: str = strawberry.field(description="ISO 4217, e.g. USD.")
    memo: str | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="Retry safely: the same key and input replay the result."
    )


@strawberry.input
class LedgerTransferInput:
    from_customer_id: strawberry.ID
    to_customer_id: strawberry.ID
    amount: Decimal
    currency: str
    memo: str | None = None
    allow_overdraft: bool = False
    idempotency_key: str | None = None


@strawberry.type
class LedgerPayload:
    transactions: list[LedgerTransaction]
    balance: Money | None = strawberry.field(
        description="The (first) customer's balance in this currency afterwards."
    )
    user_errors: list[UserError]


def _payload(result) -> LedgerPayload:
    rows, amount, currency = result
    return LedgerPayload(
        transactions=build_all("LedgerTransaction", rows),
        balance=Money(amount=amount, currency=currency),
        user_errors=[],
    )


async def _entry(info: Info, kind: str, input: LedgerEntryInput) -> LedgerPayload:
    viewer_of(info)
    try:
        customer_id = decode_id(input.customer_id, "Customer", "customerId")
        result = await q.post_entry(
            info.context,
            kind,
            customer_id,
            input.amount,
            input.currency,
            input.memo,
            input.idempotency_key,
        )
    except Refused as refused:
        return refused_payload(LedgerPayload, refused)
    return _payload(result)


@strawberry.type
class LedgerMutations:
    @strawberry.mutation(description="The customer owes more (an ad hoc invoice or fee).")
    async def ledger_charge(self, info: Info, input: LedgerEntryInput) -> LedgerPayload:
        return await _entry(info, "CHARGE", input)

    @strawberry.mutation(description="Money received from the customer.")
    async def ledger_payment(self, info: Info, input: LedgerEntryInput) -> LedgerPayload:
        return await _entry(info, "PAYMENT", input)

    @strawberry.mutation(description="Credit given to the customer (goodwill, returns).")
    async def ledger_credit(self, info: Info, input: LedgerEntryInput) -> LedgerPayload:
        return await _entry(info, "CREDIT", input)

    @strawberry.mutation(description="A correction, signed: positive raises what is owed.")
    async def ledger_adjust(self, info: Info, input: LedgerEntryInput) -> LedgerPayload:
        return await _entry(info, "ADJUSTMENT", input)

    @strawberry.mutation(description="Move credit from one customer's account to another's.")
    async def ledger_transfer(self, info: Info, input: LedgerTransferInput) -> LedgerPayload:
        viewer_of(info)
        try:
            source = decode_id(input.from_customer_id, "Customer", "fromCustomerId")
            target = decode_id(input.to_customer_id, "Customer", "toCustomerId")
            result = await q.transfer(
                info.context,
                source,
                target,
                input.amount,
                input.currency,
                input.memo,
                input.allow_overdraft,
                input.idempotency_key,
            )
        except Refused as refused:
            return refused_payload(LedgerPayload, refused)
        return _payload(result)
