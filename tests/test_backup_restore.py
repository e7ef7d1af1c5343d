"""Backup and restore as SECURITY.md tells operators: pg_dump (custom format) of a database in
use, pg_restore into a fresh database, `divide-support migrate` (nothing to apply; it grants the
service role again), then `divide-support serve` on it answers with the same rows, and the
service role still cannot touch the restored audit trail."""

from __future__ import annotations

import asyncio
import secrets
import signal
from dataclasses import replace

import asyncpg
import factories
import httpx
import pg_tools
import pytest
from audit_tamper import audit_rows, refused_everywhere, tampering_outcomes
from conftest import database_url as _url
from factories import at
from test_cli import _env, _free_port, _start_serve, _wait_for, run_cli

from divide_support.core.actor import Role
from divide_support.core.database import ConnectionParams
from divide_support.scheduling import service as scheduling

SESSIONS = """{ sessions { totalCount edges { node { title startsAt capacity seatsTaken
  registrations { edges { node { status waitlistPosition
    resident { familyName givenName phone } } } } } } } }"""


@pytest.fixture
async def restored_name(database: ConnectionParams):
    """A fresh, empty database to restore into (dropped afterwards)."""
    name = f"ds_restore_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(**{**database.dsn_kwargs(), "database": "postgres"})
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield name
    conn = await asyncpg.connect(**{**database.dsn_kwargs(), "database": "postgres"})
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _session_rows(client: httpx.AsyncClient, token: str) -> dict:
    response = await client.post("/graphql", json={"query": SESSIONS},
                                 headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def test_a_dump_restores_into_a_fresh_database_and_the_service_starts_on_it(
        town, client, database, service_database, restored_name, tmp_path):
    # A database in use, filled through the services.
    people = [await factories.resident(town.coordinator, family, sms=True)
              for family in ("山田", "佐藤", "鈴木")]
    session = await factories.session(town.coordinator, at(days=5, hour=10), capacity=2)
    for person in people:
        await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=person.id)
    token = town.tokens[Role.ADMIN]
    original = await _session_rows(client, token)
    assert original["sessions"]["totalCount"] == 1
    assert len(original["sessions"]["edges"][0]["node"]["registrations"]["edges"]) == 3
    original_audit = await audit_rows(database)
    assert len(original_audit) >= 5

    major = await pg_tools.server_major_version(database)
    pg_dump, pg_restore = pg_tools.pg_program("pg_dump", major), pg_tools.pg_program("pg_restore", major)

    # The operator's commands (SECURITY.md, "Backup and restore"), as the owner.
    dump = tmp_path / "divide-support.dump"
    args, env = pg_tools.libpq_args(database)
    dumped = await pg_tools.run([str(pg_dump), *args, "--format=custom", f"--file={dump}",
                         database.database], env)
    assert dumped.returncode == 0, dumped.stderr
    restored = await pg_tools.run([str(pg_restore), *args, "--no-owner", "--no-acl", "--exit-on-error",
                           "--single-transaction", f"--dbname={restored_name}", str(dump)], env)
    assert restored.returncode == 0, restored.stderr

    owner = replace(database, database=restored_name)
    service = replace(service_database, database=restored_name)
    assert await audit_rows(owner) == original_audit
    # --no-acl: the service role holds nothing on the restored tables until `migrate` grants it.
    conn = await asyncpg.connect(**service.dsn_kwargs())
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT 1 FROM resident")
    finally:
        await conn.close()

    cli_env = _env(_url(service, restored_name), DATABASE_OWNER_URL=_url(owner, restored_name))
    migrated = await run_cli("migrate", env=cli_env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "変更なし" in migrated.stdout

    port = _free_port()
    process = await asyncio.to_thread(_start_serve, cli_env, tmp_path, port)
    try:
        assert await asyncio.to_thread(_wait_for, f"http://127.0.0.1:{port}/readyz", 120) == 200
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as served:
            ready = await served.get("/readyz")
            assert ready.json() == {"status": "ok", "database": "ok"}
            assert await _session_rows(served, token) == original
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)
    assert process.returncode == 0
    log = (tmp_path / f"serve-{port}.log").read_text()
    assert "NOT protected" not in log and "Traceback" not in log

    # The restored trail: whole, still guarded by its trigger, and closed to the service role.
    before = await audit_rows(owner)
    assert before[:len(original_audit)] == original_audit
    outcomes = await tampering_outcomes(service)
    assert refused_everywhere(outcomes), outcomes
    assert (await tampering_outcomes(owner))["UPDATE"] == "RaiseError"
    assert await audit_rows(owner) == before
