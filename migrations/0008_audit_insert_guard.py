"""Audit rows take their time from the database: the service may INSERT, but a row it
back-dates (created_at in the past, blaming someone for an old read) gets the time of its
insert all the same."""

from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("divide_support", "0007_privacy")]

    operations = [
        ops.RunSQL(
            [
                """
                CREATE FUNCTION audit_entry_stamp() RETURNS trigger AS $$
                BEGIN
                    NEW.created_at := now();
                    RETURN NEW;
                END;
                $$ LANGUAGE plpgsql
                """,
                "CREATE TRIGGER audit_entry_stamp BEFORE INSERT ON audit_entry "
                "FOR EACH ROW EXECUTE FUNCTION audit_entry_stamp()",
            ],
            reverse_sql=[
                "DROP TRIGGER audit_entry_stamp ON audit_entry",
                "DROP FUNCTION audit_entry_stamp()",
            ],
        ),
    ]
