"""The secret behind the record keys of the cell key method (reports/cellkey.py): one random
value per deployment, drawn by the database itself (gen_random_uuid uses the server's strong
random source) and never shown by the service. The service role may only read it
(core/dbroles.py): it cannot change the noise planners see, and every replica reads the same.

(On the branch this was written on, 0008 was not there yet; the dependency goes to the last
migration before this one.)"""

from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("divide_support", "0008_audit_insert_guard")]

    operations = [
        ops.RunSQL(
            [
                "CREATE TABLE report_key_secret ("
                " id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),"
                " secret bytea NOT NULL CHECK (length(secret) = 32),"
                " created_at timestamptz NOT NULL DEFAULT now())",
                "COMMENT ON TABLE report_key_secret IS 'Secret of the record keys of the cell key "
                "method (planner reports); one row; keep it, rotating it lets old and new answers "
                "be averaged'",
                # two UUIDs carry 244 random bits; sha256 makes them 32 bytes
                "INSERT INTO report_key_secret (id, secret) VALUES (1, sha256(convert_to("
                "gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')))",
                "REVOKE ALL ON report_key_secret FROM PUBLIC",
            ],
            reverse_sql=["DROP TABLE report_key_secret"],
        ),
    ]
