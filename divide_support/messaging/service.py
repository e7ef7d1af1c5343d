"""SMS planning (called inside the transaction of the change that causes it) and the
staff's view of the outbox: who was reached, who to phone instead, what it costs.

Planning writes Message rows only; the dispatcher sends them. The unique idempotency
key (registration, kind, session sequence) makes planning twice a no-op.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor, Role
from divide_support.core.bulk import insert_all
from divide_support.core.errors import DomainError
from divide_support.core.permissions import require_role, require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import replace_refused
from divide_support.messaging import occasions
from divide_support.messaging.models import (
    InboundAction,
    InboundMessage,
    Message,
    MessageKind,
    MessageStatus,
    SkipReason,
)
from divide_support.messaging.segments import count_segments
from divide_support.messaging.templates import MessageFacts, render
from divide_support.people.models import Resident
from divide_support.people.service import ensure_not_erased, why_no_sms

REMINDER_KINDS = (MessageKind.REMINDER_DAY_BEFORE, MessageKind.REMINDER_SAME_DAY)
DAY_BEFORE_AT = time(10, 0)
SAME_DAY_LEAD = timedelta(hours=2)
FOLLOW_UP_AT = time(10, 0)
ELIGIBILITY_REASONS = (SkipReason.NO_CONSENT, SkipReason.NO_MOBILE,
                       SkipReason.PREFERS_OTHER_CHANNEL, SkipReason.OPTED_OUT)

SKIP_REASON_TEXT = {
    SkipReason.NO_CONSENT: "SMSの同意がありません",
    SkipReason.NO_MOBILE: "携帯電話番号が登録されていません",
    SkipReason.PREFERS_OTHER_CHANNEL: "SMS以外の連絡方法を希望しています",
    SkipReason.OPTED_OUT: "SMSの配信停止を希望しています",
    SkipReason.TOO_LATE: "送信時刻を過ぎたため送りませんでした",
}


# --- eligibility and timing ----------------------------------------------------------------

def skip_reason_for(resident: Resident) -> SkipReason | None:
    """Why this resident cannot get an SMS right now, or None (people's one rule). Read at
    planning and again just before sending, so a later opt-out always wins."""
    reason = why_no_sms(resident)
    return SkipReason(reason) if reason is not None else None


def quiet_hours(municipality: Municipality) -> tuple[time, time]:
    """(from, until) in local wall-clock time."""
    start, end = municipality.sms_quiet_from_minute, municipality.sms_quiet_until_minute
    return time(start // 60 % 24, start % 60), time(end // 60 % 24, end % 60)


def in_quiet_hours(moment: datetime, municipality: Municipality) -> bool:
    local = moment.astimezone(ZoneInfo(municipality.timezone)).time()
    start, end = quiet_hours(municipality)
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def after_quiet_hours(moment: datetime, municipality: Municipality) -> datetime:
    """`moment`, or the end of the quiet hours it falls in (e.g. 08:00 local)."""
    if not in_quiet_hours(moment, municipality):
        return moment
    tz = ZoneInfo(municipality.timezone)
    local = moment.astimezone(tz)
    end = quiet_hours(municipality)[1]
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(moment.tzinfo or ZoneInfo("UTC"))


# --- planning ------------------------------------------------------------------------------

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


def at_local(day: date, at: time, tz: str) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(tz)).astimezone(ZoneInfo("UTC"))


def reminder_moments(starts_at: datetime, tz: str) -> dict[MessageKind, tuple[datetime, datetime]]:
    """When each reminder of something starting at `starts_at` is meant to go out, and when
    it becomes pointless."""
    session_day = timeutil.local_date(starts_at, tz)
    return {
        MessageKind.REMINDER_DAY_BEFORE: (
            at_local(session_day - timedelta(days=1), DAY_BEFORE_AT, tz),
            timeutil.start_of_local_day(session_day, tz),
        ),
        MessageKind.REMINDER_SAME_DAY: (starts_at - SAME_DAY_LEAD, starts_at),
    }


def follow_up_moment(due_on: date, tz: str) -> datetime:
    """A follow-up message goes on its due date, 10:00 local."""
    return at_local(due_on, FOLLOW_UP_AT, tz)


def _planned(occasion: Occasion) -> Message:
    """The outbox row for one message (not yet saved): when it may go, or why not."""
    now = timeutil.now()
    kind, resident, municipality = occasion.kind, occasion.resident, occasion.municipality
    moment, expires_at = occasion.moment, occasion.expires_at
    body = render(kind, occasion.facts)
    send_after = after_quiet_hours(max(moment, now), municipality)
    status, reason = MessageStatus.PENDING, skip_reason_for(resident)
    if reason is not None:
        status = MessageStatus.SKIPPED
    elif (kind in REMINDER_KINDS and moment < now) or (expires_at and send_after >= expires_at):
        status, reason = MessageStatus.SKIPPED, SkipReason.TOO_LATE
    count = count_segments(body)
    return Message(
        municipality_id=municipality.id, resident_id=resident.id, kind=kind,
        idempotency_key=occasion.key, session_id=occasion.session_id,
        session_sequence=occasion.session_sequence, registration_id=occasion.registration_id,
        follow_up_id=occasion.follow_up_id, to=resident.phone, body=body,
        segments=count.segments, encoding=count.encoding, send_after=send_after,
        expires_at=expires_at, status=status, skip_reason=reason,
    )


async def plan(occasions: Sequence[Occasion]) -> None:
    """One INSERT for all these messages; one already planned (same key) stays as it is."""
    await insert_all([_planned(occasion) for occasion in occasions], ignore_conflicts=True)


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
    """The resident can now receive SMS (consent given, opted back in): reminders and
    follow-up messages skipped for that reason go out after all, if still in time."""
    if skip_reason_for(resident) is not None:
        return 0
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
        if message.id in gone:
            continue
        send_after = after_quiet_hours(max(message.send_after, now), municipality)
        if message.expires_at is not None and send_after >= message.expires_at:
            continue
        if message.kind in REMINDER_KINDS and message.send_after < now:
            continue  # its moment has passed
        message.status, message.skip_reason = MessageStatus.PENDING, None
        message.send_after, message.to = send_after, resident.phone
        await message.save(update_fields=["status", "skip_reason", "send_after", "to",
                                          "updated_at"])
        revived += 1
    return revived


# --- residents' rights ---------------------------------------------------------------------

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
        body=ERASED_BODY, to=None, last_error=None, updated_at=timeutil.now())
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


# --- opt-out and consent -------------------------------------------------------------------

async def set_opt_out(*, actor: Actor, resident_id: int, opted_out: bool,
                      inbound_message_id: int | None = None) -> Resident:
    """Staff record that a resident wants no more SMS (the primary path in Japan, where
    replies to alphanumeric senders do not arrive), or that they want them again."""
    require_staff(actor)
    async with in_transaction():
        resident = await get_scoped(Resident, resident_id, actor, what="住民",
                                    field=["input", "residentId"], for_update=True)
        ensure_not_erased(resident)
        await _apply_opt_out([resident], opted_out)
        if inbound_message_id is not None:
            await InboundMessage.filter(id=inbound_message_id,
                                        municipality_id=actor.municipality_id).update(
                needs_review=False, reviewed_at=timeutil.now(), reviewed_by_id=actor.user_id)
        await audit.record(actor, "resident.sms_opt_out" if opted_out else "resident.sms_opt_in",
                           "Resident", [resident.id])
    return await Resident.get(id=resident.id)


async def _apply_opt_out(residents: list[Resident], opted_out: bool) -> None:
    for resident in residents:
        resident.sms_opted_out = opted_out
        await resident.save(update_fields=["sms_opted_out", "updated_at"])
        if not opted_out:
            await revive_for_resident(resident)


async def set_sms_consent(*, actor: Actor, resident_id: int, consent: bool) -> Resident:
    require_staff(actor)
    async with in_transaction():
        resident = await get_scoped(Resident, resident_id, actor, what="住民",
                                    field=["input", "residentId"], for_update=True)
        ensure_not_erased(resident)
        if consent and not resident.phone:
            raise DomainError("NO_MOBILE", "携帯電話番号が登録されていないため、SMSを送れません。",
                              ["input", "residentId"],
                              message_en="The resident has no mobile number.")
        resident.sms_consent = consent
        await resident.save(update_fields=["sms_consent", "updated_at"])
        if consent:
            await revive_for_resident(resident)
        await audit.record(actor, "resident.sms_consent", "Resident", [resident.id],
                           {"consent": consent})
    return await Resident.get(id=resident.id)


async def opt_out_by_phone(municipality_id: int, phone: str, opted_out: bool, source: str
                           ) -> list[int]:
    """From a reply (STOP / 停止, START / 再開) or the provider's 21610: every resident of
    the municipality with that mobile number."""
    actor = Actor(municipality_id=municipality_id, role=Role.ADMIN, email=source)
    async with in_transaction():
        residents = await Resident.filter(municipality_id=municipality_id,
                                          phone=phone).select_for_update()
        changed = [r for r in residents if r.sms_opted_out != opted_out]
        await _apply_opt_out(changed, opted_out)
        if changed:
            await audit.record(actor, "resident.sms_opt_out" if opted_out
                               else "resident.sms_opt_in", "Resident", [r.id for r in changed])
    return [r.id for r in residents]


# --- replies -------------------------------------------------------------------------------

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
                                   field=["input", "replyId"], for_update=True)
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


# --- staff views ---------------------------------------------------------------------------

def messages_query(
    actor: Actor,
    *,
    status: MessageStatus | None = None,
    kind: MessageKind | None = None,
    resident_id: int | None = None,
    session_id: int | None = None,
):
    require_staff(actor)
    query = Message.filter(municipality_id=actor.municipality_id)
    if status is not None:
        query = query.filter(status=status)
    if kind is not None:
        query = query.filter(kind=kind)
    if resident_id is not None:
        query = query.filter(resident_id=resident_id)
    if session_id is not None:
        query = query.filter(session_id=session_id)
    return query.order_by("-send_after", "-id")


async def reasons_to_phone(seats: Sequence[tuple[int, int]]) -> dict[int, str]:
    """For each (registration id, resident id) whose resident SMS will not reach: why (the
    skip reason, or the provider's failure for a message about that registration). Staff
    phone these people instead."""
    if not seats:
        return {}
    residents = {r.id: r for r in await Resident.filter(
        id__in=[resident_id for _, resident_id in seats])}
    failed = {}
    for message in await Message.filter(
        registration_id__in=[registration_id for registration_id, _ in seats],
        status__in=(MessageStatus.FAILED, MessageStatus.UNDELIVERED),
    ).order_by("id"):
        failed[message.registration_id] = message
    reasons: dict[int, str] = {}
    for registration_id, resident_id in seats:
        reason = skip_reason_for(residents[resident_id])
        if reason is not None:
            reasons[registration_id] = SKIP_REASON_TEXT[reason]
        elif registration_id in failed:
            message = failed[registration_id]
            reasons[registration_id] = f"SMSが届きませんでした（{message.error_code or '不明'}）"
    return reasons


SMS_USAGE_MAX_MONTHS = 60


async def sms_usage(*, actor: Actor, months: int = 12) -> list[dict[str, object]]:
    """Messages and segments handed to the provider per month (local time), newest first:
    the last `months` months, at least one and at most five years'."""
    require_role(actor, Role.ADMIN, Role.COORDINATOR, Role.PLANNER)
    months = max(1, min(months, SMS_USAGE_MAX_MONTHS))
    from tortoise import connections

    rows = await connections.get("default").execute_query_dict(
        """
        SELECT to_char(date_trunc('month', sent_at AT TIME ZONE $2), 'YYYY-MM') AS month,
               count(*) AS messages, coalesce(sum(segments), 0) AS segments
        FROM message
        WHERE municipality_id = $1 AND sent_at IS NOT NULL
          AND sent_at >= (date_trunc('month', now() AT TIME ZONE $2)
                          - make_interval(months => $3 - 1)) AT TIME ZONE $2
        GROUP BY 1 ORDER BY 1 DESC
        """,
        [actor.municipality_id, actor.timezone, months],
    )
    return [{"month": r["month"], "messages": int(r["messages"]),
             "segments": int(r["segments"])} for r in rows]


async def resend(*, actor: Actor, message_id: int) -> Message:
    """Try a FAILED or UNDELIVERED message again: the same row (and idempotency key),
    a new attempt, checked again for eligibility and timing."""
    require_staff(actor)
    async with in_transaction():
        message = await get_scoped(Message, message_id, actor, what="メッセージ",
                                   field=["input", "messageId"], for_update=True)
        if message.status not in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
            raise DomainError("NOT_RESENDABLE",
                              "送信に失敗したメッセージだけ再送できます。",
                              ["input", "messageId"],
                              message_en="Only FAILED or UNDELIVERED messages can be resent.")
        if await occasions.unwanted([message]):
            raise DomainError("NOT_RESENDABLE",
                              "申込の取消や回の中止・変更があったため、このメッセージは再送できません。",
                              ["input", "messageId"],
                              message_en="The seat, session or follow-up it was about has changed.")
        resident = await Resident.get(id=message.resident_id)
        reason = skip_reason_for(resident)
        if reason is not None:
            raise DomainError("NOT_ELIGIBLE", f"再送できません: {SKIP_REASON_TEXT[reason]}。",
                              ["input", "messageId"],
                              message_en=f"Cannot resend: {reason}.")
        municipality = await Municipality.get(id=message.municipality_id)
        send_after = after_quiet_hours(timeutil.now(), municipality)
        if message.expires_at is not None and send_after >= message.expires_at:
            raise DomainError("TOO_LATE", "開催時刻を過ぎたため再送できません。",
                              ["input", "messageId"], message_en="Too late to resend.")
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
