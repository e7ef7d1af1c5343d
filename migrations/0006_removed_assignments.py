"""Duties taken off supporters are kept (removed_assignment) so their invite links answer
with METHOD:CANCEL."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from enum import StrEnum


class AssignmentRole(StrEnum):
    """The values when this migration was written: a migration never imports the live enum,
    so renaming or moving it later cannot break an old migration."""

    LEAD = "LEAD"
    ASSISTANT = "ASSISTANT"


class Migration(migrations.Migration):
    dependencies = [('divide_support', '0005_surveys')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RemovedAssignment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='removed_assignments', on_delete=OnDelete.RESTRICT)),
                ('assignment_id', fields.IntField(description='The id the duty had (its calendar UID)')),
                ('session', fields.ForeignKeyField('divide_support.Session', source_field='session_id', db_index=True, db_constraint=True, to_field='id', related_name='removed_assignments', on_delete=OnDelete.CASCADE)),
                ('supporter', fields.ForeignKeyField('divide_support.Supporter', source_field='supporter_id', db_index=True, db_constraint=True, to_field='id', related_name='removed_assignments', on_delete=OnDelete.RESTRICT)),
                ('role', fields.CharEnumField(description='LEAD: LEAD\nASSISTANT: ASSISTANT', enum_type=AssignmentRole, max_length=16)),
                ('calendar_token', fields.CharField(unique=True, max_length=32)),
                ('removed_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'removed_assignment', 'app': 'divide_support', 'pk_attr': 'id', 'table_description': "A duty taken off a supporter. Kept so the duty's invite link can answer with a"},
            bases=['Model'],
        ),
    ]
