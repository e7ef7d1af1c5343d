"""Which way a message goes to a resident: SMS, an automated voice call, or not at all (why).

The one rule, read at planning, at revival and again when the message is claimed, so a
consent withdrawn (or given) in between always wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from divide_support.messaging.eligibility import skip_reason_for
from divide_support.messaging.models import Channel, Message, MessageKind, SkipReason
from divide_support.people.models import ContactPreference, Resident

# What a call says: the confirmation of a seat and the reminder the day before. Everything
# else (changes, cancellations, follow-ups) stays as it was: SMS or the staff's own call.
VOICE_KINDS = (MessageKind.CONFIRMATION, MessageKind.REMINDER_DAY_BEFORE)


@dataclass(frozen=True)
class Route:
    channel: Channel
    to: str | None
    skip_reason: SkipReason | None = None


def number_to_call(resident: Resident) -> str | None:
    """The number an automated call rings: the landline (the home phone) first, else the
    mobile."""
    return resident.landline or resident.phone


def takes_calls(resident: Resident) -> bool:
    """Consented to automated calls, and either prefers a phone call or has a landline and
    no mobile (SMS cannot reach them)."""
    if resident.erased_at is not None or not resident.call_consent:
        return False
    if number_to_call(resident) is None:
        return False
    return (resident.contact_preference == ContactPreference.PHONE_CALL
            or (not resident.phone and bool(resident.landline)))


def route(resident: Resident, kind: MessageKind, *, has_words: bool = True) -> Route:
    """How a message of `kind` reaches `resident` now: a call, an SMS, or why neither. A call
    needs words to speak (`has_words`): a waitlist place has none (its menu would invite them
    to come), nor has a message planned before calls existed."""
    if kind in VOICE_KINDS and has_words and takes_calls(resident):
        return Route(Channel.VOICE, number_to_call(resident))
    return Route(Channel.SMS, resident.phone, skip_reason_for(resident))


def route_for(message: Message, resident: Resident) -> Route:
    """route() for a planned message: a call only when the message has words to speak (one
    planned before calls existed has none, and goes as an SMS or not at all)."""
    return route(resident, MessageKind(message.kind), has_words=bool(message.voice_script))
