"""Database roles: the service cannot rewrite or empty the audit trail.

Two roles share one database. The *owner* owns every table and runs `divide-support migrate`;
the *service* role is what `serve`, `worker` and the row-level commands connect as. The row
trigger of migration 0002 refuses UPDATE and DELETE on `audit_entry`, but an owner or a
superuser can disable it (ALTER TABLE ... DISABLE TRIGGER, SET session_replication_role) or
skip it (TRUNCATE). Only a service role that owns nothing and holds no more than
SELECT and INSERT on the audit table makes the trail append-only for the application.

`grant_service_role` is the one place those privileges are decided; `migrate` calls it after
every run, so tables added by later migrations are covered too.
"""

from __future__ import annotations

import logging

import asyncpg

from divide_support.core.database import ConnectionParams, DatabaseUnavailable, connect
from divide_support.core.errors import CoreCode, DomainError

log = logging.getLogger(__name__)

SCHEMA = "public"
AUDIT_TABLE = "audit_entry"
# Tortoise's bookkeeping of applied migrations: only `migrate` (the owner) reads or writes it.
MIGRATIONS_TABLE = "tortoise_migrations"
# The secret of the planners' report noise (reports/cellkey.py): read, never changed.
READ_ONLY_TABLES = ("report_key_secret",)

ROW_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
AUDIT_PRIVILEGES = "SELECT, INSERT"

FIX_HINT = ("Fix: connect the service (DATABASE_URL) as a login role that owns nothing and is not "
            "a superuser, set DATABASE_OWNER_URL to the owner of the tables, and run "
            "`divide-support migrate` (see SECURITY.md, 'Database roles and the audit trail').")


def _ident(name: str) -> str:
    """A quoted SQL identifier (GRANT and CREATE ROLE take no bind parameters)."""
    return '"' + name.replace('"', '""') + '"'


async def ensure_login_role(conn: asyncpg.Connection, role: str, password: str | None = None) -> None:
    """Create `role` as a plain login role if it is missing, and keep it plain: no superuser,
    no CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS. Needs CREATEROLE (the embedded
    cluster's superuser; the test server's)."""
    attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        try:
            await conn.execute(await conn.fetchval(
                f"SELECT format('CREATE ROLE %I {attributes} PASSWORD %L', $1::text, $2::text)",
                role, password))
            return
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            pass  # another process created it a moment ago: make sure of its attributes below
    await conn.execute(f"ALTER ROLE {_ident(role)} {attributes}")
    if password is not None:
        await conn.execute(await conn.fetchval(
            "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", role, password))


async def grant_service_role(conn: asyncpg.Connection, role: str) -> list[str]:
    """Give the service role exactly what the application needs, and nothing more.

    Run as the owner of the tables (`migrate` does, after applying migrations, every time).
    In one transaction, for every table and sequence in the `public` schema:

    - USAGE on the schema;
    - on each table SELECT, INSERT, UPDATE, DELETE (never TRUNCATE, REFERENCES or TRIGGER);
    - on `audit_entry` only SELECT and INSERT, and PUBLIC loses whatever it was given there;
    - on `report_key_secret` only SELECT, and PUBLIC nothing;
    - on `tortoise_migrations` nothing (only `migrate` uses it);
    - USAGE and SELECT on each sequence (ids come from them);
    - no TEMPORARY on the database, for the role or PUBLIC: a temporary table named
      audit_entry would come first in the search path and silently take the audit rows of
      that connection (the application writes the table's name unqualified).

    Every object's grants to the role are revoked first, so the result is the same whatever
    the role held before (idempotent), including column grants on the audit table.

    When `role` is the connected user (no separate owner configured) nothing is granted: an
    owner cannot be kept from its own tables. Returns what still leaves the audit trail
    unprotected for `role` (see `audit_trail_problems`); empty when it is protected.
    """
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        raise DomainError(
            CoreCode.SERVICE_ROLE_MISSING,
            f"データベースのロール「{role}」がありません。DATABASE_SERVICE_ROLE（未設定なら "
            "DATABASE_URL のユーザー）を確認し、ロールを作成してください。",
            message_en=f"The database role {role!r} does not exist.")
    if role == await conn.fetchval("SELECT current_user"):
        return await audit_trail_problems(conn, role)
    grantee = _ident(role)
    async with conn.transaction():
        await conn.execute(f"GRANT USAGE ON SCHEMA {_ident(SCHEMA)} TO {grantee}")
        tables = await conn.fetch(
            "SELECT c.relname, c.relkind::text AS relkind FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'S') ORDER BY c.relname", SCHEMA)
        for table in tables:
            name = f"{_ident(SCHEMA)}.{_ident(table['relname'])}"
            if table["relkind"] == "S":
                await conn.execute(f"REVOKE ALL ON SEQUENCE {name} FROM {grantee}")
                await conn.execute(f"GRANT USAGE, SELECT ON SEQUENCE {name} TO {grantee}")
                continue
            await conn.execute(f"REVOKE ALL ON TABLE {name} FROM {grantee}")
            if table["relname"] == AUDIT_TABLE:
                await conn.execute(f"REVOKE ALL ON TABLE {name} FROM PUBLIC")
                await conn.execute(f"GRANT {AUDIT_PRIVILEGES} ON TABLE {name} TO {grantee}")
            elif table["relname"] in READ_ONLY_TABLES:
                await conn.execute(f"REVOKE ALL ON TABLE {name} FROM PUBLIC")
                await conn.execute(f"GRANT SELECT ON TABLE {name} TO {grantee}")
            elif table["relname"] != MIGRATIONS_TABLE:
                await conn.execute(f"GRANT {ROW_PRIVILEGES} ON TABLE {name} TO {grantee}")
        database = _ident(await conn.fetchval("SELECT current_database()"))
        await conn.execute(f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC, {grantee}")
    return await audit_trail_problems(conn, role)


async def audit_trail_problems(conn: asyncpg.Connection, role: str | None = None) -> list[str]:
    """Why `role` (default: the connected user) could change or empty the audit trail, in
    English for the log; empty when it can only read and append. Counts what the role holds
    through role membership and PUBLIC too."""
    role = role or await conn.fetchval("SELECT current_user")
    row = await conn.fetchrow(
        """
        SELECT r.rolsuper,
               EXISTS (SELECT 1 FROM pg_roles s
                       WHERE s.rolsuper AND s.oid <> r.oid AND pg_has_role(r.oid, s.oid, 'MEMBER'))
                   AS superuser_member,
               c.oid IS NULL AS missing,
               CASE WHEN c.oid IS NOT NULL THEN pg_get_userbyid(c.relowner) END AS owner,
               c.oid IS NOT NULL AND pg_has_role(r.oid, c.relowner, 'MEMBER') AS owns,
               -- held directly, through PUBLIC, or by any role it may SET ROLE to
               ARRAY(SELECT p FROM unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER']) AS p
                     WHERE c.oid IS NOT NULL AND EXISTS (
                         SELECT 1 FROM pg_roles m
                         WHERE pg_has_role(r.oid, m.oid, 'MEMBER')
                           AND has_table_privilege(m.oid, c.oid, p))) AS extra,
               has_database_privilege(r.oid, current_database(), 'TEMPORARY') AS temporary
        FROM pg_roles r LEFT JOIN pg_class c ON c.oid = to_regclass($2)
        WHERE r.rolname = $1
        """,
        role, f"{SCHEMA}.{AUDIT_TABLE}")
    if row is None:
        return [f"the role {role!r} does not exist"]
    if row["rolsuper"]:  # a superuser may do anything: nothing else to say
        return [f"{role!r} is a superuser (it can disable the audit trigger or TRUNCATE)"]
    problems: list[str] = []
    if row["superuser_member"]:
        problems.append(f"{role!r} can SET ROLE to a superuser")
    if row["missing"]:
        problems.append(f"the table {AUDIT_TABLE} does not exist yet (run `divide-support migrate`)")
        return problems
    if row["owns"]:
        whose = (f"owns {AUDIT_TABLE}" if row["owner"] == role
                 else f"is a member of {row['owner']!r}, which owns {AUDIT_TABLE}")
        problems.append(f"{role!r} {whose} (it can ALTER the table and disable its trigger)")
    if row["extra"]:
        problems.append(f"{role!r} holds {', '.join(row['extra'])} on {AUDIT_TABLE}")
    if row["temporary"]:
        problems.append(f"{role!r} may create temporary tables (one named {AUDIT_TABLE} would "
                        "take the audit rows of its connection)")
    # PostgreSQL 15+ can GRANT SET on a superuser-only parameter to anyone.
    if int(await conn.fetchval("SHOW server_version_num")) >= 150000 and \
            await conn.fetchval("SELECT has_parameter_privilege($1, 'session_replication_role', 'SET')",
                                role):
        problems.append(f"{role!r} may SET session_replication_role (which switches triggers off)")
    return problems


def unprotected_message(problems: list[str]) -> str:
    """The one log line operators see when the audit trail is not protected."""
    return "The audit trail is NOT protected: " + "; ".join(problems) + ". " + FIX_HINT


async def warn_if_audit_unprotected(params: ConnectionParams) -> list[str]:
    """At `serve`/`worker` start: log one warning when the service's own connection could
    rewrite the audit trail. Never refuses to start (an old setup keeps running), nor waits for
    a database that is down (the service starts and /readyz answers 503 until it is back)."""
    try:
        conn = await connect(params, timeout=5)
        try:
            problems = await audit_trail_problems(conn)
        finally:
            await conn.close()
    except (DatabaseUnavailable, OSError, TimeoutError, asyncpg.PostgresError) as error:
        cause = error.cause if isinstance(error, DatabaseUnavailable) else error
        log.warning("could not check whether the audit trail is protected (%s)", type(cause).__name__)
        return []
    if problems:
        log.warning(unprotected_message(problems))
    return problems
