from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from enum import StrEnum

# The enums' values when this migration was written, not the application's live enums: a
# later rename or move in the code must never break an old migration.
class Role(StrEnum):
    ADMIN = "ADMIN"
    COORDINATOR = "COORDINATOR"
    SUPPORTER = "SUPPORTER"
    PLANNER = "PLANNER"


class FollowUpChannel(StrEnum):
    PHONE_CALL = "PHONE_CALL"
    SMS = "SMS"
    VISIT = "VISIT"
    POST = "POST"


class FollowUpOutcome(StrEnum):
    USES_INDEPENDENTLY = "USES_INDEPENDENTLY"
    NEEDS_MORE_HELP = "NEEDS_MORE_HELP"
    NOT_REACHED = "NOT_REACHED"
    DECLINED = "DECLINED"


class FollowUpPurpose(StrEnum):
    AFTER_CLASS = "AFTER_CLASS"
    AFTER_VISIT = "AFTER_VISIT"
    SEAT_AVAILABLE = "SEAT_AVAILABLE"
    MANUAL = "MANUAL"


class FollowUpStatus(StrEnum):
    OPEN = "OPEN"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


class ContactPreference(StrEnum):
    SMS = "SMS"
    PHONE_CALL = "PHONE_CALL"
    POST = "POST"
    NONE = "NONE"


class Device(StrEnum):
    IPHONE = "IPHONE"
    ANDROID = "ANDROID"
    FEATURE_PHONE = "FEATURE_PHONE"
    TABLET = "TABLET"
    NONE = "NONE"
    OTHER = "OTHER"


class SupporterAffiliation(StrEnum):
    CARRIER_SHOP = "CARRIER_SHOP"
    NPO = "NPO"
    VOLUNTEER = "VOLUNTEER"
    CITY_STAFF = "CITY_STAFF"
    STUDENT = "STUDENT"
    OTHER = "OTHER"


class AssignmentRole(StrEnum):
    LEAD = "LEAD"
    ASSISTANT = "ASSISTANT"


class Attendance(StrEnum):
    ATTENDED = "ATTENDED"
    NO_SHOW = "NO_SHOW"


class CourseLevel(StrEnum):
    BASIC = "BASIC"
    APPLIED = "APPLIED"


class CourseTopic(StrEnum):
    DEVICE_BASICS = "DEVICE_BASICS"
    MESSAGING_SNS = "MESSAGING_SNS"
    CITY_ONLINE_SERVICES = "CITY_ONLINE_SERVICES"
    MY_NUMBER_CARD = "MY_NUMBER_CARD"
    SECURITY = "SECURITY"
    CASHLESS = "CASHLESS"
    OTHER = "OTHER"


class RegistrationSource(StrEnum):
    PHONE = "PHONE"
    COUNTER = "COUNTER"
    WALK_IN = "WALK_IN"
    ONLINE = "ONLINE"
    SUPPORTER = "SUPPORTER"


class RegistrationStatus(StrEnum):
    CONFIRMED = "CONFIRMED"
    WAITLISTED = "WAITLISTED"
    CANCELLED = "CANCELLED"


class SessionKind(StrEnum):
    CLASS = "CLASS"
    HELP_SESSION = "HELP_SESSION"


class SessionStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"


class VenueKind(StrEnum):
    COMMUNITY_CENTRE = "COMMUNITY_CENTRE"
    DIGITAL_STATION = "DIGITAL_STATION"
    LIBRARY = "LIBRARY"
    CITY_HALL = "CITY_HALL"
    OTHER = "OTHER"


class VisitOutcome(StrEnum):
    RESOLVED = "RESOLVED"
    PARTLY_RESOLVED = "PARTLY_RESOLVED"
    NEEDS_FOLLOW_UP = "NEEDS_FOLLOW_UP"


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality_id', fields.IntField(db_index=True)),
                ('actor_user_id', fields.IntField(null=True)),
                ('actor_email', fields.CharField(null=True, max_length=254)),
                ('actor_role', fields.CharField(null=True, max_length=16)),
                ('action', fields.CharField(max_length=64)),
                ('object_type', fields.CharField(null=True, max_length=32)),
                ('object_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('request_id', fields.CharField(null=True, max_length=64)),
                ('details', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'audit_entry', 'app': 'divide_support', 'indexes': [Index(fields=['municipality_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'Append-only (a trigger in the migrations refuses UPDATE and DELETE).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LoginThrottle',
            fields=[
                ('email', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=254)),
                ('failures', fields.IntField(default=0)),
                ('first_failure_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'login_throttle', 'app': 'divide_support', 'pk_attr': 'email', 'table_description': 'Failed logins per e-mail (known or not, so the lock reveals nothing).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Municipality',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, description='全国地方公共団体コード', max_length=6)),
                ('name', fields.CharField(max_length=100)),
                ('timezone', fields.CharField(default='Asia/Tokyo', max_length=64)),
                ('phone', fields.CharField(null=True, description='Centre phone for residents', max_length=32)),
                ('follow_up_days', fields.IntField(default=14)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'municipality', 'app': 'divide_support', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Course',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='courses', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=200)),
                ('topic', fields.CharEnumField(description='DEVICE_BASICS: DEVICE_BASICS\nMESSAGING_SNS: MESSAGING_SNS\nCITY_ONLINE_SERVICES: CITY_ONLINE_SERVICES\nMY_NUMBER_CARD: MY_NUMBER_CARD\nSECURITY: SECURITY\nCASHLESS: CASHLESS\nOTHER: OTHER', enum_type=CourseTopic, max_length=32)),
                ('level', fields.CharEnumField(default=CourseLevel.BASIC, description='BASIC: BASIC\nAPPLIED: APPLIED', enum_type=CourseLevel, max_length=16)),
                ('description', fields.TextField(null=True, unique=False)),
                ('target_device', fields.CharEnumField(null=True, description='IPHONE: IPHONE\nANDROID: ANDROID\nFEATURE_PHONE: FEATURE_PHONE\nTABLET: TABLET\nNONE: NONE\nOTHER: OTHER', enum_type=Device, max_length=16)),
                ('duration_minutes', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'course', 'app': 'divide_support', 'unique_together': (('municipality_id', 'title'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Resident',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='residents', on_delete=OnDelete.RESTRICT)),
                ('family_name', fields.CharField(max_length=50)),
                ('given_name', fields.CharField(max_length=50)),
                ('kana', fields.CharField(null=True, max_length=100)),
                ('phone', fields.CharField(null=True, db_index=True, description='E.164 mobile', max_length=20)),
                ('landline', fields.CharField(null=True, description='E.164', max_length=20)),
                ('birth_date', fields.DateField(null=True)),
                ('birth_year', fields.IntField(null=True)),
                ('contact_preference', fields.CharEnumField(default=ContactPreference.PHONE_CALL, description='SMS: SMS\nPHONE_CALL: PHONE_CALL\nPOST: POST\nNONE: NONE', enum_type=ContactPreference, max_length=16)),
                ('sms_consent', fields.BooleanField(default=False)),
                ('sms_opted_out', fields.BooleanField(default=False)),
                ('device', fields.CharEnumField(null=True, description='IPHONE: IPHONE\nANDROID: ANDROID\nFEATURE_PHONE: FEATURE_PHONE\nTABLET: TABLET\nNONE: NONE\nOTHER: OTHER', enum_type=Device, max_length=16)),
                ('district', fields.CharField(null=True, db_index=True, max_length=100)),
                ('notes', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'resident', 'app': 'divide_support', 'indexes': [Index(fields=['municipality_id', 'family_name', 'given_name']), Index(fields=['municipality_id', 'kana'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Supporter',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='supporters', on_delete=OnDelete.RESTRICT)),
                ('display_name', fields.CharField(max_length=100)),
                ('kana', fields.CharField(null=True, max_length=100)),
                ('affiliation', fields.CharEnumField(description='CARRIER_SHOP: CARRIER_SHOP\nNPO: NPO\nVOLUNTEER: VOLUNTEER\nCITY_STAFF: CITY_STAFF\nSTUDENT: STUDENT\nOTHER: OTHER', enum_type=SupporterAffiliation, max_length=16)),
                ('organisation', fields.CharField(null=True, max_length=200)),
                ('phone', fields.CharField(null=True, max_length=20)),
                ('email', fields.CharField(null=True, max_length=254)),
                ('skills', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('certified', fields.BooleanField(default=False)),
                ('active', fields.BooleanField(default=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'supporter', 'app': 'divide_support', 'indexes': [Index(fields=['municipality_id', 'display_name'])], 'pk_attr': 'id', 'table_description': 'デジタル活用支援員: volunteers, carrier-shop staff, NPO members, students.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='users', on_delete=OnDelete.RESTRICT)),
                ('email', fields.CharField(unique=True, max_length=254)),
                ('display_name', fields.CharField(max_length=100)),
                ('role', fields.CharEnumField(description='ADMIN: ADMIN\nCOORDINATOR: COORDINATOR\nSUPPORTER: SUPPORTER\nPLANNER: PLANNER', enum_type=Role, max_length=16)),
                ('password_hash', fields.CharField(max_length=255)),
                ('supporter', fields.ForeignKeyField('divide_support.Supporter', source_field='supporter_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='users', on_delete=OnDelete.SET_NULL)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'app_user', 'app': 'divide_support', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuthToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('divide_support.User', source_field='user_id', db_index=True, db_constraint=True, to_field='id', related_name='tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'auth_token', 'app': 'divide_support', 'pk_attr': 'id', 'table_description': 'Bearer tokens; only a SHA-256 of the token is stored.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Venue',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='venues', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=200)),
                ('kind', fields.CharEnumField(description='COMMUNITY_CENTRE: COMMUNITY_CENTRE\nDIGITAL_STATION: DIGITAL_STATION\nLIBRARY: LIBRARY\nCITY_HALL: CITY_HALL\nOTHER: OTHER', enum_type=VenueKind, max_length=24)),
                ('address', fields.CharField(null=True, max_length=300)),
                ('capacity', fields.IntField(null=True)),
                ('has_wifi', fields.BooleanField(default=False)),
                ('loaner_devices', fields.IntField(default=0)),
                ('accessibility_notes', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'venue', 'app': 'divide_support', 'unique_together': (('municipality_id', 'name'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Session',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='CLASS: CLASS\nHELP_SESSION: HELP_SESSION', enum_type=SessionKind, max_length=16)),
                ('course', fields.ForeignKeyField('divide_support.Course', source_field='course_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.RESTRICT)),
                ('venue', fields.ForeignKeyField('divide_support.Venue', source_field='venue_id', db_index=True, db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=200)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('capacity', fields.IntField(null=True)),
                ('required_supporters_explicit', fields.IntField(null=True)),
                ('status', fields.CharEnumField(default=SessionStatus.SCHEDULED, description='SCHEDULED: SCHEDULED\nCANCELLED: CANCELLED\nCOMPLETED: COMPLETED', enum_type=SessionStatus, max_length=16)),
                ('sequence', fields.IntField(default=0)),
                ('cancel_reason', fields.TextField(null=True, unique=False)),
                ('series_id', fields.UUIDField(null=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'session', 'app': 'divide_support', 'indexes': [Index(fields=['municipality_id', 'starts_at']), Index(fields=['venue_id', 'starts_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Assignment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='assignments', on_delete=OnDelete.RESTRICT)),
                ('session', fields.ForeignKeyField('divide_support.Session', source_field='session_id', db_index=True, db_constraint=True, to_field='id', related_name='assignments', on_delete=OnDelete.CASCADE)),
                ('supporter', fields.ForeignKeyField('divide_support.Supporter', source_field='supporter_id', db_index=True, db_constraint=True, to_field='id', related_name='assignments', on_delete=OnDelete.RESTRICT)),
                ('role', fields.CharEnumField(default=AssignmentRole.ASSISTANT, description='LEAD: LEAD\nASSISTANT: ASSISTANT', enum_type=AssignmentRole, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'assignment', 'app': 'divide_support', 'unique_together': (('session_id', 'supporter_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Registration',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='registrations', on_delete=OnDelete.RESTRICT)),
                ('session', fields.ForeignKeyField('divide_support.Session', source_field='session_id', db_index=True, db_constraint=True, to_field='id', related_name='registrations', on_delete=OnDelete.RESTRICT)),
                ('resident', fields.ForeignKeyField('divide_support.Resident', source_field='resident_id', db_index=True, db_constraint=True, to_field='id', related_name='registrations', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharEnumField(description='CONFIRMED: CONFIRMED\nWAITLISTED: WAITLISTED\nCANCELLED: CANCELLED', enum_type=RegistrationStatus, max_length=16)),
                ('waitlist_position', fields.IntField(null=True)),
                ('source', fields.CharEnumField(description='PHONE: PHONE\nCOUNTER: COUNTER\nWALK_IN: WALK_IN\nONLINE: ONLINE\nSUPPORTER: SUPPORTER', enum_type=RegistrationSource, max_length=16)),
                ('attendance', fields.CharEnumField(null=True, description='ATTENDED: ATTENDED\nNO_SHOW: NO_SHOW', enum_type=Attendance, max_length=16)),
                ('checked_in_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('promoted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancel_reason', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'registration', 'app': 'divide_support', 'indexes': [Index(fields=['session_id', 'status', 'waitlist_position'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Visit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='visits', on_delete=OnDelete.RESTRICT)),
                ('session', fields.ForeignKeyField('divide_support.Session', source_field='session_id', db_index=True, db_constraint=True, to_field='id', related_name='visits', on_delete=OnDelete.RESTRICT)),
                ('resident', fields.ForeignKeyField('divide_support.Resident', source_field='resident_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='visits', on_delete=OnDelete.RESTRICT)),
                ('age_at_visit', fields.IntField(null=True)),
                ('topic', fields.CharEnumField(description='DEVICE_BASICS: DEVICE_BASICS\nMESSAGING_SNS: MESSAGING_SNS\nCITY_ONLINE_SERVICES: CITY_ONLINE_SERVICES\nMY_NUMBER_CARD: MY_NUMBER_CARD\nSECURITY: SECURITY\nCASHLESS: CASHLESS\nOTHER: OTHER', enum_type=CourseTopic, max_length=32)),
                ('outcome', fields.CharEnumField(description='RESOLVED: RESOLVED\nPARTLY_RESOLVED: PARTLY_RESOLVED\nNEEDS_FOLLOW_UP: NEEDS_FOLLOW_UP', enum_type=VisitOutcome, max_length=24)),
                ('helped_by', fields.ForeignKeyField('divide_support.Supporter', source_field='helped_by_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='visits', on_delete=OnDelete.RESTRICT)),
                ('notes', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'visit', 'app': 'divide_support', 'pk_attr': 'id', 'table_description': 'A drop-in help visit; anonymous visits keep only an age and what was asked.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FollowUp',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='follow_ups', on_delete=OnDelete.RESTRICT)),
                ('resident', fields.ForeignKeyField('divide_support.Resident', source_field='resident_id', db_index=True, db_constraint=True, to_field='id', related_name='follow_ups', on_delete=OnDelete.RESTRICT)),
                ('registration', fields.ForeignKeyField('divide_support.Registration', source_field='registration_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='follow_ups', on_delete=OnDelete.RESTRICT)),
                ('visit', fields.ForeignKeyField('divide_support.Visit', source_field='visit_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='follow_ups', on_delete=OnDelete.RESTRICT)),
                ('purpose', fields.CharEnumField(default=FollowUpPurpose.MANUAL, description='AFTER_CLASS: AFTER_CLASS\nAFTER_VISIT: AFTER_VISIT\nSEAT_AVAILABLE: SEAT_AVAILABLE\nMANUAL: MANUAL', enum_type=FollowUpPurpose, max_length=24)),
                ('due_on', fields.DateField()),
                ('channel', fields.CharEnumField(description='PHONE_CALL: PHONE_CALL\nSMS: SMS\nVISIT: VISIT\nPOST: POST', enum_type=FollowUpChannel, max_length=16)),
                ('status', fields.CharEnumField(default=FollowUpStatus.OPEN, description='OPEN: OPEN\nDONE: DONE\nCANCELLED: CANCELLED', enum_type=FollowUpStatus, max_length=16)),
                ('outcome', fields.CharEnumField(null=True, description='USES_INDEPENDENTLY: USES_INDEPENDENTLY\nNEEDS_MORE_HELP: NEEDS_MORE_HELP\nNOT_REACHED: NOT_REACHED\nDECLINED: DECLINED', enum_type=FollowUpOutcome, max_length=24)),
                ('assigned_to', fields.ForeignKeyField('divide_support.User', source_field='assigned_to_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='follow_ups', on_delete=OnDelete.SET_NULL)),
                ('notes', fields.TextField(null=True, unique=False)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'follow_up', 'app': 'divide_support', 'indexes': [Index(fields=['municipality_id', 'status', 'due_on'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
