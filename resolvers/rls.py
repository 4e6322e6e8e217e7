"""The viewer of a transaction, for PostgreSQL's row-level security (migration 0010).

Every statement the application runs on a customer table runs in a transaction whose
first act is `cg_set_viewer(id, role)`: the policies read `cg.viewer_id` / `cg.viewer_role`
(set locally, gone at COMMIT/ROLLBACK), so a pooled connection never carries a viewer over
to the next request, and a transaction that sets none sees no customer rows at all.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers.viewer import Viewer

SET_VIEWER = text("SELECT cg_set_viewer(:viewer_id, :viewer_role)").bindparams(
    bindparam("viewer_id", type_=BigInteger), bindparam("viewer_role", type_=String)
)


async def set_viewer(conn: AsyncConnection, viewer: Viewer) -> None:
    """The first statement of a transaction (SQLAlchemy begins it with this statement)."""
    role = viewer.role.value if viewer.role else None
    await conn.execute(SET_VIEWER, {"viewer_id": viewer.user_id, "viewer_role": role})
