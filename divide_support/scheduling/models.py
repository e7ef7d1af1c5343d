from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from divide_support.core.tokens import new_calendar_token
from divide_support.people.models import Device


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


class CourseTopic(StrEnum):
    DEVICE_BASICS = "DEVICE_BASICS"
    MESSAGING_SNS = "MESSAGING_SNS"
    CITY_ONLINE_SERVICES = "CITY_ONLINE_SERVICES"
    MY_NUMBER_CARD = "MY_NUMBER_CARD"
    SECURITY = "SECURITY"
    CASHLESS = "CASHLESS"
    OTHER = "OTHER"


class CourseLevel(StrEnum):
    """National programme menus: 基本的な講座 and 応用的な講座."""

    BASIC = "BASIC"
    APPLIED = "APPLIED"


class AssignmentRole(StrEnum):
    LEAD = "LEAD"
    ASSISTANT = "ASSISTANT"


class RegistrationStatus(StrEnum):
    CONFIRMED = "CONFIRMED"
    WAITLISTED = "WAITLISTED"
    CANCELLED = "CANCELLED"


# Holding a seat or a waitlist place: an "active" registration (one per resident and session).
ACTIVE_STATUSES = (RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED)


class RegistrationSource(StrEnum):
    PHONE = "PHONE"
    COUNTER = "COUNTER"
    WALK_IN = "WALK_IN"
    ONLINE = "ONLINE"
    SUPPORTER = "SUPPORTER"


class Attendance(StrEnum):
    ATTENDED = "ATTENDED"
    NO_SHOW = "NO_SHOW"


class VisitOutcome(StrEnum):
    RESOLVED = "RESOLVED"
    PARTLY_RESOLVED = "PARTLY_RESOLVED"
    NEEDS_FOLLOW_UP = "NEEDS_FOLLOW_UP"


class Venue(Model):
    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="venues", on_delete=fields.RESTRICT,
        db_index=True,
    )
    name = fields.CharField(max_length=200)
    kind = fields.CharEnumField(VenueKind, max_length=24)
    address = fields.CharField(max_length=300, null=True)
    capacity = fields.IntField(null=True)
    has_wifi = fields.BooleanField(default=False)
    loaner_devices = fields.IntField(default=0)
    accessibility_notes = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "venue"
        unique_together = (("municipality_id", "name"),)


class Course(Model):
    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="courses", on_delete=fields.RESTRICT,
        db_index=True,
    )
    title = fields.CharField(max_length=200)
    topic = fields.CharEnumField(CourseTopic, max_length=32)
    level = fields.CharEnumField(CourseLevel, max_length=16, default=CourseLevel.BASIC)
    description = fields.TextField(null=True)
    target_device = fields.CharEnumField(Device, max_length=16, null=True)
    duration_minutes = fields.IntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "course"
        unique_together = (("municipality_id", "title"),)


class Session(Model):
    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="sessions", on_delete=fields.RESTRICT,
        db_index=True,
    )
    kind = fields.CharEnumField(SessionKind, max_length=16)
    course = fields.ForeignKeyField(
        "divide_support.Course", related_name="sessions", null=True, on_delete=fields.RESTRICT,
        db_index=True,
    )
    venue = fields.ForeignKeyField(
        "divide_support.Venue", related_name="sessions", on_delete=fields.RESTRICT, db_index=True
    )
    title = fields.CharField(max_length=200)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    capacity = fields.IntField(null=True)
    required_supporters_explicit = fields.IntField(null=True)
    # Stored SCHEDULED or CANCELLED; COMPLETED is derived from ends_at when read.
    status = fields.CharEnumField(SessionStatus, max_length=16, default=SessionStatus.SCHEDULED)
    sequence = fields.IntField(default=0)
    cancel_reason = fields.TextField(null=True)
    series_id = fields.UUIDField(null=True, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "session"
        indexes = (("municipality_id", "starts_at"), ("venue_id", "starts_at"))


class Assignment(Model):
    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="assignments", on_delete=fields.RESTRICT,
        db_index=True,
    )
    session = fields.ForeignKeyField(
        "divide_support.Session", related_name="assignments", on_delete=fields.CASCADE,
        db_index=True,
    )
    supporter = fields.ForeignKeyField(
        "divide_support.Supporter", related_name="assignments", on_delete=fields.RESTRICT,
        db_index=True,
    )
    role = fields.CharEnumField(AssignmentRole, max_length=16, default=AssignmentRole.ASSISTANT)
    # The supporter's invite for this duty: /calendar/assignments/{token}.ics
    calendar_token = fields.CharField(max_length=32, unique=True, default=new_calendar_token)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "assignment"
        unique_together = (("session_id", "supporter_id"),)


class RemovedAssignment(Model):
    """A duty taken off a supporter. Kept so the duty's invite link can answer with a
    METHOD:CANCEL (the supporter's calendar drops the event) instead of a 404."""

    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="removed_assignments",
        on_delete=fields.RESTRICT, db_index=True,
    )
    assignment_id = fields.IntField(description="The id the duty had (its calendar UID)")
    session = fields.ForeignKeyField(
        "divide_support.Session", related_name="removed_assignments", on_delete=fields.CASCADE,
        db_index=True,
    )
    supporter = fields.ForeignKeyField(
        "divide_support.Supporter", related_name="removed_assignments",
        on_delete=fields.RESTRICT, db_index=True,
    )
    role = fields.CharEnumField(AssignmentRole, max_length=16)
    calendar_token = fields.CharField(max_length=32, unique=True)
    removed_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "removed_assignment"


class Registration(Model):
    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="registrations", on_delete=fields.RESTRICT,
        db_index=True,
    )
    session = fields.ForeignKeyField(
        "divide_support.Session", related_name="registrations", on_delete=fields.RESTRICT,
        db_index=True,
    )
    resident = fields.ForeignKeyField(
        "divide_support.Resident", related_name="registrations", on_delete=fields.RESTRICT,
        db_index=True,
    )
    status = fields.CharEnumField(RegistrationStatus, max_length=16)
    waitlist_position = fields.IntField(null=True)
    source = fields.CharEnumField(RegistrationSource, max_length=16)
    attendance = fields.CharEnumField(Attendance, max_length=16, null=True)
    checked_in_at = fields.DatetimeField(null=True)
    promoted_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    cancel_reason = fields.TextField(null=True)
    # The resident's age on the day of the session, kept when their birth date is erased so
    # the reports count them in the same band as before.
    age_at_session = fields.IntField(null=True)
    # The resident's invite for this seat: /calendar/registrations/{token}.ics
    calendar_token = fields.CharField(max_length=32, unique=True, default=new_calendar_token)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "registration"
        indexes = (("session_id", "status", "waitlist_position"),)


class Visit(Model):
    """A drop-in help visit; anonymous visits keep only an age and what was asked."""

    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="visits", on_delete=fields.RESTRICT,
        db_index=True,
    )
    session = fields.ForeignKeyField(
        "divide_support.Session", related_name="visits", on_delete=fields.RESTRICT, db_index=True
    )
    resident = fields.ForeignKeyField(
        "divide_support.Resident", related_name="visits", null=True, on_delete=fields.RESTRICT,
        db_index=True,
    )
    age_at_visit = fields.IntField(null=True)
    topic = fields.CharEnumField(CourseTopic, max_length=32)
    outcome = fields.CharEnumField(VisitOutcome, max_length=24)
    helped_by = fields.ForeignKeyField(
        "divide_support.Supporter", related_name="visits", null=True, on_delete=fields.RESTRICT,
        db_index=True,
    )
    notes = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "visit"
