"""A mutation's timeline events travel with its COMMIT as a dollar-quoted literal
(resolvers/timeline.commit): whatever text they hold, they are stored as written and
nothing in them can end the literal."""

from __future__ import annotations

from sqlalchemy import text

from resolvers import timeline
from tests.factories import make_customer

TRICKY = [
    "$cg$'); DROP TABLE customer; --",
    'it\'s a "quote" \\ backslash $$ and $cg$ and $cgdeadbeef$ and ${}',
    "naïve café ✓ {braces} {events}",
]


async def test_staged_events_commit_verbatim_whatever_text_they_hold(engine):
    customer = await make_customer(engine)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        pg = (await conn.get_raw_connection()).driver_connection
        await pg.execute("BEGIN")
        timeline.stage(conn)
        for summary in TRICKY:
            staged = await timeline.record(
                conn, customer.id, "NOTE_ADDED", summary, actor_id=None, data={"memo": summary}
            )
            assert staged is None  # kept for the COMMIT message
        await timeline.commit(conn, pg)
        assert not pg.is_in_transaction()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT summary, data FROM timeline_event WHERE customer_id = :c ORDER BY id"),
                {"c": customer.id},
            )
        ).all()
        assert (await conn.execute(text("SELECT count(*) FROM customer"))).scalar_one() >= 1
    assert [(r.summary, r.data) for r in rows] == [(s, {"memo": s}) for s in TRICKY]


def test_the_literal_tag_is_one_the_events_do_not_contain():
    events = '[{"summary": "$cg$ and more"}]'
    sql = timeline._flush_and_commit(events)
    assert "$cg$" not in sql.replace(events, "")  # another tag was drawn
    tag = sql.split(events)[0].rsplit("$", 2)[-2]
    assert tag.startswith("cg") and f"${tag}$" not in events
