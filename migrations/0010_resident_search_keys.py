"""Residents' names in the form search and the duplicate check compare (people.service.name_key):
four key columns, their prefixes indexed per municipality, and a backfill of the rows already
there. The SQL below computes what name_key computes in Python (a test checks they agree):
NFKC, then katakana to hiragana and A-Z to a-z, without spaces and middle dots, at most 200
characters; the reading's given part is what follows its first space."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

_KATAKANA = "".join(chr(c) for c in range(0x30A1, 0x30F7))
_HIRAGANA = "".join(chr(c - 0x60) for c in range(0x30A1, 0x30F7))
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DROPPED = " \u30fb"  # after NFKC every space is U+0020 and a half-width middle dot is U+30FB


def _key(expression: str) -> str:
    return (f"NULLIF(left(translate(normalize({expression}, NFKC), "
            f"'{_KATAKANA}{_UPPER}{_DROPPED}', '{_HIRAGANA}{_UPPER.lower()}'), 200), '')")


_KANA = "normalize(kana, NFKC)"
_SPACE_AT = f"position(' ' IN {_KANA})"
_GIVEN_PART = f"substr({_KANA}, {_SPACE_AT} + 1)"
BACKFILL = [
    "UPDATE resident SET "
    f"name_key = {_key('family_name || given_name')}, "
    f"given_key = {_key('given_name')}, "
    f"kana_key = {_key('kana')}, "
    f"kana_given_key = CASE WHEN {_SPACE_AT} > 0 THEN {_key(_GIVEN_PART)} END "
    "WHERE erased_at IS NULL",
]
_KEYS = ("name_key", "given_key", "kana_key", "kana_given_key")
# varchar_pattern_ops: LIKE 'prefix%' uses the index whatever the database's collation.
INDEXES = [f"CREATE INDEX resident_{key}_prefix ON resident (municipality_id, {key} varchar_pattern_ops)"
           for key in _KEYS]

class Migration(migrations.Migration):
    dependencies = [('divide_support', '0009_report_cell_keys')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Resident',
            name='given_key',
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AddField(
            model_name='Resident',
            name='kana_given_key',
            field=fields.CharField(null=True, description='the reading after its first space', max_length=200),
        ),
        ops.AddField(
            model_name='Resident',
            name='kana_key',
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AddField(
            model_name='Resident',
            name='name_key',
            field=fields.CharField(null=True, description='family + given name', max_length=200),
        ),
        ops.RunSQL(INDEXES + BACKFILL,
                   reverse_sql=[f"DROP INDEX resident_{key}_prefix" for key in _KEYS]),
    ]
