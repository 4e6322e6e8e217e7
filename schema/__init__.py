"""The GraphQL schema. Built once per process: Strawberry's relay fields cannot be rebuilt."""

import strawberry

from schema.root import Mutation, Query, Subscription
from schema.scalars import SCALAR_OVERRIDES
from server.errors import ErrorCodes
from server.limits import RequestLimits


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        # Strawberry logs every error at ERROR with a traceback, client mistakes included;
        # server.errors.ErrorCodes logs each request's errors once, with their codes.
        return


schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[ErrorCodes, RequestLimits],
    scalar_overrides=SCALAR_OVERRIDES,
)
