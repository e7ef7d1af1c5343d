"""Tortoise asyncpg backend with a bounded wait for a pooled connection, taking a DSN.

Tortoise's pool waits forever when all connections are busy; under load that
turns into hung requests instead of a clear 503. ACQUIRE_TIMEOUT bounds it.

Tortoise hands asyncpg host, port, user, password and database one by one, so the
parameters of DATABASE_URL (sslmode, application_name, ...) would be lost; with `dsn`
the pool is created from the URL itself, and only what was given explicitly next to
it (ConnectionParams.dsn_kwargs) overrides the URL.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.client import PoolConnectionWrapper


class _TimedPoolConnectionWrapper(PoolConnectionWrapper):
    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        self.connection = await self.client._pool.acquire(timeout=self.client.acquire_timeout)
        return self.connection


_CONNECTION_FIELDS = ("host", "port", "user", "password", "database")


class TimedAsyncpgDBClient(AsyncpgDBClient):
    def __init__(self, *args: Any, acquire_timeout: float = 10.0, dsn: str | None = None,
                 **kwargs: Any) -> None:
        self.dsn = dsn
        self._explicit = {key for key in _CONNECTION_FIELDS if key in kwargs}
        super().__init__(*args, **kwargs)
        self.acquire_timeout = float(acquire_timeout)

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        if not self.dsn:
            return await super().create_pool(**kwargs)
        for key in _CONNECTION_FIELDS:
            if key not in self._explicit:
                kwargs.pop(key, None)  # Tortoise's default (e.g. port 5432) must not beat the URL
        return await asyncpg.create_pool(self.dsn, **kwargs)

    def acquire_connection(self) -> Any:
        return _TimedPoolConnectionWrapper(self, self._pool_init_lock)


client_class = TimedAsyncpgDBClient
