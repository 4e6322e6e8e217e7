"""Import jobs: a file being imported, its progress, and the rows it rejected.

A job is a row, so it outlives the process running it: each batch of rows commits together
with the job's counters, and a job found RUNNING after a restart resumes after its last
committed row (resolvers/import_jobs.py).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Enum, ForeignKey, Identity, Integer, LargeBinary, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at
from models.enums import JobStatus


class ImportJob(Base):
    __tablename__ = "import_job"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[JobStatus] = mapped_column(Enum(JobStatus, name="job_status"))
    file_name: Mapped[str] = mapped_column(Text)
    # The file as uploaded, kept until the job ends (a resumed job reads it again).
    source: Mapped[bytes | None] = mapped_column(LargeBinary)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB)
    rows_done: Mapped[int] = mapped_column(Integer, server_default="0")
    created: Mapped[int] = mapped_column(Integer, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    rejected: Mapped[int] = mapped_column(Integer, server_default="0")
    unknown_columns: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    ignored_columns: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    header: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    message: Mapped[str | None] = mapped_column(Text)  # why it FAILED
    created_at: Mapped[datetime] = created_at()
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ImportJobError(Base):
    __tablename__ = "import_job_error"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("import_job.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    column: Mapped[str | None] = mapped_column(Text)
    code: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    raw: Mapped[list[str]] = mapped_column(JSONB)  # the row's cells, card numbers removed
