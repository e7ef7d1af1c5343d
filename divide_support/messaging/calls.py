"""An automated call as it happens: answered (by a person or a machine), and the key the
resident pressed. The webhooks (webhooks.py) verify Twilio's signature and call these.

A key acts only on the call's own message, and only while what it is about is still held:
pressing 1 or 2 for a seat given up meanwhile changes nothing, and the voice says so.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise.transactions import in_transaction

from divide_support.messaging import occasions
from divide_support.messaging.models import CallOutcome, Channel, Message


class KeyAnswer(StrEnum):
    CONFIRMED = "CONFIRMED"
    GAVE_UP = "GAVE_UP"
    NOT_ACTIVE = "NOT_ACTIVE"
    REPEAT = "REPEAT"
    UNKNOWN_KEY = "UNKNOWN_KEY"


# Twilio's call states after which nothing more happens on the line.
CALL_OVER = ("completed", "busy", "no-answer", "failed", "canceled")


async def call_message(message_id: int | None, attempt: int | None, call_sid: str | None, *,
                       answering: bool = False) -> Message | None:
    """The message a call is about, or None: a voice message with words, this attempt, this
    very call (its sid; only the moment of answering may adopt the sid of a call whose
    placing ended ambiguously), and a call still on the line. So a signed request replayed
    later, or made for another call, changes nothing."""
    if message_id is None or not call_sid:
        return None
    message = await Message.get_or_none(id=message_id, channel=Channel.VOICE)
    if message is None or not message.voice_script or attempt != message.attempts:
        return None
    if message.provider_id != call_sid and not (answering and message.provider_id is None):
        return None
    if message.provider_status in CALL_OVER:
        return None
    return message


async def still_held(message: Message) -> bool:
    """Whether what the call is about still stands (the seat may have gone while it rang)."""
    return not await occasions.unwanted([message])


async def answered(message: Message, call_sid: str | None, answered_by: str | None) -> None:
    """Someone (or something) picked up: adopt the call's sid, note who answered."""
    async with in_transaction():
        current = await Message.filter(id=message.id).select_for_update().get()
        if call_sid and not current.provider_id:
            current.provider_id = call_sid[:64]
        if answered_by:
            current.answered_by = answered_by[:32]
        if current.call_outcome is None:
            current.call_outcome = CallOutcome.ANSWERED
        await current.save(update_fields=["provider_id", "answered_by", "call_outcome",
                                          "updated_at"])
        message.answered_by = current.answered_by


async def pressed(message: Message, digits: str) -> KeyAnswer:
    """1: they will come. 2: they give up the seat (cancelled as staff would). 9: again."""
    key = digits.strip()[:1]
    if key == "9":
        return KeyAnswer.REPEAT
    if key not in ("1", "2"):
        return KeyAnswer.UNKNOWN_KEY
    if not await still_held(message):
        return KeyAnswer.NOT_ACTIVE  # the seat went meanwhile (or the session changed)
    if key == "2":
        if not await occasions.give_up(message):
            return KeyAnswer.NOT_ACTIVE
        outcome, answer = CallOutcome.GAVE_UP_SEAT, KeyAnswer.GAVE_UP
    else:
        outcome, answer = CallOutcome.CONFIRMED, KeyAnswer.CONFIRMED
    await Message.filter(id=message.id).update(call_outcome=outcome)
    return answer
