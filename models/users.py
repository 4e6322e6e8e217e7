"""Staff and site users, and their API tokens (stored only as a SHA-256 hash)."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    Text,
)
from sqlalchemy.dialects.postgresql import CITEXT
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at
from models.enums import Role


class AppUser(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(CITEXT, unique=True)
    role: Mapped[Role] = mapped_column(Enum(Role, name="role"))
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(server_default="true")
    created_at: Mapped[datetime] = created_at()

    __table_args__ = (Index("ix_app_user_role", "role"),)


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    # Its own cost budget (server/budget.py): both or neither; NULL keeps the role's.
    cost_budget: Mapped[float | None]
    cost_restore_rate: Mapped[float | None]

    __table_args__ = (
        CheckConstraint(
            "(cost_budget IS NULL) = (cost_restore_rate IS NULL)"
            " AND (cost_budget IS NULL OR (cost_budget > 0 AND cost_restore_rate > 0))",
            name="cost_budget",
        ),
    )
