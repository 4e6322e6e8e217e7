"""Creating users from the command line (the first admin, sales reps)."""

from sqlalchemy import insert, select

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


DEMO_ADMIN = "admin@demo.example"


async def demo_admin_token(url: str) -> str:
    """A fresh token for the demo admin (created on first use), for `serve --demo`."""
    engine = make_engine(url, pool_size=1)
    user = AppUser.__table__
    try:
        async with engine.begin() as conn:
            user_id = (
                await conn.execute(select(user.c.id).where(user.c.email == DEMO_ADMIN))
            ).scalar()
            if user_id is None:
                user_id = (
                    await conn.execute(
                        insert(user)
                        .values(
                            email=DEMO_ADMIN, role="ADMIN", first_name="Demo", last_name="Admin"
                        )
                        .returning(user.c.id)
                    )
                ).scalar_one()
        return await issue_token(engine, user_id, name="demo", days=30)
    finally:
        await engine.dispose()
