"""Who is asking. Built once per request from the bearer token (resolvers/tokens.py)."""

from dataclasses import dataclass

from models.enums import Role


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: int | None
    role: Role | None
    email: str | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


ANONYMOUS = Viewer(user_id=None, role=None)
