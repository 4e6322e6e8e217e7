"""Open live-timeline subscriptions of every instance, for the per-user limit
(server/notify.py). UNLOGGED: each worker renews its rows (and writes them again after a
crash emptied the table); rows of an instance that died expire."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class SubscriptionLease(Base):
    __tablename__ = "subscription_lease"
    __table_args__ = (
        Index("ix_subscription_lease_user_id", "user_id", "expires_at"),
        Index("ix_subscription_lease_instance", "instance"),
        {"prefixes": ["UNLOGGED"]},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    instance: Mapped[uuid.UUID] = mapped_column(Uuid)  # the worker process holding it
    # No foreign key: a lease outlives nothing (it expires), and deleting a user must not
    # wait on another instance's rows.
    user_id: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]
