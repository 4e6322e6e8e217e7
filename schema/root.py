"""The Schema: root types merged from one query class per domain, plus Relay node/nodes."""

import strawberry
from strawberry import relay
from strawberry.tools import merge_types

from schema.account_mutations import AccountMutations
from schema.accounts import AccountQueries
from schema.base import NodeIds
from schema.bulk_updates import (
    BulkUpdateMutations,
    BulkUpdateQueries,
    BulkUpdateSubscriptions,
)
from schema.consent_mutations import ConsentMutations
from schema.custom_field_mutations import CustomFieldMutations
from schema.custom_fields import CustomFieldQueries
from schema.customer_mutations import CustomerMutations
from schema.customers import CustomerQueries
from schema.duplicates import DuplicateMutations, DuplicateQueries
from schema.exports import ExportMutations
from schema.import_jobs import ImportJobMutations, ImportJobQueries, ImportJobSubscriptions
from schema.ledger_mutations import LedgerMutations
from schema.merges import MergeMutations, MergeQueries
from schema.order_mutations import OrderMutations
from schema.orders import OrderQueries
from schema.privacy import PrivacyMutations, PrivacyQueries
from schema.sales_channels import SalesChannelQueries
from schema.saved_searches import SavedSearchMutations, SavedSearchQueries
from schema.search import SearchQueries
from schema.tag_mutations import TagMutations
from schema.tags import TagQueries
from schema.tax_mutations import TaxMutations, TaxQueries
from schema.timeline import TimelineSubscriptions
from schema.users import UserMutations, UserQueries
from schema.viewer import ViewerQueries


@strawberry.type
class NodeQueries:
    node: relay.Node | None = relay.node(
        description="Any object by its global ID.", extensions=[NodeIds()]
    )
    nodes: list[relay.Node | None] = relay.node(
        description="Objects by global IDs, in order.", extensions=[NodeIds()]
    )


Query = merge_types(
    "Query",
    (
        NodeQueries,
        ViewerQueries,
        CustomerQueries,
        SearchQueries,
        OrderQueries,
        AccountQueries,
        SalesChannelQueries,
        UserQueries,
        CustomFieldQueries,
        TaxQueries,
        DuplicateQueries,
        MergeQueries,
        ImportJobQueries,
        TagQueries,
        SavedSearchQueries,
        BulkUpdateQueries,
        PrivacyQueries,
    ),
)

# One mutation class per domain, merged like the queries. Add yours to this tuple.
MUTATION_TYPES: tuple[type, ...] = (
    UserMutations,
    CustomerMutations,
    AccountMutations,
    OrderMutations,
    CustomFieldMutations,
    TaxMutations,
    LedgerMutations,
    DuplicateMutations,
    MergeMutations,
    ImportJobMutations,
    ExportMutations,
    TagMutations,
    ConsentMutations,
    SavedSearchMutations,
    BulkUpdateMutations,
    PrivacyMutations,
)

Mutation = merge_types("Mutation", MUTATION_TYPES) if MUTATION_TYPES else None

Subscription = merge_types(
    "Subscription", (TimelineSubscriptions, ImportJobSubscriptions, BulkUpdateSubscriptions)
)
