"""Apollo persisted queries shared by every instance (server/persisted.py): hash → text.

Bounded: `persisted_query_total` keeps the sum of `bytes` (one row), and a registration
that takes it past CUSTOMER_GRAPH_PERSISTED_STORE_BYTES evicts the least recently used.
"""

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, SmallInteger, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class PersistedQuery(Base):
    __tablename__ = "persisted_query"
    __table_args__ = (
        CheckConstraint("hash ~ '^[0-9a-f]{64}$'", name="sha256"),
        # Eviction walks the least recently used first, reading only the index.
        Index("ix_persisted_query_last_used", "last_used", "hash", postgresql_include=["bytes"]),
    )

    hash: Mapped[str] = mapped_column(Text, primary_key=True)  # sha256 of `query`, hex
    query: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(Integer)  # the text's bytes plus the row's overhead
    last_used: Mapped[datetime] = mapped_column(server_default=func.now())


class PersistedQueryTotal(Base):
    __tablename__ = "persisted_query_total"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
