"""Enumerations stored as PostgreSQL enum types; the GraphQL enums wrap these same classes."""

import enum


class Role(enum.StrEnum):
    ADMIN = "ADMIN"
    SALES_REP = "SALES_REP"
    CUSTOMER = "CUSTOMER"


class CustomerKind(enum.StrEnum):
    INDIVIDUAL = "INDIVIDUAL"
    BUSINESS = "BUSINESS"


class CustomerStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"
    MERGED = "MERGED"
    ERASED = "ERASED"  # privacy request: personal data pseudonymised (resolvers/privacy.py)


class TaxStatus(enum.StrEnum):
    TAXABLE = "TAXABLE"
    EXEMPT = "EXEMPT"
    PARTIALLY_EXEMPT = "PARTIALLY_EXEMPT"


class AddressKind(enum.StrEnum):
    SHIPPING = "SHIPPING"
    BILLING = "BILLING"


class OrderStatus(enum.StrEnum):
    PLACED = "PLACED"
    PAID = "PAID"
    FULFILLED = "FULFILLED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


class OrderSource(enum.StrEnum):
    CHECKOUT = "CHECKOUT"
    ADMIN = "ADMIN"


class LedgerKind(enum.StrEnum):
    CHARGE = "CHARGE"
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"
    CREDIT = "CREDIT"
    ADJUSTMENT = "ADJUSTMENT"
    TRANSFER_IN = "TRANSFER_IN"
    TRANSFER_OUT = "TRANSFER_OUT"


class CustomFieldType(enum.StrEnum):
    TEXT = "TEXT"
    NUMBER = "NUMBER"
    BOOLEAN = "BOOLEAN"
    DATE = "DATE"
    SELECT = "SELECT"


class MarketingState(enum.StrEnum):
    SUBSCRIBED = "SUBSCRIBED"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    PENDING = "PENDING"  # asked, awaiting confirmation (double opt-in)
    NOT_SUBSCRIBED = "NOT_SUBSCRIBED"  # never asked


class OptInLevel(enum.StrEnum):
    SINGLE = "SINGLE"
    CONFIRMED = "CONFIRMED"


class JobStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
