"""`serve --workers N` sizes each worker's pool so all of them fit in max_connections."""

from sqlalchemy import text

from server.database import pool_size_for, sized_pool


async def test_pools_of_every_worker_fit_in_the_server(engine, database_url):
    async with engine.connect() as conn:
        limit = int((await conn.execute(text("SHOW max_connections"))).scalar_one())
        reserved = int(
            (await conn.execute(text("SHOW superuser_reserved_connections"))).scalar_one()
        )
        reserved += int(
            (
                await conn.execute(text("SELECT current_setting('reserved_connections', true)"))
            ).scalar_one()
            or 0
        )
    sizes = {workers: await sized_pool(database_url, workers) for workers in (1, 2, 4, 8)}
    assert sizes[1] == min(10, (limit - reserved - 5 - 1) // 3)
    assert list(sizes.values()) == sorted(sizes.values(), reverse=True)
    for workers, pool in sizes.items():
        # pool + 2 x overflow + 1 LISTEN connection per worker, 5 kept free
        assert workers * (3 * pool + 1) + reserved + 5 <= limit, (workers, pool)


def test_small_servers_still_get_a_connection_per_worker():
    assert pool_size_for(max_connections=20, reserved=3, workers=8) == 1
    assert pool_size_for(max_connections=500, reserved=3, workers=2) == 10
    assert pool_size_for(max_connections=100, reserved=3, workers=4) == 7
