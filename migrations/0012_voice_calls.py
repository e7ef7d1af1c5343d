"""Automated voice calls: the resident's call consent (who recorded it, when), a message's
channel, spoken words and call outcome, the municipality's call window and pace, and the
call slots (call_rate)."""

from enum import StrEnum

from tortoise import fields
from tortoise import migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


# The enums' values when this migration was written (never the live enums).
class Channel(StrEnum):
    SMS = "SMS"
    VOICE = "VOICE"


class CallOutcome(StrEnum):
    CONFIRMED = "CONFIRMED"
    GAVE_UP_SEAT = "GAVE_UP_SEAT"
    ANSWERED = "ANSWERED"
    MACHINE = "MACHINE"
    NO_ANSWER = "NO_ANSWER"
    BUSY = "BUSY"
    FAILED = "FAILED"


class AddFieldWithDatabaseDefault(ops.AddField):
    """AddField whose column gets a database default, so the rows already there take the
    default instead of failing on NOT NULL."""

    def __init__(self, model_name: str, name: str, field: object, table: str,
                 column_sql: str) -> None:
        super().__init__(model_name=model_name, name=name, field=field)
        self.table = table
        self.column_sql = column_sql

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor:
            await state_editor.client.execute_script(
                f"ALTER TABLE {self.table} ADD COLUMN {self.name} {self.column_sql}")

class Migration(migrations.Migration):
    dependencies = [('divide_support', '0011_resident_support_needs')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CallRate',
            fields=[
                ('municipality_id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('next_slot_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'call_rate', 'app': 'divide_support', 'pk_attr': 'municipality_id', 'table_description': 'Per-municipality call slots (calls have their own, slower pace than SMS).'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Message',
            name='answered_by',
            field=fields.CharField(null=True, description="Twilio's AnsweredBy", max_length=32),
        ),
        ops.AddField(
            model_name='Message',
            name='call_outcome',
            field=fields.CharEnumField(null=True, description='CONFIRMED: CONFIRMED\nGAVE_UP_SEAT: GAVE_UP_SEAT\nANSWERED: ANSWERED\nMACHINE: MACHINE\nNO_ANSWER: NO_ANSWER\nBUSY: BUSY\nFAILED: FAILED', enum_type=CallOutcome, max_length=16),
        ),
        ops.AddField(
            model_name='Message',
            name='call_seconds',
            field=fields.IntField(null=True),
        ),
        AddFieldWithDatabaseDefault(
            model_name='Message',
            name='channel',
            field=fields.CharEnumField(default=Channel.SMS, description='SMS: SMS\nVOICE: VOICE', enum_type=Channel, max_length=8),
            table='message',
            column_sql="VARCHAR(8) NOT NULL DEFAULT 'SMS'",
        ),
        ops.AddField(
            model_name='Message',
            name='voice_script',
            field=fields.TextField(null=True, unique=False),
        ),
        AddFieldWithDatabaseDefault(
            model_name='Municipality',
            name='call_from_minute',
            field=fields.IntField(default=600),
            table='municipality',
            column_sql="INT NOT NULL DEFAULT 600",
        ),
        AddFieldWithDatabaseDefault(
            model_name='Municipality',
            name='call_until_minute',
            field=fields.IntField(default=1140),
            table='municipality',
            column_sql="INT NOT NULL DEFAULT 1140",
        ),
        AddFieldWithDatabaseDefault(
            model_name='Municipality',
            name='calls_per_minute',
            field=fields.FloatField(default=6.0),
            table='municipality',
            column_sql="DOUBLE PRECISION NOT NULL DEFAULT 6.0",
        ),
        AddFieldWithDatabaseDefault(
            model_name='Municipality',
            name='calls_on_closed_days',
            field=fields.BooleanField(default=False),
            table='municipality',
            column_sql="BOOL NOT NULL DEFAULT FALSE",
        ),
        AddFieldWithDatabaseDefault(
            model_name='Resident',
            name='call_consent',
            field=fields.BooleanField(default=False),
            table='resident',
            column_sql="BOOL NOT NULL DEFAULT FALSE",
        ),
        ops.AddField(
            model_name='Resident',
            name='call_consent_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Resident',
            name='call_consent_by',
            field=fields.ForeignKeyField('divide_support.User', source_field='call_consent_by_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='recorded_call_consents', on_delete=OnDelete.SET_NULL),
        ),
    ]
