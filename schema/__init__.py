"""The GraphQL schema. Built once per process: Strawberry's relay fields cannot be rebuilt."""

import strawberry

from schema.root import Mutation, Query, Subscription
from schema.scalars import SCALAR_OVERRIDES
from server.errors import ErrorCodes
from server.limits import RequestLimits

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[ErrorCodes, RequestLimits],
    scalar_overrides=SCALAR_OVERRIDES,
)
