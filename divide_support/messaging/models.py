from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


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
    # The provider may have accepted it (timeout, 5xx, crash after claim): never resent blindly.
    UNKNOWN = "UNKNOWN"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    UNDELIVERED = "UNDELIVERED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


class Channel(StrEnum):
    """How a message reaches the resident: a text, or an automated voice call (to those who
    consented to calls and prefer them, or have a landline and no mobile)."""

    SMS = "SMS"
    VOICE = "VOICE"


class CallOutcome(StrEnum):
    """What became of an automated call, as staff read it."""

    CONFIRMED = "CONFIRMED"  # answered, pressed 1: they will come
    GAVE_UP_SEAT = "GAVE_UP_SEAT"  # answered, pressed 2: the seat was cancelled
    ANSWERED = "ANSWERED"  # answered, heard it, pressed nothing (or 9 and hung up)
    MACHINE = "MACHINE"  # an answering machine: the whole message was left on it
    NO_ANSWER = "NO_ANSWER"
    BUSY = "BUSY"
    FAILED = "FAILED"


class SkipReason(StrEnum):
    NO_CONSENT = "NO_CONSENT"
    NO_MOBILE = "NO_MOBILE"
    PREFERS_OTHER_CHANNEL = "PREFERS_OTHER_CHANNEL"
    OPTED_OUT = "OPTED_OUT"
    TOO_LATE = "TOO_LATE"


class InboundAction(StrEnum):
    OPT_OUT = "OPT_OUT"
    OPT_IN = "OPT_IN"
    HELP = "HELP"
    NONE = "NONE"


class Message(Model):
    """The SMS outbox: one row per message that was, will be or was decided not to be sent."""

    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="messages", on_delete=fields.RESTRICT,
        db_index=True,
    )
    resident = fields.ForeignKeyField(
        "divide_support.Resident", related_name="messages", on_delete=fields.RESTRICT,
        db_index=True,
    )
    registration = fields.ForeignKeyField(
        "divide_support.Registration", related_name="messages", null=True,
        on_delete=fields.RESTRICT, db_index=True,
    )
    follow_up = fields.ForeignKeyField(
        "divide_support.FollowUp", related_name="messages", null=True,
        on_delete=fields.RESTRICT, db_index=True,
    )
    session = fields.ForeignKeyField(
        "divide_support.Session", related_name="messages", null=True,
        on_delete=fields.RESTRICT, db_index=True,
    )
    kind = fields.CharEnumField(MessageKind, max_length=24)
    channel = fields.CharEnumField(Channel, max_length=8, default=Channel.SMS)
    # At most one message per (registration, kind, session sequence) or per follow-up.
    idempotency_key = fields.CharField(max_length=100, unique=True)
    session_sequence = fields.IntField(null=True)
    to = fields.CharField(max_length=20, null=True, description="E.164 at planning time")
    body = fields.TextField()
    # The words a call speaks (confirmation and day-before reminder): kept beside the SMS
    # body, so the channel can follow the resident's consent until the moment it goes.
    voice_script = fields.TextField(null=True)
    call_outcome = fields.CharEnumField(CallOutcome, max_length=16, null=True)
    call_seconds = fields.IntField(null=True)
    answered_by = fields.CharField(max_length=32, null=True, description="Twilio's AnsweredBy")
    segments = fields.IntField()
    encoding = fields.CharField(max_length=8)
    send_after = fields.DatetimeField()
    # After this moment the message is pointless (the class has started): SKIPPED "too late".
    expires_at = fields.DatetimeField(null=True)
    status = fields.CharEnumField(MessageStatus, max_length=16, default=MessageStatus.PENDING)
    skip_reason = fields.CharEnumField(SkipReason, max_length=24, null=True)
    # Every request to the provider counts (never reset: callbacks name the attempt they
    # belong to); `retries` counts 429 / refused connections since the last (re)send.
    attempts = fields.IntField(default=0)
    retries = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    claimed_by = fields.CharField(max_length=64, null=True)
    claimed_at = fields.DatetimeField(null=True)
    lease_until = fields.DatetimeField(null=True)
    # Set just before the request to the provider leaves: without it, a lost claim provably
    # never reached the provider and may simply go back to PENDING.
    send_started_at = fields.DatetimeField(null=True)
    provider_id = fields.CharField(max_length=64, null=True, unique=True)
    provider_status = fields.CharField(max_length=16, null=True)
    error_code = fields.CharField(max_length=16, null=True)
    last_error = fields.TextField(null=True)
    sent_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "message"
        indexes = (
            ("status", "send_after"),
            ("municipality_id", "created_at"),
            ("municipality_id", "status", "kind"),
            ("to", "claimed_at"),
        )


class InboundMessage(Model):
    """A reply from a resident (two-way SMS), kept for staff to read."""

    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="inbound_messages", null=True,
        on_delete=fields.RESTRICT, db_index=True,
    )
    resident = fields.ForeignKeyField(
        "divide_support.Resident", related_name="inbound_messages", null=True,
        on_delete=fields.RESTRICT, db_index=True,
    )
    provider_id = fields.CharField(max_length=64, unique=True)
    from_number = fields.CharField(max_length=20)
    body = fields.TextField()
    action = fields.CharEnumField(InboundAction, max_length=16, default=InboundAction.NONE)
    # Free text that reads like "please stop" is put in front of staff, not silently ignored.
    needs_review = fields.BooleanField(default=False)
    reviewed_at = fields.DatetimeField(null=True)
    reviewed_by = fields.ForeignKeyField(
        "divide_support.User", related_name="reviewed_inbound", null=True,
        on_delete=fields.SET_NULL, db_index=True,
    )
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "inbound_message"
        indexes = (("municipality_id", "needs_review", "received_at"),)


class CallRate(Model):
    """Per-municipality call slots (calls have their own, slower pace than SMS)."""

    municipality_id = fields.IntField(primary_key=True)
    next_slot_at = fields.DatetimeField()

    class Meta:
        table = "call_rate"


class SmsRate(Model):
    """Per-municipality send slots, shared by every worker (one sender per municipality)."""

    municipality_id = fields.IntField(primary_key=True)
    next_slot_at = fields.DatetimeField()

    class Meta:
        table = "sms_rate"
