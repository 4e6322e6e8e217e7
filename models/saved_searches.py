"""Saved searches (segments): a named CustomerFilter, the owner's or shared with all staff.

The filter is kept as the GraphQL input its owner sent (JSON), validated when saved and
again each time it runs: a sales channel deleted since then is a clear error, not a crash.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Identity, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, updated_at


class SavedSearch(Base):
    __tablename__ = "saved_search"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    filter: Mapped[dict[str, Any]] = mapped_column(JSONB)  # CustomerFilter, as GraphQL JSON
    shared: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        # A name once per owner, whatever its case.
        Index("uq_saved_search_owner_name", "owner_id", text("lower(name)"), unique=True),
    )
