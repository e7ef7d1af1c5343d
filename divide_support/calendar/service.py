"""Calendar files for seats, duties and schedules, found by unguessable tokens.

UIDs are derived from stored row IDs (a seat, a duty, a session), never from the time, so
a moved session keeps its UID and only its SEQUENCE grows (SEQUENCE = session.sequence;
a seat given up is session.sequence + 1, above every REQUEST that went out for it).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.audit import service as audit
from divide_support.calendar.ics import Attendee, EventFacts, Organizer, feed, invite
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.errors import Forbidden
from divide_support.core.permissions import require_staff
from divide_support.core.publicurl import public_base_url
from divide_support.core.tenancy import get_scoped
from divide_support.core.tokens import new_calendar_token
from divide_support.people.models import Resident, Supporter
from divide_support.scheduling.models import (
    Assignment,
    AssignmentRole,
    Course,
    CourseTopic,
    Registration,
    RegistrationStatus,
    RemovedAssignment,
    Session,
    SessionKind,
    SessionStatus,
    Venue,
)

TOKEN = re.compile(r"[0-9a-f]{32}")  # always fullmatch: `$` would let "...\n" through
FEED_PAST = timedelta(days=60)
FEED_AHEAD = timedelta(days=400)
ROLE_TEXT = {AssignmentRole.LEAD: "講師（リード）", AssignmentRole.ASSISTANT: "補助"}


@dataclass(frozen=True)
class CalendarFile:
    method: str  # REQUEST, CANCEL or PUBLISH
    body: bytes
    filename: str


# --- URLs ----------------------------------------------------------------------------------

def _base() -> str:
    return public_base_url()


def invite_url(registration: Registration) -> str:
    return f"{_base()}/calendar/registrations/{registration.calendar_token}.ics"


def duty_url(assignment: Assignment) -> str:
    return f"{_base()}/calendar/assignments/{assignment.calendar_token}.ics"


def supporter_feed_url(supporter: Supporter) -> str:
    return f"{_base()}/calendar/supporters/{supporter.calendar_token}.ics"


def venue_feed_url_for(venue_id: int) -> str:
    return f"{_base()}/calendar/venues/{venue_id}.ics"


def webcal(url: str) -> str:
    """The subscription form of a feed URL (calendar apps subscribe instead of importing)."""
    return re.sub(r"^https?://", "webcal://", url)


# --- what the files say --------------------------------------------------------------------

def organizer_for(municipality: Municipality) -> Organizer:
    return Organizer(name=f"{municipality.name} スマホ教室", phone=municipality.phone)


def programme(session: Session) -> str:
    return "スマホ教室" if session.kind == SessionKind.CLASS else "スマホ相談会"


def what_to_bring(course: Course | None) -> str:
    if course is not None and course.topic == CourseTopic.MY_NUMBER_CARD:
        return "スマートフォン、充電器、マイナンバーカード（暗証番号もご確認ください）"
    return "スマートフォン、充電器"


def _span(session: Session, tz: str) -> str:
    start = timeutil.format_local(session.starts_at, tz)
    end = session.ends_at.astimezone(ZoneInfo(tz))
    return f"{start}〜{end:%H:%M}"


def location(venue: Venue) -> str:
    return f"{venue.name}（{venue.address}）" if venue.address else venue.name


def _description(session: Session, venue: Venue, course: Course | None,
                 municipality: Municipality, lines: list[str]) -> str:
    contact = f"{municipality.name} {programme(session)}"
    if municipality.phone:
        contact += f" 電話 {municipality.phone}"
    text = [f"「{session.title}」", f"日時: {_span(session, municipality.timezone)}",
            f"会場: {location(venue)}", *lines, f"お問い合わせ・変更・欠席: {contact}"]
    return "\n".join(text)


async def _session_facts(session: Session, *, uid: str, sequence: int | None = None,
                         cancelled: bool | None = None, tentative: bool = False,
                         lines: list[str] | None = None,
                         municipality: Municipality | None = None) -> EventFacts:
    municipality = municipality or await Municipality.get(id=session.municipality_id)
    venue = await Venue.get(id=session.venue_id)
    course = await Course.get(id=session.course_id) if session.course_id else None
    is_cancelled = session.status == SessionStatus.CANCELLED if cancelled is None else cancelled
    extra = list(lines or [])
    if session.status == SessionStatus.CANCELLED:
        extra.insert(0, "この回は中止になりました。")
    elif not extra:
        extra.append(f"持ち物: {what_to_bring(course)}")
    return EventFacts(
        uid=uid, summary=f"{session.title}（{municipality.name}{programme(session)}）",
        starts_at=session.starts_at, ends_at=session.ends_at, timezone=municipality.timezone,
        location=location(venue),
        description=_description(session, venue, course, municipality, extra),
        sequence=session.sequence if sequence is None else sequence,
        cancelled=is_cancelled, tentative=tentative,
    )


def _uid(kind: str, pk: int, municipality: Municipality) -> str:
    return f"{kind}-{pk}.{municipality.code}@divide-support"


# --- files ---------------------------------------------------------------------------------

async def registration_file(token: str) -> CalendarFile | None:
    """A resident's seat: REQUEST while held (TENTATIVE on the waitlist), CANCEL after."""
    if not TOKEN.fullmatch(token):
        return None
    registration = await Registration.get_or_none(calendar_token=token)
    if registration is None:
        return None
    session = await Session.get(id=registration.session_id)
    municipality = await Municipality.get(id=session.municipality_id)
    resident = await Resident.get(id=registration.resident_id)
    seat_given_up = registration.status == RegistrationStatus.CANCELLED
    waiting = registration.status == RegistrationStatus.WAITLISTED
    course = await Course.get(id=session.course_id) if session.course_id else None
    lines = [f"持ち物: {what_to_bring(course)}"]
    if waiting:
        lines.insert(0, f"キャンセル待ち（{registration.waitlist_position}番目）です。"
                        "席が空いたらお知らせします。")
    if seat_given_up and session.status != SessionStatus.CANCELLED:
        lines = ["このお申し込みは取り消されました。"]
    facts = await _session_facts(
        session, uid=_uid("seat", registration.id, municipality),
        # Giving up a seat is a change of its own: above every REQUEST sent for it.
        sequence=session.sequence + 1 if seat_given_up else session.sequence,
        cancelled=seat_given_up or session.status == SessionStatus.CANCELLED,
        tentative=waiting, lines=lines, municipality=municipality)
    attendee = Attendee(name=f"{resident.family_name} {resident.given_name}",
                        uri=f"urn:uuid:{_uuid_from(registration.calendar_token)}",
                        accepted=not waiting)
    method, body = invite(facts, organizer_for(municipality), attendee, now=timeutil.now())
    return CalendarFile(method, body, "invite.ics")


async def assignment_file(token: str) -> CalendarFile | None:
    """A supporter's duty: REQUEST, or CANCEL once the session is cancelled or the duty is
    taken off them."""
    if not TOKEN.fullmatch(token):
        return None
    assignment = await Assignment.get_or_none(calendar_token=token)
    removed = None
    if assignment is None:
        removed = await RemovedAssignment.get_or_none(calendar_token=token)
        if removed is None:
            return None
    duty = assignment or removed
    assert duty is not None
    duty_id = assignment.id if assignment else removed.assignment_id  # type: ignore[union-attr]
    session = await Session.get(id=duty.session_id)
    municipality = await Municipality.get(id=session.municipality_id)
    supporter = await Supporter.get(id=duty.supporter_id)
    lines = [f"担当: {ROLE_TEXT[AssignmentRole(duty.role)]}",
             f"受講者の持ち物: {what_to_bring(await _course(session))}"]
    if removed is not None:
        lines = ["この回の担当は取り消されました。"]
    facts = await _session_facts(
        session, uid=_uid("duty", duty_id, municipality),
        # Taking a duty off is a change of its own: above every REQUEST sent for it.
        sequence=session.sequence + 1 if removed else None,
        cancelled=True if removed else None, lines=lines, municipality=municipality)
    attendee = Attendee(name=supporter.display_name,
                        uri=f"urn:uuid:{_uuid_from(supporter.calendar_token)}")
    method, body = invite(facts, organizer_for(municipality), attendee, now=timeutil.now())
    return CalendarFile(method, body, "duty.ics")


async def _course(session: Session) -> Course | None:
    return await Course.get(id=session.course_id) if session.course_id else None


def _window() -> tuple[datetime, datetime]:
    now = timeutil.now()
    return now - FEED_PAST, now + FEED_AHEAD


async def supporter_feed(token: str) -> CalendarFile | None:
    """Everything a supporter is assigned to (no other people), cancelled ones marked."""
    if not TOKEN.fullmatch(token):
        return None
    supporter = await Supporter.get_or_none(calendar_token=token)
    if supporter is None or not supporter.active:  # someone who left sees no more schedules
        return None
    municipality = await Municipality.get(id=supporter.municipality_id)
    start, end = _window()
    assignments = await Assignment.filter(
        supporter_id=supporter.id, session__starts_at__gte=start, session__starts_at__lt=end,
    ).order_by("id")
    sessions = {s.id: s for s in await Session.filter(
        id__in=[a.session_id for a in assignments])}
    events = []
    for assignment in sorted(assignments, key=lambda a: sessions[a.session_id].starts_at):
        session = sessions[assignment.session_id]
        events.append(await _session_facts(
            session, uid=_uid("duty", assignment.id, municipality),
            lines=[f"担当: {ROLE_TEXT[AssignmentRole(assignment.role)]}"],
            municipality=municipality))
    body = feed(f"{supporter.display_name}さんの担当（{municipality.name}）",
                organizer_for(municipality), events, now=timeutil.now())
    return CalendarFile("PUBLISH", body, "duties.ics")


async def _schedule(name: str, municipality: Municipality, sessions: list[Session]
                    ) -> CalendarFile:
    events = [await _session_facts(s, uid=_uid("session", s.id, municipality),
                                   municipality=municipality) for s in sessions]
    body = feed(name, organizer_for(municipality), events, now=timeutil.now())
    return CalendarFile("PUBLISH", body, "schedule.ics")


async def venue_feed(venue_id: int) -> CalendarFile | None:
    """A venue's public schedule: classes and help sessions, no people."""
    venue = await Venue.get_or_none(id=venue_id)
    if venue is None:
        return None
    municipality = await Municipality.get(id=venue.municipality_id)
    start, end = _window()
    sessions = await Session.filter(venue_id=venue.id, starts_at__gte=start,
                                    starts_at__lt=end).order_by("starts_at", "id")
    return await _schedule(f"{venue.name}の予定（{municipality.name}）", municipality, sessions)


async def municipality_feed(actor: Actor) -> CalendarFile:
    """Every session of the municipality, for staff."""
    require_staff(actor)
    municipality = await Municipality.get(id=actor.municipality_id)
    start, end = _window()
    sessions = await Session.filter(municipality_id=municipality.id, starts_at__gte=start,
                                    starts_at__lt=end).order_by("starts_at", "id")
    return await _schedule(f"{municipality.name} スマホ教室・相談会", municipality, sessions)


def _uuid_from(token: str) -> str:
    """A stable urn:uuid for a person in a file, derived from (not revealing) their token."""
    return str(uuid.UUID(bytes=hashlib.sha256(token.encode()).digest()[:16], version=4))


# --- feed tokens ---------------------------------------------------------------------------

async def rotate_feed_token(*, actor: Actor, supporter_id: int) -> Supporter:
    """New feed and duty links for the supporter; the old ones stop working at once (lost
    phone, shared link)."""
    if not (actor.is_staff or actor.supporter_id == supporter_id):
        raise Forbidden()
    async with in_transaction():
        supporter = await get_scoped(Supporter, supporter_id, actor, what="支援員",
                                     field="supporter_id", for_update=True)
        supporter.calendar_token = new_calendar_token()
        await supporter.save(update_fields=["calendar_token"])
        for assignment in await Assignment.filter(supporter_id=supporter.id).select_for_update():
            assignment.calendar_token = new_calendar_token()
            await assignment.save(update_fields=["calendar_token"])
        await audit.record(actor, "supporter.rotate_calendar_token", "Supporter", [supporter.id])
    return supporter
