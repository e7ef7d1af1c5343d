"""Tortoise asyncpg backend with a bounded wait for a pooled connection, taking a DSN.

Tortoise's pool waits forever when all connections are busy; under load that
turns into hung requests instead of a clear 503. ACQUIRE_TIMEOUT bounds it, for
single queries and for transactions alike.

Tortoise hands asyncpg host, port, user, password and database one by one, so the
parameters of DATABASE_URL (sslmode, application_name, ...) would be lost; with `dsn`
the pool is created from the URL itself, and only what was given explicitly next to
it (ConnectionParams.dsn_kwargs) overrides the URL.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    PoolConnectionWrapper,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.connection import get_connections

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


class _TimedTransactionContext(TransactionContextPooled):
    """Tortoise's own __aenter__, with the timed acquire (Tortoise 1.1's waits forever)."""

    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        started = time.perf_counter()
        try:
            self.client._connection = await self.client._parent._pool.acquire(
                timeout=self.client._parent.acquire_timeout)
        finally:
            DB_POOL_ACQUIRE.observe(time.perf_counter() - started)
        self.token = get_connections().set(self.connection_name, self.client)
        await self.client.begin()
        return self.client


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

    def _in_transaction(self) -> TransactionContext:
        return _TimedTransactionContext(TransactionWrapper(self), self._pool_init_lock)


client_class = TimedAsyncpgDBClient
