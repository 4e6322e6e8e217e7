"""Export jobs: a customer export a user asked for, downloadable by them until it expires.

Nothing is stored but the request: the download streams the customers matching the
filter at that moment, through the downloader's scope (resolvers/exports.py).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at


class ExportJob(Base):
    __tablename__ = "export_job"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(Text)  # csv | ndjson
    criteria: Mapped[dict[str, Any]] = mapped_column(JSONB)  # resolvers.search.Criteria
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime]
