"""Replies: stored once, keywords acted on, the answer to send, and staff's review."""

from __future__ import annotations

import re
import unicodedata

from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.permissions import require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import replace_refused
from divide_support.messaging.consent import opt_out_by_phone
from divide_support.messaging.models import InboundAction, InboundMessage, Message
from divide_support.people.models import Resident

MUNICIPALITY_CODE = re.compile(r"[0-9]{6}")
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "停止", "配信停止"}
START_WORDS = {"START", "UNSTOP", "再開"}
HELP_WORDS = {"HELP", "ヘルプ"}
# Free text that sounds like "please stop": staff decide, nothing is silently ignored.
STOP_WISH = re.compile(
    r"(送らないで|おくらないで|送ってこないで|いらない|要らない|不要|やめて|止めて|とめて|"
    r"やめてください|停止して|配信しないで|迷惑|結構です|解除)"
)


def classify_reply(body: str) -> tuple[InboundAction, bool]:
    """(action, needs_review) for a reply text."""
    text = unicodedata.normalize("NFKC", body).strip()
    word = re.sub(r"[\s。．.!！、]+", "", text).upper()
    if word in STOP_WORDS:
        return InboundAction.OPT_OUT, False
    if word in START_WORDS:
        return InboundAction.OPT_IN, False
    if word in HELP_WORDS:
        return InboundAction.HELP, False
    return InboundAction.NONE, bool(STOP_WISH.search(text))


async def municipality_for_reply(from_number: str, code: str | None) -> Municipality | None:
    """The municipality named in the webhook URL, else the one that last wrote to them."""
    if code:
        if not MUNICIPALITY_CODE.fullmatch(code):
            return None  # not a code we put in a webhook URL: staff look at the message
        return await Municipality.get_or_none(code=code)
    last = await Message.filter(to=from_number).order_by("-created_at", "-id").first()
    if last is None:
        return None
    return await Municipality.get(id=last.municipality_id)


async def receive_reply(*, provider_id: str, from_number: str, body: str,
                        municipality_code: str | None) -> tuple[InboundMessage, Municipality | None]:
    """Store a reply and act on keywords. A webhook delivered twice acts once. The body is
    the resident's: characters the database cannot hold (NUL, lone surrogates) are replaced,
    never a reason to lose the message."""
    provider_id = replace_refused(provider_id, multiline=False)[:64]  # Twilio's have 34
    from_number = replace_refused(from_number, multiline=False)[:20]
    body = replace_refused(body)
    existing = await InboundMessage.get_or_none(provider_id=provider_id)
    municipality = await municipality_for_reply(from_number, municipality_code)
    if existing is not None:
        return existing, municipality
    action, needs_review = classify_reply(body)
    resident = None
    if municipality is not None:
        resident = await Resident.filter(municipality_id=municipality.id,
                                         phone=from_number).order_by("id").first()
    await InboundMessage.bulk_create([InboundMessage(
        municipality_id=municipality.id if municipality else None,
        resident_id=resident.id if resident else None, provider_id=provider_id,
        from_number=from_number, body=body[:2000], action=action,
        # Nobody to act for: a person must look at it (and no "stopped" reply is sent).
        needs_review=needs_review or municipality is None,
    )], ignore_conflicts=True)
    inbound = await InboundMessage.get(provider_id=provider_id)
    if municipality is not None and action in (InboundAction.OPT_OUT, InboundAction.OPT_IN):
        await opt_out_by_phone(municipality.id, from_number, action == InboundAction.OPT_OUT,
                               "sms-reply")
    return inbound, municipality


def reply_text(action: InboundAction, municipality: Municipality | None) -> str | None:
    """The answer to a keyword, or None (no reply to free text, and no promise when we do not
    know whose resident wrote: the reply waits for staff)."""
    if municipality is None:
        return None
    name = municipality.name
    phone = f" {municipality.phone} " if municipality.phone else ""
    if action == InboundAction.OPT_OUT:
        return f"【{name}】SMSの配信を停止しました。再開するときは「再開」と返信してください。"
    if action == InboundAction.OPT_IN:
        return f"【{name}】SMSの配信を再開しました。"
    if action == InboundAction.HELP:
        return f"【{name}】お問い合わせは{phone or '窓口'}へお電話ください。"
    return None


async def mark_reply_reviewed(*, actor: Actor, inbound_id: int) -> InboundMessage:
    require_staff(actor)
    async with in_transaction():
        inbound = await get_scoped(InboundMessage, inbound_id, actor, what="返信",
                                   field="reply_id", for_update=True)
        inbound.needs_review = False
        inbound.reviewed_at = timeutil.now()
        inbound.reviewed_by_id = actor.user_id
        await inbound.save(update_fields=["needs_review", "reviewed_at", "reviewed_by_id"])
        await audit.record(actor, "reply.review", "InboundMessage", [inbound.id])
    return inbound


def replies_query(actor: Actor, *, needs_review: bool | None = None):
    require_staff(actor)
    query = InboundMessage.filter(municipality_id=actor.municipality_id)
    if needs_review is not None:
        query = query.filter(needs_review=needs_review)
    return query.order_by("-received_at", "-id")
