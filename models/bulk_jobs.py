"""Bulk jobs: one change applied to many customers, its progress, and the customers it
rejected.

A job is a row, so it outlives the process running it: each batch of customers commits
together with the job's counters, its rejections and the cursor `last_customer_id`, and a
job found RUNNING after a restart resumes after that customer (resolvers/bulk_updates.py).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Enum, ForeignKey, Identity, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at
from models.enums import JobStatus


class BulkJob(Base):
    __tablename__ = "bulk_job"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[JobStatus] = mapped_column(Enum(JobStatus, name="job_status"))
    # Which customers: {"ids": [...]} or {"criteria": resolvers.search.Criteria as JSON}.
    selection: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # What to set: {"values": {column: value}, "customFields": [[key, value|null], ...]}.
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    error_policy: Mapped[str] = mapped_column(Text)  # skip | abort
    total: Mapped[int] = mapped_column(Integer, server_default="0")  # matched when started
    done: Mapped[int] = mapped_column(Integer, server_default="0")
    changed: Mapped[int] = mapped_column(Integer, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    rejected: Mapped[int] = mapped_column(Integer, server_default="0")
    # The last customer (by id) of the last committed batch: a resumed job starts after it.
    last_customer_id: Mapped[int] = mapped_column(BigInteger, server_default="0")
    message: Mapped[str | None] = mapped_column(Text)  # why it FAILED
    created_at: Mapped[datetime] = created_at()
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class BulkJobError(Base):
    __tablename__ = "bulk_job_error"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("bulk_job.id", ondelete="CASCADE"), primary_key=True
    )
    # No foreign key: the error outlives nothing it names, and a missing id is an error too.
    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
