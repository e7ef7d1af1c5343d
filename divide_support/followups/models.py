from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class FollowUpChannel(StrEnum):
    PHONE_CALL = "PHONE_CALL"
    SMS = "SMS"
    VISIT = "VISIT"
    POST = "POST"


class FollowUpStatus(StrEnum):
    OPEN = "OPEN"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


class FollowUpOutcome(StrEnum):
    USES_INDEPENDENTLY = "USES_INDEPENDENTLY"
    NEEDS_MORE_HELP = "NEEDS_MORE_HELP"
    NOT_REACHED = "NOT_REACHED"
    DECLINED = "DECLINED"


class FollowUpPurpose(StrEnum):
    """Why the task exists, so staff know what to say on the phone."""

    AFTER_CLASS = "AFTER_CLASS"
    AFTER_VISIT = "AFTER_VISIT"
    SEAT_AVAILABLE = "SEAT_AVAILABLE"
    MANUAL = "MANUAL"


class FollowUp(Model):
    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="follow_ups", on_delete=fields.RESTRICT,
        db_index=True,
    )
    resident = fields.ForeignKeyField(
        "divide_support.Resident", related_name="follow_ups", on_delete=fields.RESTRICT,
        db_index=True,
    )
    registration = fields.ForeignKeyField(
        "divide_support.Registration", related_name="follow_ups", null=True,
        on_delete=fields.RESTRICT, db_index=True,
    )
    visit = fields.ForeignKeyField(
        "divide_support.Visit", related_name="follow_ups", null=True, on_delete=fields.RESTRICT,
        db_index=True,
    )
    purpose = fields.CharEnumField(FollowUpPurpose, max_length=24, default=FollowUpPurpose.MANUAL)
    due_on = fields.DateField()
    channel = fields.CharEnumField(FollowUpChannel, max_length=16)
    status = fields.CharEnumField(FollowUpStatus, max_length=16, default=FollowUpStatus.OPEN)
    outcome = fields.CharEnumField(FollowUpOutcome, max_length=24, null=True)
    assigned_to = fields.ForeignKeyField(
        "divide_support.User", related_name="follow_ups", null=True, on_delete=fields.SET_NULL,
        db_index=True,
    )
    notes = fields.TextField(null=True)
    completed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "follow_up"
        indexes = (("municipality_id", "status", "due_on"),)
