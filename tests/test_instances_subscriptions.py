"""The per-user subscription limit counts every instance (server/notify.py): two hubs on
one database stand for two instances (each worker has its own hub and instance id)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from resolvers.timeline import TooManySubscriptions
from server.notify import TimelineHub
from tests.factories import make_user


@contextlib.asynccontextmanager
async def hubs(app_engine, n: int, **kw) -> AsyncIterator[list[TimelineHub]]:
    made = [TimelineHub(app_engine, max_pending=100, **{"max_per_user": 2, **kw}) for _ in range(n)]
    try:
        yield made
    finally:
        for hub in made:
            await hub.close()


async def leases(engine, user_id: int | None = None) -> int:
    async with engine.connect() as conn:
        sql = "SELECT count(*) FROM subscription_lease"
        if user_id is None:
            return (await conn.execute(text(sql))).scalar_one()
        sql += " WHERE user_id = :u"
        return (await conn.execute(text(sql), {"u": user_id})).scalar_one()


async def refused(hub: TimelineHub, user_id: int) -> bool:
    try:
        async with hub.subscribe(user_id, None):
            return False
    except TooManySubscriptions:
        return True


async def test_the_limit_counts_both_instances(app_engine, engine):
    user, _ = await make_user(engine, role="ADMIN", email="boss@example.com")
    other, _ = await make_user(engine, role="ADMIN", email="other@example.com")
    async with hubs(app_engine, 2) as (a, b), contextlib.AsyncExitStack() as held:
        await held.enter_async_context(a.subscribe(user, None))
        assert not await refused(b, other)  # another user's count is their own
        await held.enter_async_context(b.subscribe(user, None))
        assert await leases(engine, user) == 2
        # each hub holds one: alone neither would refuse
        assert await refused(a, user) and await refused(b, user)
        await held.aclose()  # both end: their rows go
        assert await leases(engine) == 0
        async with a.subscribe(user, None), a.subscribe(user, None):
            assert await refused(b, user)


async def test_subscribing_at_once_through_two_instances_admits_the_limit(app_engine, engine):
    user, _ = await make_user(engine, role="ADMIN", email="boss@example.com")
    admitted = 0
    release = asyncio.Event()

    async def attempt(hub: TimelineHub) -> None:
        nonlocal admitted
        with contextlib.suppress(TooManySubscriptions):
            async with hub.subscribe(user, None):
                admitted += 1
                await release.wait()

    async with hubs(app_engine, 2, max_per_user=3) as (a, b):
        tasks = [asyncio.create_task(attempt(hub)) for hub in (a, b) * 5]
        for _ in range(200):
            if sum(t.done() for t in tasks) == 7:
                break
            await asyncio.sleep(0.05)
        assert admitted == 3 and await leases(engine, user) == 3
        release.set()
        await asyncio.gather(*tasks)
    assert await leases(engine) == 0


async def test_rows_of_a_dead_instance_expire(app_engine, engine):
    user, _ = await make_user(engine, role="ADMIN", email="boss@example.com")
    dead = uuid.uuid4()
    async with engine.begin() as conn:  # an instance that died: its rows are not renewed
        for seconds in (-1, 60):
            await conn.execute(
                text(
                    "INSERT INTO subscription_lease VALUES (gen_random_uuid(), :i, :u,"
                    " clock_timestamp() + make_interval(secs => :s))"
                ),
                {"i": dead, "u": user, "s": seconds},
            )
    async with hubs(app_engine, 1, lease_seconds=0.6) as (hub,):
        async with hub.subscribe(user, None):  # the expired row does not count
            assert await refused(hub, user)  # the unexpired one does
            await asyncio.sleep(0.5)  # a renewal ran: it deleted the expired row
            assert await leases(engine, user) == 2
        assert await leases(engine, user) == 1


async def test_renewal_writes_the_rows_again_after_a_crash_emptied_the_table(app_engine, engine):
    user, _ = await make_user(engine, role="ADMIN", email="boss@example.com")
    async with hubs(app_engine, 2, lease_seconds=0.6) as (a, b):
        async with a.subscribe(user, None), a.subscribe(user, None):
            async with engine.begin() as conn:  # what a crash does to an UNLOGGED table
                await conn.execute(text("TRUNCATE subscription_lease"))
            await asyncio.sleep(0.5)
            assert await leases(engine, user) == 2
            assert await refused(b, user)
        assert await leases(engine) == 0


async def test_closing_a_hub_ends_its_leases(app_engine, engine):
    user, _ = await make_user(engine, role="ADMIN", email="boss@example.com")
    async with hubs(app_engine, 1) as (hub,):
        entered = hub.subscribe(user, None)
        await entered.__aenter__()  # a subscription the worker's shutdown cuts off
        assert await leases(engine, user) == 1
        await hub.close()
        assert await leases(engine, user) == 0
        hub.subscribers.clear()


@pytest.mark.parametrize("limit", [1])
async def test_the_message_names_no_worker(app_engine, engine, limit):
    user, _ = await make_user(engine, role="ADMIN", email="boss@example.com")
    async with hubs(app_engine, 1, max_per_user=limit) as (hub,), hub.subscribe(user, None):
        with pytest.raises(TooManySubscriptions) as error:
            async with hub.subscribe(user, None):
                pass
    assert str(error.value) == "At most 1 live subscriptions per user."
