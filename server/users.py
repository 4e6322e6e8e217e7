"""Creating users from the command line (the first admin, sales reps)."""

from sqlalchemy import insert

from models import AppUser
from server.auth import issue_token
from server.database import make_engine


async def create_user(
    url: str,
    *,
    email: str,
    role: str,
    first_name: str | None = None,
    last_name: str | None = None,
    token_days: int | None = 90,
) -> str:
    """Insert the user and return a fresh API token (the only time it is shown)."""
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            user_id = (
                await conn.execute(
                    insert(AppUser.__table__)
                    .values(email=email, role=role, first_name=first_name, last_name=last_name)
                    .returning(AppUser.__table__.c.id)
                )
            ).scalar_one()
        return await issue_token(engine, user_id, name="cli", days=token_days or None)
    finally:
        await engine.dispose()
