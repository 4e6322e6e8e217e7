"""Stored first results of money-moving mutations, keyed by (actor, idempotency key)."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, LargeBinary, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at


class IdempotencyKey(Base):
    __tablename__ = "idempotency_key"

    # 0 stands for "no user" (the CLI); keys are scoped per actor, like Stripe's per account.
    actor_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    operation: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at()
