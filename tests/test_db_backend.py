"""A request that finds every pooled connection busy fails after DB_ACQUIRE_TIMEOUT_SECONDS
instead of hanging: for single queries and for transactions (Tortoise's own transactions
would wait forever)."""

from __future__ import annotations

import asyncio
import time

import pytest

from divide_support.core.database import ConnectionParams
from divide_support.core.db_backend import TimedAsyncpgDBClient


@pytest.fixture
async def one_connection_pool(db, service_database: ConnectionParams):
    client = TimedAsyncpgDBClient(connection_name="pool-test", minsize=1, maxsize=1,
                                  acquire_timeout=0.3, **service_database.dsn_kwargs())
    await client.create_connection(with_db=True)
    yield client
    await client.close()


async def test_a_transaction_gives_up_waiting_for_a_busy_pool(one_connection_pool):
    async def open_a_transaction() -> None:
        async with one_connection_pool._in_transaction():
            pass

    async with one_connection_pool.acquire_connection():  # the only connection, held
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            # the outer bound only keeps a regression from hanging the suite
            await asyncio.wait_for(open_a_transaction(), 10)
        assert time.monotonic() - started < 3


async def test_a_query_gives_up_waiting_for_a_busy_pool(one_connection_pool):
    async with one_connection_pool._in_transaction():
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            async with one_connection_pool.acquire_connection():
                pass
        assert time.monotonic() - started < 3
    # and once free, both work again
    async with one_connection_pool._in_transaction() as conn:
        assert await conn.execute_query_dict("SELECT 1 AS one") == [{"one": 1}]
