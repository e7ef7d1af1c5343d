"""Residents' rights: what erasure leaves of a resident's messages and replies, and how long
replies nobody could be told of are kept."""

from __future__ import annotations

from datetime import timedelta

from tortoise.expressions import Q

from divide_support.core import timeutil
from divide_support.messaging.models import InboundMessage, Message
from divide_support.messaging.planning import _cancel_unsent
from divide_support.people.models import Resident

ERASED_BODY = "（消去済み）"


async def erase_for_resident(resident: Resident) -> None:
    """Nothing more goes out to them; bodies (which carry the name), numbers and provider
    errors go. The rows stay, so the SMS budget per month stays as it was. Their replies lose
    the number and the text: those linked to them, and, when nobody else (in any municipality)
    has their number, every reply from it, also those no municipality could be told of. A
    shared number (a couple with one phone) keeps the other person's replies. The caller erases
    before the number is gone."""
    await _cancel_unsent(resident_id=resident.id)
    await Message.filter(resident_id=resident.id).update(
        body=ERASED_BODY, voice_script=None, to=None, last_error=None, updated_at=timeutil.now())
    replies = Q(resident_id=resident.id)
    if resident.phone and not await Resident.filter(
            phone=resident.phone, erased_at__isnull=True).exclude(id=resident.id).exists():
        replies |= Q(from_number=resident.phone, resident_id__isnull=True) & (
            Q(municipality_id=resident.municipality_id) | Q(municipality_id__isnull=True))
    await InboundMessage.filter(replies).update(body=ERASED_BODY, from_number="")


UNATTRIBUTED_REPLY_DAYS = 90


async def purge_unattributed_replies() -> int:
    """Replies no municipality could be told of (no code in the webhook URL, a number nobody
    wrote to) are read by no one: after 90 days they go."""
    cutoff = timeutil.now() - timedelta(days=UNATTRIBUTED_REPLY_DAYS)
    return await InboundMessage.filter(municipality_id__isnull=True,
                                       received_at__lt=cutoff).delete()
