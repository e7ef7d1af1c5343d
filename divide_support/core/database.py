"""Database connection: a PostgreSQL server from DATABASE_URL, or an embedded one.

With no DATABASE_URL every command starts (or joins) an embedded PostgreSQL
(pgserver) whose data lives in DIVIDE_SUPPORT_DATA_DIR. pgserver counts the
processes using one data folder under an inter-process lock, so `serve` and a
`seed` run at the same time share the server, and the last one out stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from tortoise.exceptions import BaseORMException

from divide_support.core.dburl import EXAMPLE, read_database_url
from divide_support.core.errors import DomainError
from divide_support.core.settings import Settings, get_settings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "divide_support"
# The embedded default's service role: `migrate` creates it; every other command connects as it.
EMBEDDED_SERVICE_ROLE = "divide_support_app"
EMBEDDED_SOURCE = "組み込みPostgreSQL"

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
    """Where and as whom to connect.

    From DATABASE_URL or DATABASE_OWNER_URL, `dsn` is that URL, handed to asyncpg whole so that
    every libpq parameter in it applies (sslmode, sslrootcert, application_name, ...); the other
    fields say what it names, and one changed afterwards (`dataclasses.replace`, `{**kwargs}`)
    overrides the URL. Without `dsn` (the embedded server, tests) the fields are all there is.
    `source` names the setting it came from, for messages."""

    host: str
    port: int
    user: str
    password: str | None = field(repr=False)
    database: str
    dsn: str | None = field(default=None, repr=False)
    source: str = field(default="", compare=False)

    def dsn_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for asyncpg.connect / create_pool."""
        fields = {"host": self.host, "port": self.port, "user": self.user,
                  "password": self.password, "database": self.database}
        if not self.dsn:
            return fields
        named = read_database_url(self.dsn)
        return {"dsn": self.dsn,
                **{key: value for key, value in fields.items() if value != getattr(named, key)}}

    def describe(self) -> str:
        """`user@host:port/database`, never the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


def parse_database_url(url: str, source: str = "DATABASE_URL") -> ConnectionParams:
    """A libpq URL (see core/dburl.py); DatabaseUrlError when its form is wrong."""
    named = read_database_url(url)
    return ConnectionParams(host=named.host, port=named.port, user=named.user,
                            password=named.password, database=named.database, dsn=url.strip(),
                            source=source)


class DatabaseUnavailable(DomainError):
    """Connecting failed. The message is one Japanese line: which setting, what failed and what
    to check (host and port, user and password, database name, SSL, the URL's form), never the
    password. Every command prints it and exits 2."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__("DATABASE_UNAVAILABLE", message,
                         message_en=f"Could not connect to the database ({type(cause).__name__}).")
        self.cause = cause


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _ssl_files(params: ConnectionParams) -> dict[str, str]:
    query = parse_qs(urlsplit(params.dsn).query) if params.dsn else {}
    return {key: query[key][-1] for key in ("sslrootcert", "sslcert", "sslkey", "sslcrl", "passfile")
            if key in query}


def _reason(error: BaseException, params: ConnectionParams) -> str | None:
    """What went wrong and what to check, for one exception of a failed connection attempt."""
    if isinstance(error, BaseORMException):
        return None  # Tortoise's wrapper (DBConnectionError): its cause says what happened
    if isinstance(error, asyncpg.InvalidPasswordError):
        return (f"ユーザー「{params.user}」のパスワードが違います。ユーザー名とパスワードを確認してください"
                "（URL の中では @ : / などの記号を %40 のように書きます）")
    if isinstance(error, asyncpg.InvalidAuthorizationSpecificationError):
        if "does not exist" in str(error):
            return f"ロール（ユーザー）「{params.user}」がありません。ユーザー名を確認してください"
        return (f"サーバーがユーザー「{params.user}」のこの接続を許していません（pg_hba.conf）。"
                "ユーザー名・データベース名・接続元と sslmode を確認してください")
    if isinstance(error, asyncpg.InvalidCatalogNameError):
        return f"データベース「{params.database}」がありません。データベース名を確認してください"
    if isinstance(error, asyncpg.TooManyConnectionsError):
        return "サーバーの接続数が上限に達しています。ほかの接続を減らすか DB_POOL_MAX を下げてください"
    if isinstance(error, asyncpg.CannotConnectNowError):
        return "サーバーは起動中か停止中です。少し待ってからもう一度実行してください"
    if isinstance(error, asyncpg.UndefinedObjectError | asyncpg.InvalidParameterValueError):
        name = re.search(r'"([^"]+)"', str(error))
        return (f"サーバーが URL のパラメータ{f'「{name[1]}」' if name else ''}を受け付けません。"
                "? の後ろのパラメータの名前と値を確認してください")
    if isinstance(error, asyncpg.PostgresError):
        return (f"サーバーが接続を断りました（SQLSTATE {error.sqlstate}）。"
                "ユーザー名・データベース名・接続の許可を確認してください")
    if isinstance(error, ssl.SSLCertVerificationError):
        # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        if error.verify_code in (62, 64) or "mismatch" in str(error.verify_message).lower():
            return (f"サーバーの証明書はホスト「{params.host}」のものではありません（sslmode=verify-full）。"
                    "URL のホスト名を証明書の名前に合わせてください")
        return ("サーバーの証明書を確認できません。sslrootcert に発行元（CA）の証明書を指定しているか"
                "確認してください")
    if isinstance(error, ssl.SSLError):
        return "SSL での接続に失敗しました。sslmode とサーバーの SSL の設定を確認してください"
    if isinstance(error, asyncpg.ClientConfigurationError):
        return f"URL の設定を使えません（{error}）。URL の形を確認してください（例: {EXAMPLE}）"
    if isinstance(error, ConnectionRefusedError):
        return "接続を拒否されました。ホスト名とポート番号、サーバーが動いているかを確認してください"
    if isinstance(error, socket.gaierror):
        return f"ホスト名「{params.host}」が見つかりません。ホスト名を確認してください"
    if isinstance(error, TimeoutError):
        return "サーバーが応答しません。ホスト名とポート番号、ファイアウォールを確認してください"
    if isinstance(error, FileNotFoundError | PermissionError):
        for key, path in _ssl_files(params).items():
            if not os.access(path, os.R_OK):
                return f"{key} のファイル「{path}」を読めません。パスを確認してください"
        if isinstance(error, FileNotFoundError):
            return (f"ソケット（{params.host}）がありません。サーバーが動いているか、ホスト"
                    "（ソケットのフォルダ）とポート番号を確認してください")
    if type(error) is ConnectionError and "SSL" in str(error):
        return ("サーバーが SSL を使えません（この sslmode では SSL が必須です）。"
                "サーバーの SSL の設定か、URL の sslmode を確認してください")
    if isinstance(error, OSError):
        name = errno.errorcode.get(error.errno or 0, type(error).__name__)
        return f"接続できません（{name}）。ホスト名とポート番号、ネットワークを確認してください"
    return None


def connection_problem(error: BaseException, params: ConnectionParams) -> str | None:
    """One Japanese line for a failed attempt to connect as `params`; None when `error` is not
    about connecting."""
    for cause in _chain(error):
        reason = _reason(cause, params)
        if reason:
            return f"{params.source or 'データベース'}（{params.describe()}）に接続できません: {reason}"
    return None


@contextlib.asynccontextmanager
async def explain_connection_errors(params: ConnectionParams) -> AsyncIterator[None]:
    """Around connecting as `params` (nothing else): a failure becomes DatabaseUnavailable."""
    try:
        yield
    except Exception as error:
        problem = connection_problem(error, params)
        if problem is None:
            raise
        raise DatabaseUnavailable(problem, error) from error


async def connect(params: ConnectionParams, **kwargs: Any) -> asyncpg.Connection:
    """One connection as `params` (DatabaseUnavailable when that fails)."""
    async with explain_connection_errors(params):
        return await asyncpg.connect(**{**params.dsn_kwargs(), **kwargs})


_embedded_server: Any = None


def start_embedded_server(data_dir: Path) -> ConnectionParams:
    """Start or join the embedded PostgreSQL in data_dir; returns its socket params."""
    global _embedded_server
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    if _embedded_server is None:
        _embedded_server = pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")
    maintenance = read_database_url(_embedded_server.get_uri())
    return ConnectionParams(
        host=maintenance.host,
        port=maintenance.port,
        user=maintenance.user,
        password=None,
        database=EMBEDDED_DATABASE,
        source=EMBEDDED_SOURCE,
    )


async def ensure_database_exists(params: ConnectionParams) -> None:
    """Create the target database if missing (embedded mode and tests)."""
    conn = await connect(replace(params, database="postgres"))
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
        service = parse_database_url(settings.database_url, "DATABASE_URL")
        owner = parse_database_url(settings.database_owner_url, "DATABASE_OWNER_URL") \
            if settings.database_owner_url else service
        return DatabaseRoles(owner, service, settings.database_service_role or service.user)
    owner = await asyncio.to_thread(start_embedded_server, settings.data_dir)
    await ensure_database_exists(owner)
    service = replace(owner, user=EMBEDDED_SERVICE_ROLE)
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
    conn = await connect(params)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", key)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", key)
    finally:
        await conn.close()
