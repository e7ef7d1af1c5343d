"""SMS: the outbox (message), replies (inbound_message), send slots per municipality
(sms_rate), and the municipality SMS settings (quiet hours, send rate)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from enum import StrEnum

# The enums' values when this migration was written, not the application's live enums: a
# later rename or move in the code must never break an old migration.
class InboundAction(StrEnum):
    OPT_OUT = "OPT_OUT"
    OPT_IN = "OPT_IN"
    HELP = "HELP"
    NONE = "NONE"


class MessageKind(StrEnum):
    CONFIRMATION = "CONFIRMATION"
    REMINDER_DAY_BEFORE = "REMINDER_DAY_BEFORE"
    REMINDER_SAME_DAY = "REMINDER_SAME_DAY"
    WAITLIST_PROMOTED = "WAITLIST_PROMOTED"
    SESSION_CHANGED = "SESSION_CHANGED"
    SESSION_CANCELLED = "SESSION_CANCELLED"
    FOLLOW_UP = "FOLLOW_UP"


class MessageStatus(StrEnum):
    PENDING = "PENDING"
    SENDING = "SENDING"
    UNKNOWN = "UNKNOWN"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    UNDELIVERED = "UNDELIVERED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


class SkipReason(StrEnum):
    NO_CONSENT = "NO_CONSENT"
    NO_MOBILE = "NO_MOBILE"
    PREFERS_OTHER_CHANNEL = "PREFERS_OTHER_CHANNEL"
    OPTED_OUT = "OPTED_OUT"
    TOO_LATE = "TOO_LATE"


class AddFieldWithDatabaseDefault(ops.AddField):
    """AddField that gives the column a database default, so existing municipalities get
    the default value instead of failing on NOT NULL."""

    def __init__(self, model_name: str, name: str, field: object, column_sql: str) -> None:
        super().__init__(model_name=model_name, name=name, field=field)
        self.column_sql = column_sql

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor:
            await state_editor.client.execute_script(
                f"ALTER TABLE municipality ADD COLUMN {self.name} {self.column_sql}")


class Migration(migrations.Migration):
    dependencies = [('divide_support', '0002_integrity_rules')]

    initial = False

    operations = [
        ops.CreateModel(
            name='InboundMessage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='inbound_messages', on_delete=OnDelete.RESTRICT)),
                ('resident', fields.ForeignKeyField('divide_support.Resident', source_field='resident_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='inbound_messages', on_delete=OnDelete.RESTRICT)),
                ('provider_id', fields.CharField(unique=True, max_length=64)),
                ('from_number', fields.CharField(max_length=20)),
                ('body', fields.TextField(unique=False)),
                ('action', fields.CharEnumField(default=InboundAction.NONE, description='OPT_OUT: OPT_OUT\nOPT_IN: OPT_IN\nHELP: HELP\nNONE: NONE', enum_type=InboundAction, max_length=16)),
                ('needs_review', fields.BooleanField(default=False)),
                ('reviewed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reviewed_by', fields.ForeignKeyField('divide_support.User', source_field='reviewed_by_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='reviewed_inbound', on_delete=OnDelete.SET_NULL)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'inbound_message', 'app': 'divide_support', 'indexes': [Index(fields=['municipality_id', 'needs_review', 'received_at'])], 'pk_attr': 'id', 'table_description': 'A reply from a resident (two-way SMS), kept for staff to read.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Message',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.RESTRICT)),
                ('resident', fields.ForeignKeyField('divide_support.Resident', source_field='resident_id', db_index=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.RESTRICT)),
                ('registration', fields.ForeignKeyField('divide_support.Registration', source_field='registration_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.RESTRICT)),
                ('follow_up', fields.ForeignKeyField('divide_support.FollowUp', source_field='follow_up_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.RESTRICT)),
                ('session', fields.ForeignKeyField('divide_support.Session', source_field='session_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='CONFIRMATION: CONFIRMATION\nREMINDER_DAY_BEFORE: REMINDER_DAY_BEFORE\nREMINDER_SAME_DAY: REMINDER_SAME_DAY\nWAITLIST_PROMOTED: WAITLIST_PROMOTED\nSESSION_CHANGED: SESSION_CHANGED\nSESSION_CANCELLED: SESSION_CANCELLED\nFOLLOW_UP: FOLLOW_UP', enum_type=MessageKind, max_length=24)),
                ('idempotency_key', fields.CharField(unique=True, max_length=100)),
                ('session_sequence', fields.IntField(null=True)),
                ('to', fields.CharField(null=True, description='E.164 at planning time', max_length=20)),
                ('body', fields.TextField(unique=False)),
                ('segments', fields.IntField()),
                ('encoding', fields.CharField(max_length=8)),
                ('send_after', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=MessageStatus.PENDING, description='PENDING: PENDING\nSENDING: SENDING\nUNKNOWN: UNKNOWN\nSENT: SENT\nDELIVERED: DELIVERED\nUNDELIVERED: UNDELIVERED\nFAILED: FAILED\nSKIPPED: SKIPPED\nCANCELLED: CANCELLED', enum_type=MessageStatus, max_length=16)),
                ('skip_reason', fields.CharEnumField(null=True, description='NO_CONSENT: NO_CONSENT\nNO_MOBILE: NO_MOBILE\nPREFERS_OTHER_CHANNEL: PREFERS_OTHER_CHANNEL\nOPTED_OUT: OPTED_OUT\nTOO_LATE: TOO_LATE', enum_type=SkipReason, max_length=24)),
                ('attempts', fields.IntField(default=0)),
                ('retries', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('claimed_by', fields.CharField(null=True, max_length=64)),
                ('claimed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('send_started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('provider_id', fields.CharField(null=True, unique=True, max_length=64)),
                ('provider_status', fields.CharField(null=True, max_length=16)),
                ('error_code', fields.CharField(null=True, max_length=16)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'message', 'app': 'divide_support', 'indexes': [Index(fields=['status', 'send_after']), Index(fields=['municipality_id', 'created_at']), Index(fields=['municipality_id', 'status', 'kind']), Index(fields=['to', 'claimed_at'])], 'pk_attr': 'id', 'table_description': 'The SMS outbox: one row per message that was, will be or was decided not to be sent.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SmsRate',
            fields=[
                ('municipality_id', fields.IntField(primary_key=True, unique=True, db_index=True)),
                ('next_slot_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'sms_rate', 'app': 'divide_support', 'pk_attr': 'municipality_id', 'table_description': 'Per-municipality send slots, shared by every worker (one sender per municipality).'},
            bases=['Model'],
        ),
        AddFieldWithDatabaseDefault(
            model_name='Municipality',
            name='sms_per_second',
            field=fields.FloatField(default=1.0),
            column_sql="DOUBLE PRECISION NOT NULL DEFAULT 1.0",
        ),
        AddFieldWithDatabaseDefault(
            model_name='Municipality',
            name='sms_quiet_from_minute',
            field=fields.IntField(default=1260),
            column_sql="INT NOT NULL DEFAULT 1260",
        ),
        AddFieldWithDatabaseDefault(
            model_name='Municipality',
            name='sms_quiet_until_minute',
            field=fields.IntField(default=480),
            column_sql="INT NOT NULL DEFAULT 480",
        ),
    ]
