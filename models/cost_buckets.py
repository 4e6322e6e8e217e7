"""Each client's leaky bucket of query cost points (server/budget.py). UNLOGGED."""

from datetime import datetime

from sqlalchemy import DateTime, Float, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class CostBucket(Base):
    __tablename__ = "cost_bucket"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    # "token:<sha-256 of the bearer token, hex>" or "addr:<client address>"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    available: Mapped[float] = mapped_column(Float)
    granted: Mapped[bool]  # the last request's answer: served, or throttled
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
