"""Resend: a FAILED or UNDELIVERED message tried again, when it still applies."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.errors import DomainError
from divide_support.core.permissions import require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.messaging import occasions
from divide_support.messaging.eligibility import SKIP_REASON_TEXT, skip_reason_for
from divide_support.messaging.errors import MessagingCode
from divide_support.messaging.models import Message, MessageStatus
from divide_support.messaging.timing import after_quiet_hours
from divide_support.people.models import Resident


async def resend(*, actor: Actor, message_id: int) -> Message:
    """Try a FAILED or UNDELIVERED message again: the same row (and idempotency key),
    a new attempt, checked again for eligibility and timing."""
    require_staff(actor)
    async with in_transaction():
        message = await get_scoped(Message, message_id, actor, what="メッセージ",
                                   field="message_id", for_update=True)
        if message.status not in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
            raise DomainError(MessagingCode.NOT_RESENDABLE,
                              "送信に失敗したメッセージだけ再送できます。",
                              "message_id",
                              message_en="Only FAILED or UNDELIVERED messages can be resent.")
        if await occasions.unwanted([message]):
            raise DomainError(MessagingCode.NOT_RESENDABLE,
                              "申込の取消や回の中止・変更があったため、このメッセージは再送できません。",
                              "message_id",
                              message_en="The seat, session or follow-up it was about has changed.")
        resident = await Resident.get(id=message.resident_id)
        reason = skip_reason_for(resident)
        if reason is not None:
            raise DomainError(MessagingCode.NOT_ELIGIBLE, f"再送できません: {SKIP_REASON_TEXT[reason]}。",
                              "message_id",
                              message_en=f"Cannot resend: {reason}.")
        municipality = await Municipality.get(id=message.municipality_id)
        send_after = after_quiet_hours(timeutil.now(), municipality)
        if message.expires_at is not None and send_after >= message.expires_at:
            raise DomainError(MessagingCode.TOO_LATE, "開催時刻を過ぎたため再送できません。",
                              "message_id", message_en="Too late to resend.")
        message.status = MessageStatus.PENDING
        message.to = resident.phone
        message.send_after = send_after
        message.next_attempt_at = None
        message.retries = 0
        message.error_code = None
        message.provider_id = None
        message.provider_status = None
        message.claimed_by = message.claimed_at = message.lease_until = None
        message.send_started_at = None
        await message.save()
        await audit.record(actor, "message.resend", "Message", [message.id])
    return message
