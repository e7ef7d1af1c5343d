"""Database-level guards behind the service rules (defence in depth).

- one active registration per resident and session;
- a session ends after it starts, capacities are not negative;
- the audit log is append-only.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("divide_support", "0001_initial")]

    operations = [
        ops.RunSQL(
            [
                "CREATE UNIQUE INDEX registration_one_active_per_resident "
                "ON registration (session_id, resident_id) WHERE status <> 'CANCELLED'",
                "ALTER TABLE session ADD CONSTRAINT session_ends_after_start "
                "CHECK (ends_at > starts_at)",
                "ALTER TABLE session ADD CONSTRAINT session_capacity_not_negative "
                "CHECK (capacity IS NULL OR capacity >= 0)",
                "ALTER TABLE venue ADD CONSTRAINT venue_capacity_not_negative "
                "CHECK (capacity IS NULL OR capacity >= 0)",
                """
                CREATE FUNCTION audit_entry_append_only() RETURNS trigger AS $$
                BEGIN
                    RAISE EXCEPTION 'audit_entry is append-only';
                END;
                $$ LANGUAGE plpgsql
                """,
                "CREATE TRIGGER audit_entry_no_update BEFORE UPDATE OR DELETE ON audit_entry "
                "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()",
            ],
            reverse_sql=[
                "DROP TRIGGER audit_entry_no_update ON audit_entry",
                "DROP FUNCTION audit_entry_append_only()",
                "ALTER TABLE venue DROP CONSTRAINT venue_capacity_not_negative",
                "ALTER TABLE session DROP CONSTRAINT session_capacity_not_negative",
                "ALTER TABLE session DROP CONSTRAINT session_ends_after_start",
                "DROP INDEX registration_one_active_per_resident",
            ],
        ),
    ]
