"""The ways a database user could rewrite or empty the audit trail, tried for real."""

from __future__ import annotations

import asyncpg

from divide_support.core.database import ConnectionParams

# Each of these must be refused to the service role. The first three are what an attacker
# used against the superuser connection (issue 9, finding 7); the trigger alone stops none.
TAMPERING = {
    "TRUNCATE": "TRUNCATE audit_entry",
    "DISABLE TRIGGER": "ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_update",
    "session_replication_role": "SET session_replication_role = replica",
    "UPDATE": "UPDATE audit_entry SET action = 'nothing.happened'",
    "DELETE": "DELETE FROM audit_entry",
    "DROP TRIGGER": "DROP TRIGGER audit_entry_no_update ON audit_entry",
    "CREATE TRIGGER": "CREATE TRIGGER rewrite BEFORE INSERT ON audit_entry "
                      "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()",
    "DROP TABLE": "DROP TABLE audit_entry",
    "SET ROLE": "SET ROLE {superuser}",  # the cluster's bootstrap superuser
    # A temporary table of the same name would take the unqualified INSERTs (review of issue 9).
    "TEMP TABLE": "CREATE TEMP TABLE audit_entry (LIKE public.audit_entry INCLUDING DEFAULTS)",
}


async def audit_rows(params: ConnectionParams) -> list[tuple]:
    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        rows = await conn.fetch("SELECT id, municipality_id, actor_user_id, action, object_type,"
                                " object_ids::text, details::text, created_at FROM audit_entry ORDER BY id")
    finally:
        await conn.close()
    return [tuple(row) for row in rows]


async def tampering_outcomes(params: ConnectionParams) -> dict[str, str]:
    """Try each way as `params`' user, each in its own rolled-back transaction; returns
    what happened: the SQLSTATE class name of the refusal, or "done"."""
    outcomes: dict[str, str] = {}
    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        superuser = await conn.fetchval("SELECT quote_ident(rolname) FROM pg_roles WHERE oid = 10")
        for name, sql in TAMPERING.items():
            sql = sql.format(superuser=superuser)
            transaction = conn.transaction()
            await transaction.start()
            try:
                await conn.execute(sql)
                if name == "session_replication_role":  # triggers off: the DELETE goes through
                    await conn.execute("DELETE FROM audit_entry")
                outcomes[name] = "done"
            except asyncpg.PostgresError as error:
                outcomes[name] = type(error).__name__
            finally:
                await transaction.rollback()
    finally:
        await conn.close()
    return outcomes


def refused_everywhere(outcomes: dict[str, str]) -> bool:
    return set(outcomes.values()) == {"InsufficientPrivilegeError"}
