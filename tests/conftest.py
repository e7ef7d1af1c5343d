"""Test fixtures: a real PostgreSQL (TEST_DATABASE_URL, or an embedded pgserver), migrated
once per run by the server's superuser; the application runs as a service role of its own, as
in production; every test starts from empty tables. Nothing inside the process is mocked."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from tortoise import Tortoise

from divide_support.accounts import service as accounts
from divide_support.accounts.models import AuthToken, Municipality, User
from divide_support.core.actor import Actor, Role
from divide_support.core.database import (
    APP_LABEL,
    ConnectionParams,
    ensure_database_exists,
    parse_database_url,
    start_embedded_server,
    tortoise_config,
)
from divide_support.core.dbroles import ensure_login_role
from divide_support.core.migrate import apply_migrations
from divide_support.core.settings import get_settings

os.environ.setdefault("LOG_LEVEL", "WARNING")

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def server_params() -> ConnectionParams:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        base = parse_database_url(url)
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="divide-support-test-"))
        base = start_embedded_server(data_dir)
        # the data folder is removed at exit; the server stops with its last user
        import atexit

        atexit.register(shutil.rmtree, data_dir, True)
    name = f"ds_test_{os.getpid()}_{secrets.token_hex(3)}"
    return ConnectionParams(host=base.host, port=base.port, user=base.user,
                            password=base.password, database=name)


@pytest.fixture(scope="session")
async def service_database(server_params: ConnectionParams) -> AsyncIterator[ConnectionParams]:
    """The test database as this run's own service role: a throw-away login role (unique
    name, random password) that owns nothing; `migrate` grants it what the service needs, as
    in production. The application under test (Tortoise, served apps) connects as it, so a
    missing grant fails the tests. Dropped at the end, after the database."""
    role = f"ds_test_app_{os.getpid()}_{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(18)
    conn = await asyncpg.connect(**{**server_params.dsn_kwargs(), "database": "postgres"})
    try:
        await ensure_login_role(conn, role, password)
    finally:
        await conn.close()
    yield replace(server_params, user=role, password=password)
    conn = await asyncpg.connect(**{**server_params.dsn_kwargs(), "database": "postgres"})
    try:
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database(server_params: ConnectionParams,
                   service_database: ConnectionParams) -> AsyncIterator[ConnectionParams]:
    """The test database as the server's superuser, who owns the tables (migrations, set-up
    SQL, TRUNCATE between tests). Tortoise is initialised as `service_database`."""
    await ensure_database_exists(server_params)
    await apply_migrations(server_params, service_role=service_database.user, quiet=True)
    await Tortoise.init(config=tortoise_config(service_database))
    yield server_params
    await Tortoise.close_connections()
    conn = await asyncpg.connect(**{**server_params.dsn_kwargs(), "database": "postgres"})
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{server_params.database}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def owner_connection(database: ConnectionParams) -> AsyncIterator[asyncpg.Connection]:
    """One connection as the owner, for what the service role may not do (TRUNCATE)."""
    conn = await asyncpg.connect(**database.dsn_kwargs())
    yield conn
    await conn.close()


def _tables() -> str:
    """Every model's table, from the models themselves (a new model is emptied too)."""
    return ", ".join(sorted(model._meta.db_table for model in Tortoise.apps[APP_LABEL].values()))


# The secret of the planners' report noise (reports/cellkey.py), fixed in the tests so that
# every planner number is the same on every run (the migration draws a random one).
TEST_REPORT_KEY = hashlib.sha256(b"divide-support test report key").digest()


@pytest.fixture
async def db(database: ConnectionParams, owner_connection: asyncpg.Connection) -> ConnectionParams:
    # The owner empties the tables: the service role has no TRUNCATE (least of all on the audit log).
    await owner_connection.execute(f"TRUNCATE {_tables()} RESTART IDENTITY CASCADE")
    await owner_connection.execute(
        "INSERT INTO report_key_secret (id, secret) VALUES (1, $1)"
        " ON CONFLICT (id) DO UPDATE SET secret = EXCLUDED.secret", TEST_REPORT_KEY)
    return database


@dataclass
class Town:
    municipality: Municipality
    admin: Actor
    coordinator: Actor
    planner: Actor
    tokens: dict[Role, str]


_PASSWORD_HASH: dict[str, str] = {}


async def _make_town(code: str, name: str, prefix: str) -> Town:
    """Users and tokens written directly: argon2 is deliberately slow, and hashing for
    every test would dominate the run. Login itself is tested through the service."""
    if not _PASSWORD_HASH:
        _PASSWORD_HASH["hash"] = PasswordHasher().hash(PASSWORD)
    municipality = await Municipality.create(code=code, name=name, timezone="Asia/Tokyo",
                                             phone="0463-21-1111")
    tokens: dict[Role, str] = {}
    actors: dict[Role, Actor] = {}
    for role in (Role.ADMIN, Role.COORDINATOR, Role.PLANNER):
        user = await User.create(
            email=f"{prefix}-{role.value.lower()}@example.jp", role=role,
            municipality_id=municipality.id, password_hash=_PASSWORD_HASH["hash"],
            display_name=f"{name}{role.value}",
        )
        token = secrets.token_urlsafe(32)
        await AuthToken.create(user_id=user.id, token_hash=accounts.hash_token(token),
                               expires_at=datetime.now(UTC) + timedelta(hours=12))
        tokens[role] = token
        actor = await accounts.authenticate(token)
        assert actor is not None
        actors[role] = actor
    return Town(municipality, actors[Role.ADMIN], actors[Role.COORDINATOR], actors[Role.PLANNER],
                tokens)


@pytest.fixture
async def town(db) -> Town:
    """平塚市 with an admin, a coordinator and a planner, each logged in."""
    return await _make_town("142034", "平塚市", "hiratsuka")


@pytest.fixture
async def other_town(db) -> Town:
    """焼津市: another municipality whose data must never leak into 平塚市's answers."""
    return await _make_town("222127", "焼津市", "yaizu")


@pytest.fixture
def settings_env(monkeypatch) -> Iterator[object]:
    """settings_env(NAME=value, ...): the environment the next get_settings() reads (None
    removes a variable). Settings read per request follow at once; the middleware reads them
    when an app is made (make a new app after changing them)."""

    def apply(**env: str | None) -> None:
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    get_settings.cache_clear()
    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
async def console(db):
    """The staff console over HTTP in-process (tests/console_helpers.ConsoleClient), from a
    client address of its own (the login throttle counts per address)."""
    from console_helpers import ConsoleClient

    from divide_support.app import create_app

    transport = httpx.ASGITransport(app=create_app(init_orm=False), client=("192.0.2.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield ConsoleClient(c)


@pytest.fixture
async def console_server(database, tmp_path):
    """The service as staff reach it in a browser (tests/browser.py), on the test database;
    seed it with the usual fixtures."""
    from browser import start_server

    async for base in start_server(database, tmp_path):
        yield base


@pytest.fixture
async def client(db) -> AsyncIterator[httpx.AsyncClient]:
    from divide_support.app import create_app

    transport = httpx.ASGITransport(app=create_app(init_orm=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


class GraphQLClient:
    def __init__(self, client: httpx.AsyncClient, token: str | None) -> None:
        self.client = client
        self.token = token

    async def post(self, query: str, variables: dict[str, Any] | None = None,
                   **headers: str) -> httpx.Response:
        sent = {"Content-Type": "application/json", "Accept": "application/json", **headers}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        return await self.client.post("/graphql", json={"query": query, "variables": variables},
                                      headers=sent)

    async def __call__(self, query: str, variables: dict[str, Any] | None = None,
                       **headers: str) -> dict[str, Any]:
        response = await self.post(query, variables, **headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self(query, variables)
        assert "errors" not in body, body
        return body["data"]


@pytest.fixture
def gql(client: httpx.AsyncClient, town: Town):
    """gql(role) -> a client logged in with that role in 平塚市."""

    def make(role: Role | None = Role.COORDINATOR, token: str | None = None) -> GraphQLClient:
        return GraphQLClient(client, token or (town.tokens[role] if role else None))

    return make


class QueryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")):
            self.statements.append(message)


@pytest.fixture
def count_queries():
    """Counts SQL statements sent through Tortoise while the block runs."""
    logger = logging.getLogger("tortoise.db_client")

    class _Counter:
        def __enter__(self) -> QueryCounter:
            self.handler = QueryCounter()
            self.level = logger.level
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self.handler)
            return self.handler

        def __exit__(self, *exc: object) -> None:
            logger.removeHandler(self.handler)
            logger.setLevel(self.level)

    return _Counter


def database_url(params: ConnectionParams, database: str) -> str:
    if params.host.startswith("/"):
        return f"postgresql://{params.user}@/{database}?host={quote(params.host)}&port={params.port}"
    auth = params.user + (f":{quote(params.password)}" if params.password else "")
    return f"postgresql://{auth}@{params.host}:{params.port}/{database}"


@pytest.fixture
async def fresh_database(database: ConnectionParams):
    """An empty database of its own, with DATABASE_URL pointing at it."""
    name = f"ds_fresh_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(**{**database.dsn_kwargs(), "database": "postgres"})
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    yield database_url(database, name), ConnectionParams(database.host, database.port, database.user,
                                                 database.password, name)
    conn = await asyncpg.connect(**{**database.dsn_kwargs(), "database": "postgres"})
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()
