"""Tortoise asyncpg backend with a bounded wait for a pooled connection, taking a DSN.

Tortoise's pool waits forever when all connections are busy; under load that
turns into hung requests instead of a clear 503. ACQUIRE_TIMEOUT bounds it, for
single queries and for transactions alike.

Tortoise hands asyncpg host, port, user, password and database one by one, so the
parameters of DATABASE_URL (sslmode, application_name, ...) would be lost; with `dsn`
the pool is created from the URL itself, and only what was given explicitly next to
it (ConnectionParams.dsn_kwargs) overrides the URL.

A request runs on one pooled connection (request_connection, RequestConnectionMiddleware), not
on one per statement, and a connection goes back to the pool without asyncpg's reset
statements (_keep_session_state).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    PoolConnectionWrapper,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.connection import connections, get_connections
from tortoise.exceptions import ConfigurationError, TransactionManagementError

from divide_support.core.metrics import DB_POOL_ACQUIRE


class _TimedPoolConnectionWrapper(PoolConnectionWrapper):
    async def __aenter__(self) -> Any:
        self.connection = await _acquire(self.client)
        return self.connection


class _TimedTransactionContext(TransactionContextPooled):
    """Tortoise's own __aenter__, with the timed acquire (Tortoise 1.1's waits forever)."""

    async def __aenter__(self) -> Any:
        self.client._connection = await _acquire(self.client._parent)
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
        kwargs.setdefault("reset", _keep_session_state)
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


async def _keep_session_state(connection: asyncpg.Connection) -> None:
    """The pool's reset on release, instead of asyncpg's default four statements
    (pg_advisory_unlock_all, CLOSE ALL, UNLISTEN *, RESET ALL), one round trip per release.
    The service leaves no session state on a pooled connection to undo: settings are SET LOCAL
    and locks pg_advisory_xact_lock (both end with their transaction), it opens no cursor
    outside a transaction and LISTENs nowhere; session-level advisory locks (migrate, seed) take a
    connection of their own (core/database.advisory_lock). asyncpg still rolls back a transaction
    left open before calling this."""


async def _acquire(parent: TimedAsyncpgDBClient) -> asyncpg.Connection:
    if not parent._pool:
        async with parent._pool_init_lock:
            if not parent._pool:
                await parent.create_connection(with_db=True)
    started = time.perf_counter()
    try:
        return await parent._pool.acquire(timeout=parent.acquire_timeout)
    finally:  # a timed-out wait counts too: it is the one worth seeing
        DB_POOL_ACQUIRE.observe(time.perf_counter() - started)


class _RequestConnectionWrapper:
    """Tortoise's ConnectionWrapper, taking the pooled connection on first use: a request that
    never touches the database holds none."""

    __slots__ = ("client",)

    def __init__(self, client: RequestClient) -> None:
        self.client = client

    async def __aenter__(self) -> asyncpg.Connection:
        await self.client._lock.acquire()
        try:
            if self.client._connection is None:
                self.client._connection = await _acquire(self.client._parent)
        except BaseException:
            self.client._lock.release()
            raise
        return self.client._connection

    async def __aexit__(self, *exc: object) -> None:
        self.client._lock.release()


class _RequestTransactionContext(TransactionContext):
    """A transaction on the request's connection. It holds the connection's lock until it ends,
    so a resolver running beside it waits instead of slipping its statements into it."""

    def __init__(self, client: RequestClient) -> None:
        self.client = client
        self.connection_name = client.connection_name

    async def __aenter__(self) -> TransactionWrapper:
        self.wrapper = _RequestConnectionWrapper(self.client)
        connection = await self.wrapper.__aenter__()
        try:
            self.transaction = TransactionWrapper(self.client)
            self.transaction._connection = connection
            self.token = get_connections().set(self.connection_name, self.transaction)
            await self.transaction.begin()
        except BaseException:
            await self.wrapper.__aexit__()
            raise
        return self.transaction

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            if not self.transaction._finalized:
                if exc_type:
                    if exc_type is not TransactionManagementError:
                        await self.transaction.rollback()
                else:
                    await self.transaction.commit()
        finally:
            get_connections().reset(self.token)
            await self.wrapper.__aexit__()


class RequestClient(AsyncpgDBClient):
    """The `default` connection while one request runs (see request_connection): every query and
    transaction of the request on one pooled connection, one statement at a time, instead of a
    pool acquire and release around each query."""

    def __init__(self, parent: TimedAsyncpgDBClient) -> None:
        # Like Tortoise's TransactionWrapper: a view of the parent, not a client of its own.
        self._parent = parent
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self.log = parent.log
        self.connection_name = parent.connection_name
        self.fetch_inserted = parent.fetch_inserted
        self.capabilities = parent.capabilities

    @property
    def _pool(self) -> asyncpg.Pool | None:  # the pool's gauges (core/metrics.py) read it
        return self._parent._pool

    def acquire_connection(self) -> Any:
        return _RequestConnectionWrapper(self)

    def _in_transaction(self) -> TransactionContext:
        return _RequestTransactionContext(self)

    async def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await self._parent._pool.release(connection)


@contextlib.asynccontextmanager
async def request_connection() -> AsyncIterator[None]:
    """While the block runs, the `default` Tortoise connection is one pooled connection, taken
    at the first statement and given back at the end."""
    try:
        parent = connections.get("default")
    except ConfigurationError:  # no ORM yet (a command that has not initialised it)
        parent = None
    if not isinstance(parent, TimedAsyncpgDBClient):  # already inside one (or a transaction)
        yield
        return
    client = RequestClient(parent)
    token = get_connections().set("default", client)
    try:
        yield
    finally:
        get_connections().reset(token)
        await client.release()


class RequestConnectionMiddleware:
    """Each HTTP request (the API and the console alike) on one database connection."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with request_connection():
            await self.app(scope, receive, send)


client_class = TimedAsyncpgDBClient
