"""Planning (called inside the transaction of the change that causes it): the outbox rows
for what the areas hand down, withdrawn when they no longer apply, revived when the resident
can be reached again.

Planning writes Message rows only; the dispatcher sends them. The unique idempotency
key (registration, kind, session sequence) makes planning twice a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q

from divide_support.accounts.models import Municipality
from divide_support.core import timeutil
from divide_support.core.bulk import insert_all
from divide_support.messaging import occasions
from divide_support.messaging.channels import VOICE_KINDS, route, route_for
from divide_support.messaging.eligibility import ELIGIBILITY_REASONS
from divide_support.messaging.models import Channel, Message, MessageKind, MessageStatus, SkipReason
from divide_support.messaging.segments import count_segments
from divide_support.messaging.templates import MessageFacts, render
from divide_support.messaging.timing import REMINDER_KINDS, earliest_send
from divide_support.messaging.voice import voice_script
from divide_support.people.models import Resident


@dataclass(frozen=True)
class Occasion:
    """One message as the area it is about hands it down: to whom, which kind, the facts its
    words need, when it is meant to go and when it becomes pointless, and the ids of what it
    is about (handed back to that area's check in `occasions` at send time). `key` makes
    planning twice a no-op."""

    kind: MessageKind
    key: str
    resident: Resident
    municipality: Municipality
    facts: MessageFacts
    moment: datetime
    expires_at: datetime | None
    session_id: int | None = None
    session_sequence: int | None = None
    registration_id: int | None = None
    follow_up_id: int | None = None


def _planned(occasion: Occasion) -> Message:
    """The outbox row for one message (not yet saved): when it may go, or why not."""
    now = timeutil.now()
    kind, resident, municipality = occasion.kind, occasion.resident, occasion.municipality
    moment, expires_at = occasion.moment, occasion.expires_at
    body = render(kind, occasion.facts)
    script = voice_script(kind, occasion.facts) if kind in VOICE_KINDS else None
    way = route(resident, kind, has_words=script is not None)
    send_after = earliest_send(way.channel, kind, moment, now, municipality)
    status, reason = MessageStatus.PENDING, way.skip_reason
    if reason is not None:
        status = MessageStatus.SKIPPED
    elif (kind in REMINDER_KINDS and moment < now) or (expires_at and send_after >= expires_at):
        status, reason = MessageStatus.SKIPPED, SkipReason.TOO_LATE
    count = count_segments(body)
    return Message(
        municipality_id=municipality.id, resident_id=resident.id, kind=kind,
        idempotency_key=occasion.key, session_id=occasion.session_id,
        session_sequence=occasion.session_sequence, registration_id=occasion.registration_id,
        follow_up_id=occasion.follow_up_id, channel=way.channel, to=way.to, body=body,
        voice_script=script,
        segments=count.segments, encoding=count.encoding, send_after=send_after,
        expires_at=expires_at, status=status, skip_reason=reason,
    )


async def plan(occasions: Sequence[Occasion]) -> None:
    """One INSERT for all these messages; one already planned (same key) stays as it is."""
    rows = [_planned(occasion) for occasion in occasions]
    no_second_call_soon(rows)
    await insert_all(rows, ignore_conflicts=True)


# A confirmation call names the date and time: a reminder call this soon after it would only
# ring an older resident twice (booked the evening before, both would come at 10:00).
REMINDER_CALL_GAP = timedelta(hours=12)


def no_second_call_soon(rows: Sequence[Message]) -> None:
    """Among messages planned together, a day-before reminder call within REMINDER_CALL_GAP
    of the same seat's confirmation call is not made (SKIPPED, too late to be a reminder)."""
    calls = {row.registration_id: row for row in rows
             if row.channel == Channel.VOICE and row.kind == MessageKind.CONFIRMATION
             and row.status == MessageStatus.PENDING and row.registration_id is not None}
    for row in rows:
        confirmation = calls.get(row.registration_id)
        if (confirmation is not None and row.channel == Channel.VOICE
                and row.kind == MessageKind.REMINDER_DAY_BEFORE
                and row.status == MessageStatus.PENDING
                and row.send_after - confirmation.send_after < REMINDER_CALL_GAP):
            row.status, row.skip_reason = MessageStatus.SKIPPED, SkipReason.TOO_LATE
            row.last_error = "the confirmation call just before says it"


async def _cancel_unsent(**filters: object) -> int:
    """Withdraw what has not gone out: pending, claimed but not yet handed to the provider
    (the sender then finds its claim gone), and skipped for eligibility (so giving consent
    later cannot bring it back)."""
    not_out = (Q(status=MessageStatus.PENDING)
               | Q(status=MessageStatus.SENDING, send_started_at__isnull=True)
               | Q(status=MessageStatus.SKIPPED, skip_reason__in=ELIGIBILITY_REASONS))
    return await Message.filter(not_out, **filters).update(
        status=MessageStatus.CANCELLED, claimed_by=None, lease_until=None,
        updated_at=timeutil.now())


async def cancel_for_session(session_id: int, *, before_sequence: int | None = None) -> int:
    """The session was cancelled (everything unsent about it), or moved (what was planned
    for a sequence before `before_sequence`: it would say the old time)."""
    if before_sequence is None:
        return await _cancel_unsent(session_id=session_id)
    return await _cancel_unsent(session_id=session_id, session_sequence__lt=before_sequence)


async def cancel_for_registration(registration_id: int) -> int:
    """The seat was given up: its unsent confirmation and reminders must not go out."""
    return await _cancel_unsent(registration_id=registration_id)


async def cancel_for_follow_up(follow_up_id: int) -> int:
    return await _cancel_unsent(follow_up_id=follow_up_id)


async def revive_for_resident(resident: Resident) -> int:
    """The resident can now be reached (SMS consent given, opted back in, calls consented
    to): reminders and follow-up messages skipped for that reason go out after all, by the
    way that now reaches them, if still in time."""
    now = timeutil.now()
    municipality = await Municipality.get(id=resident.municipality_id)
    revived = 0
    rows = await Message.filter(
        resident_id=resident.id, status=MessageStatus.SKIPPED,
        skip_reason__in=ELIGIBILITY_REASONS,
        kind__in=(*REMINDER_KINDS, MessageKind.FOLLOW_UP),
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).select_for_update()
    gone = await occasions.unwanted(list(rows))
    for message in rows:
        way = route_for(message, resident)
        if message.id in gone or way.skip_reason is not None:
            continue
        send_after = earliest_send(way.channel, MessageKind(message.kind), message.send_after,
                                   now, municipality)
        if message.expires_at is not None and send_after >= message.expires_at:
            continue
        if message.kind in REMINDER_KINDS and message.send_after < now:
            continue  # its moment has passed
        message.status, message.skip_reason = MessageStatus.PENDING, None
        message.send_after, message.to, message.channel = send_after, way.to, way.channel
        await message.save(update_fields=["status", "skip_reason", "send_after", "to",
                                          "channel", "updated_at"])
        revived += 1
    return revived
