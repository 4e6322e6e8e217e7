"""SQLAlchemy tables, one module per aggregate. Importing this package registers them all."""

from models.accounts import Account, PaymentMethod
from models.addresses import Address
from models.base import Base
from models.bulk_jobs import BulkJob, BulkJobError
from models.cost_buckets import CostBucket
from models.custom_fields import CustomFieldDefinition, CustomFieldValue
from models.customers import Customer
from models.duplicates import DuplicateDismissal
from models.export_jobs import ExportJob
from models.idempotency import IdempotencyKey
from models.import_jobs import ImportJob, ImportJobError
from models.ledger import LedgerTransaction
from models.orders import Order, OrderLine
from models.persisted_queries import PersistedQuery, PersistedQueryTotal
from models.sales_channels import CustomerSalesChannel, SalesChannel
from models.saved_searches import SavedSearch
from models.subscription_leases import SubscriptionLease
from models.tax import TaxExemptionCertificate
from models.timeline import TimelineEvent
from models.users import ApiToken, AppUser

metadata = Base.metadata

__all__ = [
    "Account",
    "Address",
    "ApiToken",
    "AppUser",
    "Base",
    "BulkJob",
    "BulkJobError",
    "CostBucket",
    "CustomFieldDefinition",
    "CustomFieldValue",
    "Customer",
    "CustomerSalesChannel",
    "DuplicateDismissal",
    "ExportJob",
    "IdempotencyKey",
    "ImportJob",
    "ImportJobError",
    "LedgerTransaction",
    "Order",
    "OrderLine",
    "PaymentMethod",
    "PersistedQuery",
    "PersistedQueryTotal",
    "SalesChannel",
    "SavedSearch",
    "SubscriptionLease",
    "TaxExemptionCertificate",
    "TimelineEvent",
    "metadata",
]
