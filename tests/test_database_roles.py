"""The database protects the audit trail: the service runs as a role that can only read and
append to it; `divide-support migrate` (the owner) grants exactly that, on every run.

The attack of issue 9 (finding 7) is tried for real: first against the superuser connection
the application used to have (it works), then against the service role (it must not)."""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import asyncpg
import factories
import pytest
from audit_tamper import audit_rows, refused_everywhere, tampering_outcomes
from conftest import database_url as _url
from factories import at
from test_cli import SCRIPT, _env, _free_port, _serve_and_stop, _start_serve, _wait_for, run_cli

from divide_support.core.database import (
    EMBEDDED_DATABASE,
    EMBEDDED_SERVICE_ROLE,
    ConnectionParams,
    ensure_database_exists,
    parse_database_url,
)
from divide_support.core.dbroles import audit_trail_problems, ensure_login_role
from divide_support.core.migrate import apply_migrations
from divide_support.scheduling import service as scheduling

NOT_PROTECTED = "The audit trail is NOT protected"
SURVEY = Path(__file__).resolve().parents[1] / "seeds" / "surveys" / "hiratsuka-2020-internet-use.yaml"


async def _audited_activity(town) -> None:
    """A few changes through the services, each leaving an audit row."""
    first = await factories.resident(town.coordinator, "佐藤")
    second = await factories.resident(town.coordinator, "鈴木")
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    for person in (first, second):
        await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=person.id)


async def test_the_superuser_connection_could_empty_the_audit_trail(town, database):
    """The finding, reproduced: what the application connected as before can switch the
    trigger off or skip it (each attempt is rolled back)."""
    await _audited_activity(town)
    outcomes = await tampering_outcomes(database)
    assert outcomes["TRUNCATE"] == "done"
    assert outcomes["DISABLE TRIGGER"] == "done"
    conn = await asyncpg.connect(**database.dsn_kwargs())
    try:
        superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    finally:
        await conn.close()
    if superuser:  # a TEST_DATABASE_URL user that only owns the tables may not set it
        assert outcomes["session_replication_role"] == "done"
    # the trigger alone stops only plain UPDATE and DELETE
    assert outcomes["UPDATE"] == outcomes["DELETE"] == "RaiseError"


async def test_the_service_role_cannot_tamper_with_the_audit_trail(town, database, service_database):
    await _audited_activity(town)
    before = await audit_rows(database)
    assert {row[3] for row in before} >= {"resident.create", "session.schedule"}

    outcomes = await tampering_outcomes(service_database)

    assert refused_everywhere(outcomes), outcomes
    assert await audit_rows(database) == before
    conn = await asyncpg.connect(**service_database.dsn_kwargs())
    try:
        assert await audit_trail_problems(conn) == []
    finally:
        await conn.close()


async def test_the_service_role_reads_and_appends_the_audit_trail_and_works_other_rows(
        town, database, service_database):
    conn = await asyncpg.connect(**service_database.dsn_kwargs())
    try:
        new_id = await conn.fetchval(
            "INSERT INTO audit_entry (municipality_id, action, object_ids, details, created_at)"
            " VALUES ($1, 'test.append', '[]', '{}', now()) RETURNING id", town.municipality.id)
        assert await conn.fetchval("SELECT action FROM audit_entry WHERE id = $1", new_id) == "test.append"
        resident_id = await conn.fetchval(
            "INSERT INTO resident (municipality_id, family_name, given_name, contact_preference,"
            " sms_consent, sms_opted_out, created_at, updated_at)"
            " VALUES ($1, '田中', '一郎', 'PHONE_CALL', false, false, now(), now()) RETURNING id",
            town.municipality.id)
        await conn.execute("UPDATE resident SET given_name = '二郎' WHERE id = $1", resident_id)
        await conn.execute("DELETE FROM resident WHERE id = $1", resident_id)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("TRUNCATE resident")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM tortoise_migrations")
    finally:
        await conn.close()


async def test_an_audit_row_cannot_be_back_dated(town, service_database):
    """The review of issue 9: the service could add a row dated months ago blaming an ADMIN
    for a read. The database stamps the time of the insert, whatever the INSERT says."""
    conn = await asyncpg.connect(**service_database.dsn_kwargs())
    try:
        row = await conn.fetchrow(
            "INSERT INTO audit_entry (municipality_id, actor_role, action, object_ids, details,"
            " created_at) VALUES ($1, 'ADMIN', 'resident.pii_read', '[17]', '{}',"
            " '2026-06-01 10:00+09') RETURNING created_at, now() AS now", town.municipality.id)
        assert row["created_at"] == row["now"]
    finally:
        await conn.close()


async def test_a_superuser_is_reported_unprotected(database):
    conn = await asyncpg.connect(**database.dsn_kwargs())
    try:
        problems = await audit_trail_problems(conn)
    finally:
        await conn.close()
    assert problems == [f"{database.user!r} is a superuser (it can disable the audit trigger or TRUNCATE)"]


async def test_privileges_reached_through_role_membership_are_reported(database):
    """A role that may SET ROLE to one holding UPDATE on the audit log, or to its owner, is
    not protected, however little it holds itself."""
    tag = secrets.token_hex(3)
    editor, via_editor, via_owner = f"ds_editor_{tag}", f"ds_via_editor_{tag}", f"ds_via_owner_{tag}"
    conn = await asyncpg.connect(**database.dsn_kwargs())
    try:
        for role in (editor, via_editor, via_owner):
            await ensure_login_role(conn, role)
        await conn.execute(f'GRANT UPDATE ON audit_entry TO "{editor}"')
        await conn.execute(f'ALTER ROLE "{via_editor}" NOINHERIT')
        await conn.execute(f'GRANT "{editor}" TO "{via_editor}"')
        await conn.execute(f'CREATE ROLE "ds_audit_owner_{tag}" NOLOGIN')
        await conn.execute(f'GRANT "ds_audit_owner_{tag}" TO "{via_owner}"')
        await conn.execute(f'ALTER TABLE audit_entry OWNER TO "ds_audit_owner_{tag}"')
        try:
            assert await audit_trail_problems(conn, editor) == [f"{editor!r} holds UPDATE on audit_entry"]
            assert await audit_trail_problems(conn, via_editor) == [
                f"{via_editor!r} holds UPDATE on audit_entry"]
            [problem, *_] = await audit_trail_problems(conn, via_owner)
            assert f"is a member of 'ds_audit_owner_{tag}', which owns audit_entry" in problem
        finally:
            await conn.execute(f'ALTER TABLE audit_entry OWNER TO "{database.user}"')
            for role in (editor, via_editor, via_owner, f"ds_audit_owner_{tag}"):
                await conn.execute(f'DROP OWNED BY "{role}"')
                await conn.execute(f'DROP ROLE "{role}"')
    finally:
        await conn.close()


# --- the command line, with an owner role and a service role of their own ----------------


_PRIVILEGES_SQL = """
SELECT c.relname AS name, c.relkind = 'S' AS sequence,
       ARRAY(SELECT p FROM unnest(CASE WHEN c.relkind = 'S' THEN ARRAY['USAGE', 'SELECT', 'UPDATE']
                                  ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                             'REFERENCES', 'TRIGGER'] END) AS p
             WHERE CASE WHEN c.relkind = 'S' THEN has_sequence_privilege($1, c.oid, p)
                        ELSE has_table_privilege($1, c.oid, p) END) AS privileges
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S')
"""


@pytest.fixture
async def two_roles(database: ConnectionParams):
    """An empty database owned by a plain (non-superuser) owner role, and a service role:
    the production setup. Yields (owner_url, service_url, owner, service)."""
    tag = secrets.token_hex(4)
    name, owner_role, service_role = f"ds_roles_{tag}", f"ds_owner_{tag}", f"ds_service_{tag}"
    owner_pw, service_pw = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    admin = await asyncpg.connect(**{**database.dsn_kwargs(), "database": "postgres"})
    try:
        await ensure_login_role(admin, owner_role, owner_pw)
        await ensure_login_role(admin, service_role, service_pw)
        await admin.execute(f'CREATE DATABASE "{name}" OWNER "{owner_role}"')
    finally:
        await admin.close()
    owner = ConnectionParams(database.host, database.port, owner_role, owner_pw, name)
    service = ConnectionParams(database.host, database.port, service_role, service_pw, name)
    # The owner creates the tables: PostgreSQL 15+ gives the public schema to the database
    # owner anyway; older servers leave it to the superuser.
    conn = await asyncpg.connect(**database.dsn_kwargs() | {"database": name})
    try:
        await conn.execute(f'GRANT CREATE ON SCHEMA public TO "{owner_role}"')
    finally:
        await conn.close()
    yield _url(owner, name), _url(service, name), owner, service
    admin = await asyncpg.connect(**{**database.dsn_kwargs(), "database": "postgres"})
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{service_role}"')
        await admin.execute(f'DROP ROLE IF EXISTS "{owner_role}"')
    finally:
        await admin.close()


def _roles_env(owner_url: str, service_url: str, **extra: str) -> dict[str, str]:
    return _env(service_url, DATABASE_OWNER_URL=owner_url, **extra)


async def _privileges_of(owner: ConnectionParams, role: str) -> dict[str, set[str]]:
    """What `role` may do on each table and sequence, as PostgreSQL answers it."""
    conn = await asyncpg.connect(**owner.dsn_kwargs())
    try:
        rows = await conn.fetch(_PRIVILEGES_SQL, role)
    finally:
        await conn.close()
    _SEQUENCES.update(row["name"] for row in rows if row["sequence"])
    return {row["name"]: set(row["privileges"]) for row in rows}


_SEQUENCES: set[str] = set()


def _expected(privileges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The rule of core/dbroles.grant_service_role, written out once more by hand."""
    expected = {}
    for name in privileges:
        if name in _SEQUENCES:
            expected[name] = {"USAGE", "SELECT"}
        elif name == "audit_entry":
            expected[name] = {"SELECT", "INSERT"}
        elif name == "tortoise_migrations":
            expected[name] = set()
        elif name == "report_key_secret":  # the secret of the planners' report noise
            expected[name] = {"SELECT"}
        else:
            expected[name] = {"SELECT", "INSERT", "UPDATE", "DELETE"}
    return expected


async def test_migrate_grants_exactly_what_the_service_needs_every_time(two_roles, tmp_path):
    owner_url, service_url, owner, service = two_roles
    env = _roles_env(owner_url, service_url)
    first = await run_cli("migrate", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "0001_initial" in first.stdout and NOT_PROTECTED not in first.stderr
    granted = await _privileges_of(owner, service.user)
    assert {"audit_entry", "resident", "session", "tortoise_migrations"} <= set(granted)
    assert granted == _expected(granted)

    # Someone widened the grants by hand, and a later migration added a table.
    conn = await asyncpg.connect(**owner.dsn_kwargs())
    try:
        await conn.execute(f'GRANT ALL ON audit_entry TO "{service.user}"')
        await conn.execute(f'GRANT UPDATE (details) ON audit_entry TO "{service.user}"')
        await conn.execute('GRANT UPDATE, DELETE ON audit_entry TO PUBLIC')
        await conn.execute(f'GRANT TRUNCATE, TRIGGER ON resident TO "{service.user}"')
        await conn.execute("CREATE TABLE later_feature (id serial PRIMARY KEY, note text)")
    finally:
        await conn.close()
    assert refused_everywhere(await tampering_outcomes(service)) is False

    for _ in range(2):  # the same result however often it runs
        again = await run_cli("migrate", env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert "変更なし" in again.stdout
        granted = await _privileges_of(owner, service.user)
        assert granted == _expected(granted)
        assert granted["later_feature"] == {"SELECT", "INSERT", "UPDATE", "DELETE"}
        assert granted["later_feature_id_seq"] == {"USAGE", "SELECT"}

    outcomes = await tampering_outcomes(service)
    assert refused_everywhere(outcomes), outcomes
    conn = await asyncpg.connect(**service.dsn_kwargs())
    try:
        assert not await conn.fetchval(
            "SELECT has_column_privilege(current_user, 'audit_entry', 'details', 'UPDATE')")
        assert await conn.fetchval("INSERT INTO later_feature (note) VALUES ('ok') RETURNING id") == 1
        assert await audit_trail_problems(conn) == []
    finally:
        await conn.close()


async def test_the_row_commands_and_the_worker_run_as_the_service_role(two_roles, tmp_path):
    owner_url, service_url, _, _ = two_roles
    env = _roles_env(owner_url, service_url)
    assert (await run_cli("migrate", env=env, cwd=tmp_path)).returncode == 0
    seeded = await run_cli("seed", env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    made = await run_cli("create-user", "--email", "staff@example.jp", "--role", "ADMIN",
                         "--municipality", "142034", "--password", "long-enough-pw",
                         env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    worked = await run_cli("worker", "--once", env=env, cwd=tmp_path)
    assert worked.returncode == 0, worked.stderr
    assert NOT_PROTECTED not in worked.stderr
    health, ready, code = await asyncio.to_thread(_serve_and_stop, env, tmp_path)
    assert (health, ready, code) == (200, 200, 0)
    assert not any(NOT_PROTECTED in log.read_text() for log in tmp_path.glob("serve-*.log"))


async def test_serve_and_worker_warn_when_the_audit_trail_is_not_protected(two_roles, tmp_path):
    """Connected as the owner (the old setup), they still start, and say what is wrong."""
    owner_url, _, _, _ = two_roles
    only_owner = _env(owner_url)  # no DATABASE_OWNER_URL: migrate uses DATABASE_URL
    migrated = await run_cli("migrate", env=only_owner, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert NOT_PROTECTED in migrated.stderr and "owns audit_entry" in migrated.stderr
    worked = await run_cli("worker", "--once", env=only_owner, cwd=tmp_path)
    assert worked.returncode == 0, worked.stderr
    assert NOT_PROTECTED in worked.stderr and "DATABASE_OWNER_URL" in worked.stderr
    assert "Traceback" not in worked.stderr
    health, ready, code = await asyncio.to_thread(_serve_and_stop, only_owner, tmp_path)
    assert (health, ready, code) == (200, 200, 0)
    [log] = tmp_path.glob("serve-*.log")
    assert log.read_text().count(NOT_PROTECTED) == 1


async def test_migrate_for_a_service_role_that_does_not_exist_is_a_clear_error(two_roles, tmp_path):
    owner_url, service_url, _, _ = two_roles
    ran = await run_cli("migrate", env=_roles_env(owner_url, service_url,
                                                  DATABASE_SERVICE_ROLE="no_such_role"),
                        cwd=tmp_path)
    assert ran.returncode == 2
    assert "SERVICE_ROLE_MISSING" in ran.stderr and "no_such_role" in ran.stderr
    assert "Traceback" not in ran.stderr


# --- the embedded default ----------------------------------------------------------------


@pytest.fixture
def old_embedded_folder(tmp_path):
    """An embedded data folder as the code before the service role left it: migrated and
    used by the cluster's superuser only. The server stays up (held by this process) while
    the test's commands join it."""
    data = tmp_path / "data"
    data.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR on CI machines
        import pgserver

        server = pgserver.get_server(data / "pgdata", cleanup_mode="stop")
    superuser = parse_database_url(server.get_uri())
    params = ConnectionParams(superuser.host, superuser.port, superuser.user, None, EMBEDDED_DATABASE)
    yield data, params
    server.cleanup()


async def test_an_embedded_folder_from_before_is_upgraded_in_place(old_embedded_folder, tmp_path):
    data, superuser = old_embedded_folder
    await ensure_database_exists(superuser)
    await apply_migrations(superuser, quiet=True)  # what the old code did; no service role
    conn = await asyncpg.connect(**superuser.dsn_kwargs())
    try:
        await conn.execute("INSERT INTO audit_entry (municipality_id, action, object_ids, details,"
                           " created_at) VALUES (1, 'old.entry', '[]', '{}', now())")
        assert await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1",
                                   EMBEDDED_SERVICE_ROLE) is None
    finally:
        await conn.close()

    env = _env(None, DIVIDE_SUPPORT_DATA_DIR=str(data))
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    process = await asyncio.to_thread(
        subprocess.Popen, [str(SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert await asyncio.to_thread(_wait_for, f"http://127.0.0.1:{port}/readyz", 180) == 200
        conn = await asyncpg.connect(**superuser.dsn_kwargs())
        try:
            users = {r["usename"] for r in await conn.fetch(
                "SELECT usename FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                EMBEDDED_DATABASE)}
            role = await conn.fetchrow("SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin"
                                       " FROM pg_roles WHERE rolname = $1", EMBEDDED_SERVICE_ROLE)
        finally:
            await conn.close()
        assert users == {EMBEDDED_SERVICE_ROLE}  # serve runs as the service role, not as postgres
        assert tuple(role) == (False, False, False, True)

        for command in (["seed"], ["migrate"],
                        ["create-user", "--email", "a@example.jp", "--role", "ADMIN",
                         "--municipality", "142034", "--password", "long-enough-pw"],
                        ["import-survey", str(SURVEY)],
                        ["worker", "--once"], ["demo"]):
            ran = await run_cli(*command, env=env, cwd=tmp_path)
            assert ran.returncode == 0, (command, ran.stderr)
            assert NOT_PROTECTED not in ran.stderr, command
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
        log.close()
    assert process.returncode == 0
    assert NOT_PROTECTED not in (tmp_path / "serve.log").read_text()

    service = ConnectionParams(superuser.host, superuser.port, EMBEDDED_SERVICE_ROLE, None,
                               EMBEDDED_DATABASE)
    before = await audit_rows(superuser)
    assert before[0][3] == "old.entry" and len(before) > 1
    outcomes = await tampering_outcomes(service)
    assert refused_everywhere(outcomes), outcomes
    assert await audit_rows(superuser) == before



async def test_serve_starts_while_the_database_is_down_and_says_it_could_not_check(tmp_path):
    """The start-up check must not turn a database outage into a service that never starts."""
    dead = f"postgresql://postgres@127.0.0.1:{_free_port()}/nothing"
    port = _free_port()
    process = await asyncio.to_thread(_start_serve, _env(dead), tmp_path, port)
    try:
        assert await asyncio.to_thread(_wait_for, f"http://127.0.0.1:{port}/healthz", 60) == 200
        with pytest.raises(urllib.error.HTTPError) as answer:
            await asyncio.to_thread(urllib.request.urlopen, f"http://127.0.0.1:{port}/readyz", None, 5)
        assert answer.value.code == 503
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)
    log = (tmp_path / f"serve-{port}.log").read_text()
    assert "could not check whether the audit trail is protected" in log
