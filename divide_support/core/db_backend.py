"""Tortoise asyncpg backend with a bounded wait for a pooled connection.

Tortoise's pool waits forever when all connections are busy; under load that
turns into hung requests instead of a clear 503. ACQUIRE_TIMEOUT bounds it.
"""

from __future__ import annotations

import time
from typing import Any

from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.client import PoolConnectionWrapper

from divide_support.core.metrics import DB_POOL_ACQUIRE


class _TimedPoolConnectionWrapper(PoolConnectionWrapper):
    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        started = time.perf_counter()
        try:
            self.connection = await self.client._pool.acquire(timeout=self.client.acquire_timeout)
        finally:  # a timed-out wait counts too: it is the one worth seeing
            DB_POOL_ACQUIRE.observe(time.perf_counter() - started)
        return self.connection


class TimedAsyncpgDBClient(AsyncpgDBClient):
    def __init__(self, *args: Any, acquire_timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = float(acquire_timeout)

    def acquire_connection(self) -> Any:
        return _TimedPoolConnectionWrapper(self, self._pool_init_lock)


client_class = TimedAsyncpgDBClient
