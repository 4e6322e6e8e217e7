"""The GraphQL schema this service serves: the root types of schema/, with the extensions
of server/ (error codes and logging, request limits). Built once per process: Strawberry's
relay fields cannot be rebuilt."""

from schema import input_values
from schema.root import Mutation, Query, Subscription
from schema.scalars import SCALAR_OVERRIDES
from server.errors import ErrorCodes, Schema
from server.known_documents import KnownDocuments
from server.limits import RequestLimits
from server.observe import Observed
from server.tracing import Traced

schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    # KnownDocuments after RequestLimits: the limits run first, on every request.
    extensions=[ErrorCodes, RequestLimits, KnownDocuments, Observed, Traced],
    scalar_overrides=SCALAR_OVERRIDES,
)
# Input objects built from a plan per type, not Strawberry's walk of every field per request.
input_values.install(schema)
