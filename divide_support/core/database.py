"""Database connection: a PostgreSQL server from DATABASE_URL, or an embedded one.

With no DATABASE_URL every command starts (or joins) an embedded PostgreSQL
(pgserver) whose data lives in DIVIDE_SUPPORT_DATA_DIR. pgserver counts the
processes using one data folder under an inter-process lock, so `serve` and a
`seed` run at the same time share the server, and the last one out stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from divide_support.core.settings import Settings, get_settings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "divide_support"
# The embedded default's service role: `migrate` creates it; every other command connects as it.
EMBEDDED_SERVICE_ROLE = "divide_support_app"

MODEL_MODULES = [
    "divide_support.accounts.models",
    "divide_support.people.models",
    "divide_support.scheduling.models",
    "divide_support.followups.models",
    "divide_support.audit.models",
    "divide_support.messaging.models",
    "divide_support.reports.models",
]
APP_LABEL = "divide_support"

# Advisory lock keys: serialise migrations and seeding across processes.
MIGRATE_LOCK = 7_410_001
SEED_LOCK = 7_410_002


@dataclass(frozen=True)
class ConnectionParams:
    host: str
    port: int
    user: str
    password: str | None
    database: str

    def dsn_kwargs(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
        }


def parse_database_url(url: str) -> ConnectionParams:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "asyncpg"):
        raise ValueError("DATABASE_URL must start with postgres:// or postgresql://")
    query = parse_qs(parts.query)
    host = unquote(parts.hostname or "") or query.get("host", ["127.0.0.1"])[0]
    return ConnectionParams(
        host=host,
        port=parts.port or int(query.get("port", ["5432"])[0]),
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        database=(parts.path or "/").lstrip("/") or "postgres",
    )


_embedded_server: Any = None


def start_embedded_server(data_dir: Path) -> ConnectionParams:
    """Start or join the embedded PostgreSQL in data_dir; returns its socket params."""
    global _embedded_server
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    if _embedded_server is None:
        _embedded_server = pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")
    maintenance = parse_database_url(_embedded_server.get_uri())
    return ConnectionParams(
        host=maintenance.host,
        port=maintenance.port,
        user=maintenance.user,
        password=None,
        database=EMBEDDED_DATABASE,
    )


async def ensure_database_exists(params: ConnectionParams) -> None:
    """Create the target database if missing (embedded mode and tests)."""
    conn = await asyncpg.connect(**{**params.dsn_kwargs(), "database": "postgres"})
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", params.database)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f'CREATE DATABASE "{params.database}" ENCODING \'UTF8\'')
    finally:
        await conn.close()


@dataclass(frozen=True)
class DatabaseRoles:
    """Who connects for what (see core/dbroles.py): `migrate` as the owner, everything else
    as the service, to which `migrate` grants the service's privileges."""

    owner: ConnectionParams
    service: ConnectionParams
    service_role: str
    # embedded mode: `migrate` creates the service role when it is missing
    create_service_role: bool = False


async def resolve_roles(settings: Settings | None = None) -> DatabaseRoles:
    """DATABASE_URL is the service; DATABASE_OWNER_URL (unset: the same) runs migrations.
    Embedded: the cluster's superuser runs migrations, the service is EMBEDDED_SERVICE_ROLE
    (pgserver's cluster trusts local socket connections, so it logs in without a password)."""
    settings = settings or get_settings()
    if settings.database_url:
        service = parse_database_url(settings.database_url)
        owner = parse_database_url(settings.database_owner_url) if settings.database_owner_url \
            else service
        return DatabaseRoles(owner, service, settings.database_service_role or service.user)
    owner = await asyncio.to_thread(start_embedded_server, settings.data_dir)
    await ensure_database_exists(owner)
    service = ConnectionParams(owner.host, owner.port, EMBEDDED_SERVICE_ROLE, None, owner.database)
    return DatabaseRoles(owner, service, EMBEDDED_SERVICE_ROLE, create_service_role=True)


async def resolve_connection(settings: Settings | None = None) -> ConnectionParams:
    """What the service connects as."""
    return (await resolve_roles(settings)).service


def tortoise_config(params: ConnectionParams, settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    return {
        "connections": {
            "default": {
                "engine": "divide_support.core.db_backend",
                "credentials": {
                    **params.dsn_kwargs(),
                    "minsize": settings.db_pool_min,
                    "maxsize": max(settings.db_pool_min, settings.db_pool_max),
                    "command_timeout": settings.db_statement_timeout_seconds,
                    "acquire_timeout": settings.db_acquire_timeout_seconds,
                },
            }
        },
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "divide_support.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


@contextlib.asynccontextmanager
async def advisory_lock(params: ConnectionParams, key: int) -> AsyncIterator[None]:
    """Hold a session-level advisory lock on a dedicated connection."""
    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", key)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", key)
    finally:
        await conn.close()
