"""SMS planning (called inside the transaction of the change that causes it) and the
staff's view of the outbox: who was reached, who to phone instead, what it costs.

Planning writes Message rows only; the dispatcher sends them. The unique idempotency
key (registration, kind, session sequence) makes planning twice a no-op.
"""

from __future__ import annotations

import re
import unicodedata
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
from divide_support.followups.models import FollowUp, FollowUpChannel, FollowUpStatus
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
from divide_support.people.models import ContactPreference, Resident
from divide_support.people.service import ensure_not_erased
from divide_support.scheduling.models import (
    Course,
    Registration,
    RegistrationStatus,
    Session,
    SessionKind,
    SessionStatus,
    Venue,
)

REMINDER_KINDS = (MessageKind.REMINDER_DAY_BEFORE, MessageKind.REMINDER_SAME_DAY)
DAY_BEFORE_AT = time(10, 0)
SAME_DAY_LEAD = timedelta(hours=2)
FOLLOW_UP_AT = time(10, 0)
ELIGIBILITY_REASONS = (SkipReason.NO_CONSENT, SkipReason.NO_MOBILE,
                       SkipReason.PREFERS_OTHER_CHANNEL, SkipReason.OPTED_OUT)
# What staff see as "not reached": they should phone these people.
NOT_REACHED = (MessageStatus.SKIPPED, MessageStatus.FAILED, MessageStatus.UNDELIVERED)

SKIP_REASON_TEXT = {
    SkipReason.NO_CONSENT: "SMSの同意がありません",
    SkipReason.NO_MOBILE: "携帯電話番号が登録されていません",
    SkipReason.PREFERS_OTHER_CHANNEL: "SMS以外の連絡方法を希望しています",
    SkipReason.OPTED_OUT: "SMSの配信停止を希望しています",
    SkipReason.TOO_LATE: "送信時刻を過ぎたため送りませんでした",
}


# --- eligibility and timing ----------------------------------------------------------------

def skip_reason_for(resident: Resident) -> SkipReason | None:
    """Why this resident cannot get an SMS right now, or None. Read at planning and again
    just before sending, so a later opt-out always wins."""
    if resident.sms_opted_out:
        return SkipReason.OPTED_OUT
    if not resident.phone:
        return SkipReason.NO_MOBILE
    if not resident.sms_consent:
        return SkipReason.NO_CONSENT
    if resident.contact_preference != ContactPreference.SMS:
        return SkipReason.PREFERS_OTHER_CHANNEL
    return None


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


def _at_local(day: date, at: time, tz: str) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(tz)).astimezone(ZoneInfo("UTC"))


def reminder_moments(session: Session, tz: str) -> dict[MessageKind, tuple[datetime, datetime]]:
    """When each reminder is meant to go out, and when it becomes pointless."""
    session_day = timeutil.local_date(session.starts_at, tz)
    return {
        MessageKind.REMINDER_DAY_BEFORE: (
            _at_local(session_day - timedelta(days=1), DAY_BEFORE_AT, tz),
            timeutil.start_of_local_day(session_day, tz),
        ),
        MessageKind.REMINDER_SAME_DAY: (session.starts_at - SAME_DAY_LEAD, session.starts_at),
    }


# --- planning ------------------------------------------------------------------------------

async def _surroundings(session: Session) -> tuple[Venue, Course | None, Municipality]:
    """The session's venue, course (None for a drop-in) and municipality, in one statement."""
    row = await Session.filter(id=session.id).select_related(
        "venue", "course", "municipality").get()
    return row.venue, row.course, row.municipality


def _facts(session: Session, venue: Venue, course: Course | None, resident: Resident,
           municipality: Municipality, waitlist_position: int | None = None) -> MessageFacts:
    return MessageFacts(
        municipality_name=municipality.name, centre_phone=municipality.phone,
        timezone=municipality.timezone, is_class=session.kind == SessionKind.CLASS,
        title=session.title, venue_name=venue.name, starts_at=session.starts_at,
        family_name=resident.family_name, given_name=resident.given_name,
        course_topic=str(course.topic) if course else None,
        waitlist_position=waitlist_position,
    )


def _planned(
    *,
    municipality: Municipality,
    resident: Resident,
    kind: MessageKind,
    key: str,
    moment: datetime,
    expires_at: datetime | None,
    body: str,
    session: Session | None = None,
    registration_id: int | None = None,
    follow_up_id: int | None = None,
) -> Message:
    """The outbox row for one message (not yet saved: _save): when it may go, or why not."""
    now = timeutil.now()
    send_after = after_quiet_hours(max(moment, now), municipality)
    status, reason = MessageStatus.PENDING, skip_reason_for(resident)
    if reason is not None:
        status = MessageStatus.SKIPPED
    elif (kind in REMINDER_KINDS and moment < now) or (expires_at and send_after >= expires_at):
        status, reason = MessageStatus.SKIPPED, SkipReason.TOO_LATE
    count = count_segments(body)
    return Message(
        municipality_id=municipality.id, resident_id=resident.id, kind=kind,
        idempotency_key=key, session_id=session.id if session else None,
        session_sequence=session.sequence if session else None,
        registration_id=registration_id, follow_up_id=follow_up_id, to=resident.phone,
        body=body, segments=count.segments, encoding=count.encoding, send_after=send_after,
        expires_at=expires_at, status=status, skip_reason=reason,
    )


async def _save(messages: list[Message]) -> None:
    """One INSERT for all planned messages; one already planned (same idempotency key) stays
    as it is."""
    await insert_all(messages, ignore_conflicts=True)


def _key(registration: Registration, kind: MessageKind, session: Session) -> str:
    return f"reg:{registration.id}:{kind}:{session.sequence}"


def _reminders(registration: Registration, session: Session, resident: Resident,
               municipality: Municipality, facts: MessageFacts) -> list[Message]:
    return [_planned(municipality=municipality, resident=resident, kind=kind,
                     key=_key(registration, kind, session), moment=moment,
                     expires_at=expires_at, body=render(kind, facts), session=session,
                     registration_id=registration.id)
            for kind, (moment, expires_at)
            in reminder_moments(session, municipality.timezone).items()]


async def plan_registration(registration: Registration, *, promoted: bool = False,
                            resident: Resident | None = None) -> None:
    """A new seat or waitlist place (or a promotion): confirmation now, reminders later.
    Nothing for people entered at the door or from paper sheets: they are already there.
    `resident` is the registration's, when the caller has just read it."""
    session = await Session.filter(id=registration.session_id).select_related(
        "venue", "course", "municipality").get()
    now = timeutil.now()
    if session.starts_at <= now:
        return
    if resident is None or resident.id != registration.resident_id:
        resident = await Resident.get(id=registration.resident_id)
    municipality = session.municipality
    waiting = registration.status == RegistrationStatus.WAITLISTED
    facts = _facts(session, session.venue, session.course, resident, municipality,
                   registration.waitlist_position if waiting else None)
    kind = MessageKind.WAITLIST_PROMOTED if promoted else MessageKind.CONFIRMATION
    messages = [_planned(municipality=municipality, resident=resident, kind=kind,
                         key=_key(registration, kind, session), moment=now,
                         expires_at=session.starts_at, body=render(kind, facts),
                         session=session, registration_id=registration.id)]
    if not waiting:
        messages += _reminders(registration, session, resident, municipality, facts)
    await _save(messages)


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


async def unwanted(messages: list[Message]) -> dict[int, str]:
    """Messages whose occasion is gone, with why: the seat was given up, the session was
    cancelled or moved since the message was planned, the follow-up was closed. Checked when
    a message is claimed, revived or resent, whatever path brought it back to PENDING."""
    registrations = {r.id: r for r in await Registration.filter(
        id__in={m.registration_id for m in messages if m.registration_id})}
    sessions = {s.id: s for s in await Session.filter(
        id__in={m.session_id for m in messages if m.session_id})}
    follow_ups = {f.id: f for f in await FollowUp.filter(
        id__in={m.follow_up_id for m in messages if m.follow_up_id})}
    reasons: dict[int, str] = {}
    for message in messages:
        kind = MessageKind(message.kind)
        follow_up = follow_ups.get(message.follow_up_id) if message.follow_up_id else None
        if follow_up is not None and follow_up.status != FollowUpStatus.OPEN:
            reasons[message.id] = "follow-up closed"
            continue
        session = sessions.get(message.session_id) if message.session_id else None
        if session is not None:
            if message.session_sequence is not None and message.session_sequence != session.sequence:
                reasons[message.id] = "session changed since planned"
                continue
            if session.status == SessionStatus.CANCELLED and kind != MessageKind.SESSION_CANCELLED:
                reasons[message.id] = "session cancelled"
                continue
        registration = registrations.get(message.registration_id) \
            if message.registration_id and kind != MessageKind.FOLLOW_UP else None
        if registration is not None:
            if registration.status == RegistrationStatus.CANCELLED \
                    and kind != MessageKind.SESSION_CANCELLED:
                reasons[message.id] = "registration cancelled"
            elif kind in (*REMINDER_KINDS, MessageKind.WAITLIST_PROMOTED) \
                    and registration.status != RegistrationStatus.CONFIRMED:
                reasons[message.id] = "no seat"
    return reasons


async def _active_registrations(session: Session) -> list[Registration]:
    return await Registration.filter(
        session_id=session.id,
        status__in=(RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED),
    ).order_by("id")


async def _notify_holders(session: Session, kind: MessageKind, *, replan_reminders: bool
                          ) -> None:
    """`kind` to everyone holding a seat or waitlist place; new reminders for the seats."""
    if session.starts_at <= timeutil.now():
        return
    venue, course, municipality = await _surroundings(session)
    holders = await _active_registrations(session)
    residents = {r.id: r for r in await Resident.filter(
        id__in={registration.resident_id for registration in holders})}
    messages: list[Message] = []
    for registration in holders:
        resident = residents[registration.resident_id]
        facts = _facts(session, venue, course, resident, municipality)
        messages.append(_planned(
            municipality=municipality, resident=resident, kind=kind,
            key=_key(registration, kind, session), moment=timeutil.now(),
            expires_at=session.starts_at, body=render(kind, facts), session=session,
            registration_id=registration.id))
        if replan_reminders and registration.status == RegistrationStatus.CONFIRMED:
            messages += _reminders(registration, session, resident, municipality, facts)
    await _save(messages)


async def plan_session_changed(session: Session) -> None:
    """The session moved (time or venue): tell everyone holding a seat or a waitlist place,
    and re-plan the reminders for the new time. Old unsent messages would say the old time."""
    await _cancel_unsent(session_id=session.id, session_sequence__lt=session.sequence)
    await _notify_holders(session, MessageKind.SESSION_CHANGED, replan_reminders=True)


async def plan_session_cancelled(session: Session) -> None:
    await _cancel_unsent(session_id=session.id)
    await _notify_holders(session, MessageKind.SESSION_CANCELLED, replan_reminders=False)


async def cancel_for_registration(registration_id: int) -> int:
    """The seat was given up: its unsent confirmation and reminders must not go out."""
    return await _cancel_unsent(registration_id=registration_id)


async def plan_follow_up(follow_up: FollowUp) -> None:
    """An open follow-up on the SMS channel: a message on its due date, 10:00 local."""
    if follow_up.channel != FollowUpChannel.SMS or follow_up.status != FollowUpStatus.OPEN:
        return
    resident = await Resident.get(id=follow_up.resident_id)
    municipality = await Municipality.get(id=follow_up.municipality_id)
    session = None
    if follow_up.registration_id is not None:
        registration = await Registration.get(id=follow_up.registration_id)
        session = await Session.get(id=registration.session_id)
    elif follow_up.visit_id is not None:
        from divide_support.scheduling.models import Visit

        visit = await Visit.get(id=follow_up.visit_id)
        session = await Session.get(id=visit.session_id)
    if session is not None:
        venue, course, _ = await _surroundings(session)
        facts = _facts(session, venue, course, resident, municipality)
    else:
        facts = MessageFacts(
            municipality_name=municipality.name, centre_phone=municipality.phone,
            timezone=municipality.timezone, is_class=False, title="スマホ相談会",
            venue_name="", starts_at=timeutil.now(), family_name=resident.family_name,
            given_name=resident.given_name)
    await _save([_planned(
        municipality=municipality, resident=resident, kind=MessageKind.FOLLOW_UP,
        key=f"followup:{follow_up.id}",
        moment=_at_local(follow_up.due_on, FOLLOW_UP_AT, municipality.timezone),
        expires_at=None, body=render(MessageKind.FOLLOW_UP, facts),
        registration_id=follow_up.registration_id, follow_up_id=follow_up.id)])


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
    gone = await unwanted(list(rows))
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


async def residents_to_phone(*, actor: Actor, session_id: int) -> list[tuple[Registration, str]]:
    """Everyone holding a seat or waitlist place whom SMS will not reach, with why:
    staff phone these people instead."""
    require_staff(actor)
    session = await get_scoped(Session, session_id, actor, what="開催回", field=["sessionId"])
    return await _phone_instead([session.id])


async def residents_to_phone_soon(*, actor: Actor, days: int, venue_id: int | None = None
                                  ) -> list[tuple[Registration, str]]:
    """The same list for every scheduled session of the next `days` days (at one venue):
    the counter's "whom to phone" list, soonest session first."""
    require_staff(actor)
    now = timeutil.now()
    sessions = Session.filter(municipality_id=actor.municipality_id,
                              status=SessionStatus.SCHEDULED, starts_at__gte=now,
                              starts_at__lt=now + timedelta(days=days))
    if venue_id is not None:
        sessions = sessions.filter(venue_id=venue_id)
    session_ids = await sessions.order_by("starts_at", "id").values_list("id", flat=True)
    return await _phone_instead(list(session_ids))


async def _phone_instead(session_ids: list[int]) -> list[tuple[Registration, str]]:
    """Whom SMS will not reach among the seats and waitlist places of these sessions (in
    their order): the reason it is skipped, or the provider's failure."""
    if not session_ids:
        return []
    order = {session_id: index for index, session_id in enumerate(session_ids)}
    registrations = sorted(await Registration.filter(
        session_id__in=session_ids,
        status__in=(RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED),
    ).order_by("id"), key=lambda registration: order[registration.session_id])
    reasons = await _phone_reasons(registrations)
    return [(r, reasons[r.id]) for r in registrations if r.id in reasons]


async def _phone_reasons(registrations: list[Registration]) -> dict[int, str]:
    """For each of these seats whose holder SMS will not reach: why (the skip reason, or
    the provider's failure for a message of that seat)."""
    if not registrations:
        return {}
    residents = {r.id: r for r in await Resident.filter(
        id__in=[reg.resident_id for reg in registrations])}
    failed = {}
    for message in await Message.filter(
        registration_id__in=[reg.id for reg in registrations],
        status__in=(MessageStatus.FAILED, MessageStatus.UNDELIVERED),
    ).order_by("id"):
        failed[message.registration_id] = message
    reasons: dict[int, str] = {}
    for registration in registrations:
        reason = skip_reason_for(residents[registration.resident_id])
        if reason is not None:
            reasons[registration.id] = SKIP_REASON_TEXT[reason]
        elif registration.id in failed:
            message = failed[registration.id]
            reasons[registration.id] = f"SMSが届きませんでした（{message.error_code or '不明'}）"
    return reasons


@dataclass(frozen=True)
class NoticePreview:
    """How many residents a change to a session would tell, by SMS and by a staff call."""

    by_sms: int
    by_phone: int


async def notice_preview(*, actor: Actor, session_id: int, capacity: int | None = None
                         ) -> NoticePreview:
    """Before staff confirm a change, whom it tells. A change of time or venue, or a
    cancellation, tells everyone holding a seat or waitlist place (plan_session_changed,
    plan_session_cancelled); a new `capacity` alone tells only the waitlisted residents it
    would seat (WAITLIST_PROMOTED). Those SMS will not reach (residentsToPhone's rule) are
    the phone list. A session that has started tells nobody: people are at the door."""
    require_staff(actor)
    session = await get_scoped(Session, session_id, actor, what="開催回", field=["sessionId"])
    if session.starts_at <= timeutil.now() or session.status == SessionStatus.CANCELLED:
        return NoticePreview(by_sms=0, by_phone=0)
    holders = await _active_registrations(session)
    if capacity is not None:
        confirmed = sum(1 for r in holders if r.status == RegistrationStatus.CONFIRMED)
        waiting = sorted((r for r in holders if r.status == RegistrationStatus.WAITLISTED),
                         key=lambda r: (r.waitlist_position or 0, r.id))
        holders = waiting[:max(0, capacity - confirmed)]
    by_phone = len(await _phone_reasons(holders))
    return NoticePreview(by_sms=len(holders) - by_phone, by_phone=by_phone)


async def sms_usage(*, actor: Actor, months: int = 12) -> list[dict[str, object]]:
    """Messages and segments handed to the provider per month (local time), newest first."""
    require_role(actor, Role.ADMIN, Role.COORDINATOR, Role.PLANNER)
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
        if await unwanted([message]):
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
