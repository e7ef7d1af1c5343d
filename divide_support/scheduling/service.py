"""Venues, courses, sessions, supporter assignments, registrations, attendance, visits.

Concurrency: every change to a session's seats locks the session row
(SELECT ... FOR UPDATE) for its transaction, so capacity and the FIFO waitlist
hold under any number of simultaneous requests. Supporter assignments lock the
supporter row after the session row (always in that order, so no deadlocks).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.functions import Count, Max
from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.errors import DomainError, NotFound
from divide_support.core.permissions import require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import NOTES_MAX, clean_text, required_text
from divide_support.core.tokens import new_calendar_token
from divide_support.followups import service as followups
from divide_support.followups.models import FollowUpChannel, FollowUpPurpose
from divide_support.messaging import service as messaging
from divide_support.people.models import Device, Resident, Supporter
from divide_support.people.service import can_receive_sms, ensure_not_erased
from divide_support.scheduling import notices
from divide_support.scheduling.models import (
    ACTIVE_STATUSES,
    Assignment,
    AssignmentRole,
    Attendance,
    Course,
    CourseLevel,
    CourseTopic,
    Registration,
    RegistrationSource,
    RegistrationStatus,
    RemovedAssignment,
    Session,
    SessionKind,
    SessionStatus,
    Venue,
    VenueKind,
    Visit,
    VisitOutcome,
)
from divide_support.scheduling.pages import SessionQuery
from divide_support.scheduling.staffing import understaffed_session_ids

MAX_WEEKLY_REPEATS = 52
MAX_SESSION_HOURS = 12


# --- helpers -------------------------------------------------------------------------------

def effective_status(session: Session, at: datetime | None = None) -> SessionStatus:
    """COMPLETED is not stored: a scheduled session whose end has passed is completed."""
    if session.status == SessionStatus.CANCELLED:
        return SessionStatus.CANCELLED
    if session.ends_at <= (at or timeutil.now()):
        return SessionStatus.COMPLETED
    return SessionStatus.SCHEDULED


def _non_negative(value: int | None, field: str, label: str, *, minimum: int = 0) -> None:
    if value is not None and value < minimum:
        raise DomainError("BAD_USER_INPUT", f"{label}は{minimum}以上の数を入力してください。",
                          ["input", field], message_en=f"{field} must be at least {minimum}.")


def _check_time_range(starts_at: datetime, ends_at: datetime, field: str = "endsAt") -> None:
    if ends_at <= starts_at:
        raise DomainError("INVALID_TIME_RANGE", "終了時刻は開始時刻より後にしてください。",
                          ["input", field], message_en="endsAt must be after startsAt.")
    if ends_at - starts_at > timedelta(hours=MAX_SESSION_HOURS):
        raise DomainError("INVALID_TIME_RANGE",
                          f"1回の開催は{MAX_SESSION_HOURS}時間以内にしてください。",
                          ["input", field],
                          message_en=f"A session lasts at most {MAX_SESSION_HOURS} hours.")


def _session_not_open(message: str, message_en: str, field: str = "sessionId") -> DomainError:
    return DomainError("SESSION_NOT_OPEN", message, ["input", field], message_en=message_en)


def _duplicate(field: str, what: str) -> DomainError:
    return DomainError("DUPLICATE", f"同じ名前の{what}が既にあります。", ["input", field],
                       message_en=f"A {field} like this already exists.")


async def _lock_session(session_id: int, actor: Actor, field: str = "sessionId") -> Session:
    return await get_scoped(Session, session_id, actor, what="開催回", field=["input", field],
                            for_update=True)


async def _municipality(actor: Actor) -> Municipality:
    return await Municipality.get(id=actor.municipality_id)


# --- venues and courses --------------------------------------------------------------------

_UNSET: Any = object()


def _clean_venue_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise a venue's fields that were given; raises the first problem."""
    clean: dict[str, Any] = {}
    if "name" in values:
        clean["name"] = required_text(values["name"], "name", "会場名", 200)
    if "kind" in values:
        if values["kind"] is None:
            raise DomainError("REQUIRED", "会場の種類を選んでください。", ["input", "kind"],
                              message_en="kind cannot be null.")
        clean["kind"] = values["kind"]
    if "address" in values:
        clean["address"] = clean_text(values["address"], "address", "住所", 300)
    if "capacity" in values:
        _non_negative(values["capacity"], "capacity", "収容人数", minimum=1)
        clean["capacity"] = values["capacity"]
    if "has_wifi" in values:
        clean["has_wifi"] = bool(values["has_wifi"])
    if "loaner_devices" in values:
        _non_negative(values["loaner_devices"], "loanerDevices", "貸出端末数")
        clean["loaner_devices"] = values["loaner_devices"] or 0
    if "accessibility_notes" in values:
        clean["accessibility_notes"] = clean_text(
            values["accessibility_notes"], "accessibilityNotes", "バリアフリー情報", NOTES_MAX,
            multiline=True)
    return clean


async def create_venue(
    *,
    actor: Actor,
    name: str,
    kind: VenueKind,
    address: str | None = None,
    capacity: int | None = None,
    has_wifi: bool = False,
    loaner_devices: int = 0,
    accessibility_notes: str | None = None,
) -> Venue:
    require_staff(actor)
    clean = _clean_venue_fields({
        "name": name, "kind": kind, "address": address, "capacity": capacity,
        "has_wifi": has_wifi, "loaner_devices": loaner_devices,
        "accessibility_notes": accessibility_notes})
    if await Venue.filter(municipality_id=actor.municipality_id, name=clean["name"]).exists():
        raise _duplicate("name", "会場")
    try:
        async with in_transaction():
            venue = await Venue.create(municipality_id=actor.municipality_id, **clean)
            await audit.record(actor, "venue.create", "Venue", [venue.id])
    except IntegrityError as error:  # the same name saved by a colleague a moment ago
        raise _duplicate("name", "会場") from error
    return venue


async def update_venue(
    *,
    actor: Actor,
    venue_id: int,
    name: Any = _UNSET,
    kind: Any = _UNSET,
    address: Any = _UNSET,
    capacity: Any = _UNSET,
    has_wifi: Any = _UNSET,
    loaner_devices: Any = _UNSET,
    accessibility_notes: Any = _UNSET,
) -> Venue:
    """Staff: correct a venue (a new room, Wi-Fi installed). The room's capacity (収容人数)
    cannot go below the capacity of a coming session there: reschedule that one first."""
    require_staff(actor)
    given = {k: v for k, v in {
        "name": name, "kind": kind, "address": address, "capacity": capacity,
        "has_wifi": has_wifi, "loaner_devices": loaner_devices,
        "accessibility_notes": accessibility_notes}.items() if v is not _UNSET}
    clean = _clean_venue_fields(given)
    try:
        async with in_transaction():
            venue = await get_scoped(Venue, venue_id, actor, what="会場",
                                     field=["input", "venueId"], for_update=True)
            if "name" in clean and clean["name"] != venue.name and await Venue.filter(
                    municipality_id=actor.municipality_id, name=clean["name"]).exists():
                raise _duplicate("name", "会場")
            if clean.get("capacity") is not None:
                largest = await Session.filter(
                    venue_id=venue.id, status=SessionStatus.SCHEDULED,
                    ends_at__gt=timeutil.now(), capacity__gt=clean["capacity"]
                ).order_by("-capacity").first()
                if largest is not None:
                    raise DomainError(
                        "CAPACITY_BELOW_SESSIONS",
                        f"この会場には定員{largest.capacity}人の回が予定されています。"
                        "先にその回の定員を変更してください。",
                        ["input", "capacity"],
                        message_en=f"A coming session here has {largest.capacity} places; "
                                   "change its capacity first.")
            changed = sorted(k for k, v in clean.items() if getattr(venue, k) != v)
            for key, value in clean.items():
                setattr(venue, key, value)
            if changed:
                await venue.save(update_fields=changed)
            await audit.record(actor, "venue.update", "Venue", [venue.id],
                               {"fields": changed})
    except IntegrityError as error:
        raise _duplicate("name", "会場") from error
    return venue


async def create_course(
    *,
    actor: Actor,
    title: str,
    topic: CourseTopic,
    duration_minutes: int,
    description: str | None = None,
    target_device: Device | None = None,
    level: CourseLevel = CourseLevel.BASIC,
) -> Course:
    require_staff(actor)
    clean_title = required_text(title, "title", "講座名", 200)
    clean_description = clean_text(description, "description", "説明", NOTES_MAX, multiline=True)
    if not 15 <= duration_minutes <= MAX_SESSION_HOURS * 60:
        raise DomainError("BAD_USER_INPUT", "講座の時間は15分から12時間の間で入力してください。",
                          ["input", "durationMinutes"],
                          message_en="durationMinutes must be between 15 and 720.")
    if await Course.filter(municipality_id=actor.municipality_id, title=clean_title).exists():
        raise _duplicate("title", "講座")
    try:
        async with in_transaction():
            course = await Course.create(
                municipality_id=actor.municipality_id, title=clean_title, topic=topic, level=level,
                description=clean_description, target_device=target_device,
                duration_minutes=duration_minutes,
            )
            await audit.record(actor, "course.create", "Course", [course.id])
    except IntegrityError as error:
        raise _duplicate("title", "講座") from error
    return course


def venues_query(actor: Actor):
    return Venue.filter(municipality_id=actor.municipality_id).order_by("name", "id")


def courses_query(actor: Actor):
    return Course.filter(municipality_id=actor.municipality_id).order_by("level", "topic", "id")


# --- sessions ------------------------------------------------------------------------------

async def schedule_sessions(
    *,
    actor: Actor,
    kind: SessionKind,
    venue_id: int,
    starts_at: datetime,
    ends_at: datetime,
    course_id: int | None = None,
    title: str | None = None,
    capacity: int | None = None,
    required_supporters: int | None = None,
    repeat_weekly: int = 0,
) -> list[Session]:
    """One session, or a weekly series keeping the local wall-clock time."""
    require_staff(actor)
    starts_at = timeutil.ensure_aware(starts_at, actor.timezone)
    ends_at = timeutil.ensure_aware(ends_at, actor.timezone)
    _check_time_range(starts_at, ends_at)
    repeat_weekly = repeat_weekly or 0
    if not 0 <= repeat_weekly <= MAX_WEEKLY_REPEATS:
        raise DomainError("BAD_USER_INPUT", f"繰り返しは0〜{MAX_WEEKLY_REPEATS}回で指定してください。",
                          ["input", "repeatWeekly"],
                          message_en=f"repeatWeekly must be 0..{MAX_WEEKLY_REPEATS}.")
    _non_negative(capacity, "capacity", "定員", minimum=1)
    _non_negative(required_supporters, "requiredSupporters", "必要な支援員数", minimum=1)
    venue = await get_scoped(Venue, venue_id, actor, what="会場", field=["input", "venueId"])
    course = None
    if course_id is not None:
        course = await get_scoped(Course, course_id, actor, what="講座",
                                  field=["input", "courseId"])
    if kind == SessionKind.CLASS and course is None:
        raise DomainError("COURSE_REQUIRED", "教室には講座を指定してください。",
                          ["input", "courseId"], message_en="A CLASS needs a course.")
    default_title = course.title if course else "スマホ相談会"
    clean_title = clean_text(title, "title", "タイトル", 200) or default_title
    if capacity is not None and venue.capacity is not None and capacity > venue.capacity:
        raise DomainError("CAPACITY_EXCEEDS_VENUE",
                          f"定員が会場の収容人数（{venue.capacity}人）を超えています。",
                          ["input", "capacity"],
                          message_en=f"Capacity exceeds the venue's {venue.capacity} places.")
    series_id = uuid.uuid4() if repeat_weekly else None
    sessions: list[Session] = []
    async with in_transaction():
        for week in range(repeat_weekly + 1):
            session = await Session.create(
                municipality_id=actor.municipality_id,
                kind=kind,
                course_id=course.id if course else None,
                venue_id=venue.id,
                title=clean_title,
                starts_at=timeutil.add_weeks_local(starts_at, week, actor.timezone),
                ends_at=timeutil.add_weeks_local(ends_at, week, actor.timezone),
                capacity=capacity,
                required_supporters_explicit=required_supporters,
                series_id=series_id,
            )
            sessions.append(session)
        await audit.record(actor, "session.schedule", "Session", [s.id for s in sessions],
                           {"repeatWeekly": repeat_weekly})
    return sessions


async def _booked_elsewhere(supporter_id: int, starts_at: datetime, ends_at: datetime,
                            session_id: int) -> bool:
    """The one overlap rule: the supporter has a duty at another scheduled session that
    overlaps [starts_at, ends_at) (SUPPORTER_DOUBLE_BOOKED)."""
    return await Assignment.filter(
        supporter_id=supporter_id,
        session__status=SessionStatus.SCHEDULED,
        session__starts_at__lt=ends_at,
        session__ends_at__gt=starts_at,
    ).exclude(session_id=session_id).exists()


async def _check_supporters_free(
    session: Session, starts_at: datetime, ends_at: datetime, supporter_ids: list[int]
) -> None:
    for supporter_id in sorted(supporter_ids):
        await Supporter.filter(id=supporter_id).select_for_update().first()
        if await _booked_elsewhere(supporter_id, starts_at, ends_at, session.id):
            raise DomainError(
                "SUPPORTER_DOUBLE_BOOKED",
                "担当の支援員がこの時間帯に別の回を担当しています。",
                ["input", "startsAt"],
                message_en="An assigned supporter is booked elsewhere at that time.",
            )


async def reschedule_session(
    *,
    actor: Actor,
    session_id: int,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    venue_id: int | None = None,
    capacity: int | None = None,
) -> Session:
    """Move a session or change its capacity. Time or venue changes bump `sequence`;
    a larger capacity seats people from the waitlist at once."""
    require_staff(actor)
    async with in_transaction():
        session = await _lock_session(session_id, actor)
        if session.status == SessionStatus.CANCELLED:
            raise _session_not_open("中止された回は変更できません。",
                                    "A cancelled session cannot be changed.")
        new_starts = timeutil.ensure_aware(starts_at, actor.timezone) if starts_at else None
        new_ends = timeutil.ensure_aware(ends_at, actor.timezone) if ends_at else None
        if new_starts and not new_ends:
            # Moving the start keeps the length.
            new_ends = new_starts + (session.ends_at - session.starts_at)
        target_starts = new_starts or session.starts_at
        target_ends = new_ends or session.ends_at
        _check_time_range(target_starts, target_ends)
        venue = None
        if venue_id is not None:
            venue = await get_scoped(Venue, venue_id, actor, what="会場",
                                     field=["input", "venueId"])
        time_changed = (target_starts, target_ends) != (session.starts_at, session.ends_at)
        venue_changed = venue is not None and venue.id != session.venue_id
        changes: dict[str, object] = {}
        if capacity is not None:
            _non_negative(capacity, "capacity", "定員", minimum=1)
            confirmed = await Registration.filter(
                session_id=session.id, status=RegistrationStatus.CONFIRMED).count()
            if capacity < confirmed:
                raise DomainError(
                    "CAPACITY_BELOW_CONFIRMED",
                    f"確定済みの参加者が{confirmed}人いるため、定員をそれより少なくできません。",
                    ["input", "capacity"],
                    message_en=f"{confirmed} seats are confirmed; capacity cannot go below that.",
                )
            if capacity != session.capacity:
                changes["capacity"] = capacity
                session.capacity = capacity
        if capacity is not None or venue_changed:
            # The seats must fit the room the session will be in.
            room = venue or await Venue.get(id=session.venue_id)
            seats = capacity if capacity is not None else session.capacity
            if room.capacity is not None and seats is not None and seats > room.capacity:
                raise DomainError(
                    "CAPACITY_EXCEEDS_VENUE",
                    f"定員が会場の収容人数（{room.capacity}人）を超えています。定員も合わせて変更してください。",
                    ["input", "capacity"],
                    message_en=f"The capacity exceeds the venue's {room.capacity} places.")
        if time_changed:
            supporter_ids = await Assignment.filter(session_id=session.id).values_list(
                "supporter_id", flat=True)
            await _check_supporters_free(session, target_starts, target_ends, list(supporter_ids))
            changes["startsAt"] = target_starts.isoformat()
            changes["endsAt"] = target_ends.isoformat()
            session.starts_at, session.ends_at = target_starts, target_ends
        if venue_changed:
            assert venue is not None
            changes["venueId"] = venue.id
            session.venue_id = venue.id
        if time_changed or venue_changed:
            session.sequence += 1
        if not changes:
            # Nothing to change, but the call is on the record all the same (its answer may
            # carry the attendees' personal data).
            await audit.record(actor, "session.reschedule", "Session", [session.id],
                               {"changes": {}})
            return session
        await session.save()
        if time_changed or venue_changed:
            await notices.plan_session_changed(session)
        promoted = await _fill_free_seats(session, actor)
        await audit.record(actor, "session.reschedule", "Session", [session.id],
                           {"changes": changes, "promotedRegistrations": promoted})
    return session


async def cancel_session(*, actor: Actor, session_id: int, reason: str | None = None) -> Session:
    require_staff(actor)
    async with in_transaction():
        session = await _lock_session(session_id, actor)
        if session.status == SessionStatus.CANCELLED:
            raise _session_not_open("この回は既に中止されています。",
                                    "This session is already cancelled.")
        if session.ends_at <= timeutil.now():
            raise _session_not_open("終了した回は中止できません。",
                                    "A session that has ended cannot be cancelled.")
        session.status = SessionStatus.CANCELLED
        session.sequence += 1
        session.cancel_reason = clean_text(reason, "reason", "中止理由", NOTES_MAX, multiline=True)
        await session.save()
        await notices.plan_session_cancelled(session)
        await audit.record(actor, "session.cancel", "Session", [session.id],
                           {"reason": session.cancel_reason})
    return session


def sessions_query(
    actor: Actor,
    *,
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
    venue_id: int | None = None,
    kind: SessionKind | None = None,
    status: SessionStatus | None = None,
    session_ids: list[int] | None = None,
    exclude_ids: list[int] | None = None,
) -> SessionQuery:
    """The actor's municipality's sessions, filtered, soonest first (pages.SessionQuery)."""
    return SessionQuery(actor.municipality_id, starts_from=starts_from,
                        starts_before=starts_before, venue_id=venue_id, kind=kind,
                        status=status, session_ids=session_ids, exclude_ids=exclude_ids)


async def find_sessions(actor: Actor, *, starts_from: datetime | None = None,
                        starts_before: datetime | None = None, understaffed: bool | None = None,
                        **filters: Any) -> SessionQuery:
    """sessions_query (`filters`: venue_id, kind, status), and with `understaffed` only the
    sessions short of supporters (or of a certified LEAD) in that time range, or only those
    that are not."""
    ids = None
    if understaffed is not None:
        ids = await understaffed_session_ids(actor.municipality_id, starts_from, starts_before)
    return sessions_query(actor, starts_from=starts_from, starts_before=starts_before,
                          session_ids=ids if understaffed else None,
                          exclude_ids=ids if understaffed is False else None, **filters)


MAX_UNDERSTAFFED_WEEKS = 26


async def understaffed_sessions(*, actor: Actor, weeks: int = 4, venue_id: int | None = None,
                                limit: int | None = None, max_limit: int) -> list[Session]:
    """Scheduled sessions of the coming `weeks` that lack supporters, soonest first (the
    `limit` soonest, at most `max_limit`, the API's page size)."""
    if not 1 <= weeks <= MAX_UNDERSTAFFED_WEEKS:
        raise DomainError("BAD_USER_INPUT", f"weeks は1〜{MAX_UNDERSTAFFED_WEEKS}で指定してください。",
                          ["weeks"], message_en=f"weeks must be 1 to {MAX_UNDERSTAFFED_WEEKS}.")
    if limit is not None and not 1 <= limit <= max_limit:
        raise DomainError("BAD_USER_INPUT", f"first は1〜{max_limit}で指定してください。",
                          ["first"], message_en=f"first must be 1 to {max_limit}.")
    now = timeutil.now()
    ids = await understaffed_session_ids(actor.municipality_id, now, now + timedelta(weeks=weeks))
    query = sessions_query(actor, session_ids=ids, venue_id=venue_id)
    return await query.all(limit=limit)


# --- supporters ----------------------------------------------------------------------------

async def assign_supporter(
    *, actor: Actor, session_id: int, supporter_id: int, role: AssignmentRole | None = None
) -> Assignment:
    """Staff a session. A session that has ended can be staffed too: staff entering a past
    session from the paper sign-in sheet record who helped (the activity report counts
    them). That is a record, not a request, and nobody is told: an assignment never sends
    anything, and a past duty appears only in the supporter's own feed. Cancelled sessions
    are refused, past or not; the overlap rule holds for past duties too."""
    require_staff(actor)
    role = role or AssignmentRole.ASSISTANT
    async with in_transaction():
        session = await _lock_session(session_id, actor)
        if session.status == SessionStatus.CANCELLED:
            raise _session_not_open("中止された回には支援員を割り当てられません。",
                                    "Cannot staff a cancelled session.")
        backfilled = effective_status(session) == SessionStatus.COMPLETED
        supporter = await get_scoped(Supporter, supporter_id, actor, what="支援員",
                                     field=["input", "supporterId"], for_update=True)
        if not supporter.active:
            raise DomainError("SUPPORTER_INACTIVE", "この支援員は現在活動していません。",
                              ["input", "supporterId"],
                              message_en="This supporter is not active.")
        if role == AssignmentRole.LEAD and not supporter.certified:
            raise DomainError("LEAD_NOT_CERTIFIED",
                              "講師役（LEAD）は認定を受けた支援員に限られます。",
                              ["input", "role"],
                              message_en="Only certified supporters can lead.")
        if await Assignment.filter(session_id=session.id, supporter_id=supporter.id).exists():
            raise DomainError("ALREADY_ASSIGNED", "この支援員は既にこの回の担当です。",
                              ["input", "supporterId"],
                              message_en="This supporter is already assigned here.")
        if await _booked_elsewhere(supporter.id, session.starts_at, session.ends_at, session.id):
            raise DomainError("SUPPORTER_DOUBLE_BOOKED",
                              "この支援員は同じ時間帯に別の回を担当しています。",
                              ["input", "supporterId"],
                              message_en="This supporter is booked elsewhere at that time.")
        assignment = await Assignment.create(
            municipality_id=actor.municipality_id, session_id=session.id,
            supporter_id=supporter.id, role=role,
        )
        await audit.record(actor, "assignment.create", "Assignment", [assignment.id],
                           {"sessionId": session.id, "supporterId": supporter.id,
                            "role": str(role), "backfilled": backfilled})
    return assignment


async def unassign_supporter(*, actor: Actor, assignment_id: int) -> Assignment:
    require_staff(actor)
    async with in_transaction():
        assignment = await get_scoped(Assignment, assignment_id, actor, what="担当",
                                      field=["input", "assignmentId"])
        await _lock_session(assignment.session_id, actor)
        await RemovedAssignment.create(
            municipality_id=assignment.municipality_id, assignment_id=assignment.id,
            session_id=assignment.session_id, supporter_id=assignment.supporter_id,
            role=assignment.role, calendar_token=assignment.calendar_token)
        await Assignment.filter(id=assignment.id).delete()
        await audit.record(actor, "assignment.delete", "Assignment", [assignment.id],
                           {"sessionId": assignment.session_id,
                            "supporterId": assignment.supporter_id})
    return assignment


async def is_assigned(actor: Actor, session_id: int) -> bool:
    if actor.supporter_id is None:
        return False
    return await Assignment.filter(session_id=session_id, supporter_id=actor.supporter_id,
                                   municipality_id=actor.municipality_id).exists()


async def _takes_part(resident_id: int, session_id: int) -> bool:
    """The resident holds (or held and used) a place at the session, or visited it."""
    registered = await Registration.filter(
        session_id=session_id, resident_id=resident_id,
        status__in=ACTIVE_STATUSES).exists()
    return registered or await Visit.filter(session_id=session_id,
                                            resident_id=resident_id).exists()


async def _require_staff_or_assigned(actor: Actor, session_id: int) -> None:
    if actor.is_staff:
        return
    if not await is_assigned(actor, session_id):
        require_staff(actor)


# --- registrations -------------------------------------------------------------------------

async def _promote(registration: Registration, actor: Actor) -> None:
    """Seat a waitlisted resident; phone them when no SMS can reach them."""
    registration.status = RegistrationStatus.CONFIRMED
    registration.waitlist_position = None
    registration.promoted_at = timeutil.now()
    await registration.save(update_fields=["status", "waitlist_position", "promoted_at"])
    resident = await Resident.get(id=registration.resident_id)
    await notices.plan_registration(registration, promoted=True, resident=resident)
    session = await Session.get(id=registration.session_id)
    # Once the session runs, a call "you have a seat" comes too late: they are at the door.
    if not can_receive_sms(resident) and session.starts_at > timeutil.now():
        await followups.create_automatic(
            actor=actor,
            resident=resident,
            purpose=FollowUpPurpose.SEAT_AVAILABLE,
            due_on=timeutil.today(actor.timezone),
            channel=FollowUpChannel.PHONE_CALL,
            registration_id=registration.id,
            notes="キャンセル待ちから参加確定になりました。席が取れたことを電話でお伝えください。",
        )


async def _close_waitlist_gap(session_id: int, position: int) -> None:
    await Registration.filter(
        session_id=session_id, status=RegistrationStatus.WAITLISTED,
        waitlist_position__gt=position,
    ).update(waitlist_position=F("waitlist_position") - 1)


async def _fill_free_seats(session: Session, actor: Actor) -> list[int]:
    """Promote waitlisted residents, first come first served, into free seats.
    Caller holds the session lock."""
    if session.status == SessionStatus.CANCELLED or effective_status(session) != (
        SessionStatus.SCHEDULED
    ):
        return []
    confirmed = await Registration.filter(
        session_id=session.id, status=RegistrationStatus.CONFIRMED).count()
    free = None if session.capacity is None else session.capacity - confirmed
    waiting = Registration.filter(
        session_id=session.id, status=RegistrationStatus.WAITLISTED
    ).order_by("waitlist_position", "id")
    if free is not None:
        if free <= 0:
            return []
        waiting = waiting.limit(free)
    promoted = await waiting
    for registration in promoted:
        await _promote(registration, actor)
    if promoted:
        # Renumber what is left so positions stay 1..n.
        remaining = await Registration.filter(
            session_id=session.id, status=RegistrationStatus.WAITLISTED
        ).order_by("waitlist_position", "id")
        for index, registration in enumerate(remaining, start=1):
            if registration.waitlist_position != index:
                registration.waitlist_position = index
                await registration.save(update_fields=["waitlist_position"])
    return [r.id for r in promoted]


@dataclass(frozen=True)
class _Places:
    confirmed: int
    last_waitlist_position: int  # 0 when nobody waits
    already_registered: bool  # the resident holds a seat or a waitlist place


async def _places(session_id: int, resident_id: int) -> _Places:
    """Where a session's seats and waitlist stand, and whether the resident holds one, in one
    statement. Caller holds the session lock."""
    [row] = await Registration.filter(session_id=session_id).annotate(
        confirmed=Count("id", _filter=Q(status=RegistrationStatus.CONFIRMED)),
        last=Max("waitlist_position", _filter=Q(status=RegistrationStatus.WAITLISTED)),
        mine=Count("id", _filter=Q(resident_id=resident_id, status__in=ACTIVE_STATUSES)),
    ).values("confirmed", "last", "mine")
    return _Places(confirmed=row["confirmed"], last_waitlist_position=row["last"] or 0,
                   already_registered=row["mine"] > 0)


def _capacity_full_at_the_door() -> DomainError:
    # Nobody waits for a seat in a class that is already running.
    return DomainError("CAPACITY_FULL",
                       "定員に達しています。当日参加を受け付けるには先に定員を増やしてください。",
                       ["input", "sessionId"],
                       message_en="The session is full; raise the capacity first.")


async def register(
    *,
    actor: Actor,
    session_id: int,
    resident_id: int,
    source: RegistrationSource | None = None,
) -> Registration:
    """Seat the resident, or put them on the FIFO waitlist when the session is full."""
    require_staff(actor)
    source = source or RegistrationSource.PHONE
    async with in_transaction():
        session = await _lock_session(session_id, actor)
        resident = await get_scoped(Resident, resident_id, actor, what="住民",
                                    field=["input", "residentId"])
        ensure_not_erased(resident)
        now = timeutil.now()
        if session.status == SessionStatus.CANCELLED:
            raise _session_not_open("この回は中止されたため申し込めません。",
                                    "This session is cancelled.")
        started = session.starts_at <= now
        if started and source != RegistrationSource.WALK_IN:
            raise _session_not_open(
                "開始済みの回には申し込めません。当日の飛び入り参加は「当日参加（WALK_IN）」で登録してください。",
                "The session has started; register people at the door with source WALK_IN.",
            )
        places = await _places(session.id, resident.id)
        if places.already_registered:
            raise DomainError("ALREADY_REGISTERED", "この方は既にこの回に申し込まれています。",
                              ["input", "residentId"],
                              message_en="This resident is already registered for this session.")
        has_seat = session.capacity is None or places.confirmed < session.capacity
        if not has_seat and started:
            raise _capacity_full_at_the_door()
        position = None if has_seat else places.last_waitlist_position + 1
        registration = await Registration.create(
            municipality_id=actor.municipality_id,
            session_id=session.id,
            resident_id=resident.id,
            status=RegistrationStatus.CONFIRMED if has_seat else RegistrationStatus.WAITLISTED,
            waitlist_position=position,
            source=source,
        )
        await notices.plan_registration(registration, resident=resident)
        await audit.record(actor, "registration.create", "Registration", [registration.id],
                           {"sessionId": session.id, "residentId": resident.id,
                            "status": str(registration.status), "source": str(source)})
    return registration


async def cancel_registration(
    *, actor: Actor, registration_id: int, reason: str | None = None
) -> Registration:
    """Cancel a seat or waitlist place; a freed seat goes to the first on the waitlist."""
    return (await cancel_registration_promoting(actor=actor, registration_id=registration_id,
                                                reason=reason))[0]


async def cancel_registration_promoting(
    *, actor: Actor, registration_id: int, reason: str | None = None
) -> tuple[Registration, list[Registration]]:
    """cancel_registration, with the waitlisted registrations the freed seat went to (so
    staff can say at once who got the seat, and whether to phone them)."""
    require_staff(actor)
    async with in_transaction():
        registration = await get_scoped(Registration, registration_id, actor, what="申込",
                                        field=["input", "registrationId"])
        session = await _lock_session(registration.session_id, actor, "registrationId")
        registration = await Registration.get(id=registration.id)  # re-read under the lock
        if registration.status == RegistrationStatus.CANCELLED:
            raise DomainError("ALREADY_CANCELLED", "この申込は既に取り消されています。",
                              ["input", "registrationId"],
                              message_en="This registration is already cancelled.")
        if session.starts_at <= timeutil.now() and session.status != SessionStatus.CANCELLED:
            raise _session_not_open(
                "開始済みの回の申込は取り消せません。欠席の場合は出欠で「欠席」を記録してください。",
                "The session has started; record NO_SHOW instead.",
                "registrationId",
            )
        was = registration.status
        position = registration.waitlist_position
        registration.status = RegistrationStatus.CANCELLED
        registration.waitlist_position = None
        registration.cancelled_at = timeutil.now()
        registration.cancel_reason = clean_text(reason, "reason", "取消理由", NOTES_MAX,
                                                multiline=True)
        await registration.save()
        await messaging.cancel_for_registration(registration.id)
        promoted: list[int] = []
        if was == RegistrationStatus.WAITLISTED and position is not None:
            await _close_waitlist_gap(session.id, position)
        elif was == RegistrationStatus.CONFIRMED:
            promoted = await _fill_free_seats(session, actor)
        await audit.record(actor, "registration.cancel", "Registration", [registration.id],
                           # Whether a reason was given, never its words: the trail is
                           # append-only, and free text may name the person.
                           {"reasonGiven": registration.cancel_reason is not None,
                            "promotedRegistrations": promoted})
    return registration, list(await Registration.filter(id__in=promoted).order_by("id"))


async def record_attendance(
    *, actor: Actor, registration_id: int, attendance: Attendance
) -> Registration:
    """Attendance once the session has started; ATTENDED at a class plans a follow-up."""
    async with in_transaction():
        registration = await get_scoped(Registration, registration_id, actor, what="申込",
                                        field=["input", "registrationId"], for_update=True)
        await _require_staff_or_assigned(actor, registration.session_id)
        session = await Session.get(id=registration.session_id)
        if session.status == SessionStatus.CANCELLED:
            raise _session_not_open("中止された回の出欠は記録できません。",
                                    "The session was cancelled.", "registrationId")
        if session.starts_at > timeutil.now():
            raise DomainError("SESSION_NOT_STARTED", "出欠は開始時刻になってから記録できます。",
                              ["input", "registrationId"],
                              message_en="Attendance can be recorded once the session starts.")
        if registration.status != RegistrationStatus.CONFIRMED:
            raise DomainError(
                "NOT_CONFIRMED",
                "参加確定の申込だけ出欠を記録できます。キャンセル待ちの方が来場した場合は、"
                "定員を増やすとキャンセル待ちの順に参加確定になります。",
                ["input", "registrationId"],
                message_en="Only confirmed registrations have attendance.",
            )
        previous = registration.attendance
        registration.attendance = attendance
        if attendance == Attendance.ATTENDED:
            registration.checked_in_at = registration.checked_in_at or timeutil.now()
        else:
            registration.checked_in_at = None
        await registration.save(update_fields=["attendance", "checked_in_at"])
        if session.kind == SessionKind.CLASS and previous != attendance:
            if attendance == Attendance.ATTENDED:
                municipality = await _municipality(actor)
                resident = await Resident.get(id=registration.resident_id)
                due = timeutil.local_date(session.starts_at, actor.timezone) + timedelta(
                    days=municipality.follow_up_days)
                await followups.create_automatic(
                    actor=actor, resident=resident, purpose=FollowUpPurpose.AFTER_CLASS,
                    due_on=due, registration_id=registration.id,
                    notes=f"「{session.title}」受講後の様子の確認",
                )
            else:
                await followups.cancel_open_for_registration(
                    registration_id=registration.id, purpose=FollowUpPurpose.AFTER_CLASS,
                    actor=actor)
        await audit.record(actor, "registration.attendance", "Registration", [registration.id],
                           {"attendance": str(attendance)})
    return registration


def registrations_query(
    actor: Actor,
    *,
    session_id: int | None = None,
    resident_id: int | None = None,
    status: RegistrationStatus | None = None,
):
    query = Registration.filter(municipality_id=actor.municipality_id)
    if session_id is not None:
        query = query.filter(session_id=session_id)
    if resident_id is not None:
        query = query.filter(resident_id=resident_id)
    if status is not None:
        query = query.filter(status=status)
    if status == RegistrationStatus.WAITLISTED:
        return query.order_by("waitlist_position", "id")
    return query.order_by("created_at", "id")


async def may_see_attendees(actor: Actor, session_id: int) -> bool:
    """Staff see everyone; a supporter sees attendees of sessions they help at."""
    return actor.is_staff or await is_assigned(actor, session_id)


# --- visits --------------------------------------------------------------------------------

@dataclass(frozen=True)
class VisitInput:
    session_id: int
    topic: CourseTopic
    outcome: VisitOutcome
    resident_id: int | None = None
    age_at_visit: int | None = None
    helped_by_id: int | None = None
    notes: str | None = None


async def record_visit(*, actor: Actor, data: VisitInput) -> Visit:
    """A drop-in visit at a help session; NEEDS_FOLLOW_UP plans a follow-up in 7 days."""
    await _require_staff_or_assigned(actor, data.session_id)
    session = await get_scoped(Session, data.session_id, actor, what="開催回",
                               field=["input", "sessionId"])
    if session.kind != SessionKind.HELP_SESSION:
        raise DomainError("WRONG_SESSION_KIND", "相談記録はスマホ相談会の回にだけ登録できます。",
                          ["input", "sessionId"],
                          message_en="Visits belong to HELP_SESSION sessions.")
    if session.status == SessionStatus.CANCELLED:
        raise _session_not_open("中止された回には記録できません。", "The session was cancelled.")
    if session.starts_at > timeutil.now():
        raise DomainError("SESSION_NOT_STARTED", "相談記録は開始時刻になってから登録できます。",
                          ["input", "sessionId"],
                          message_en="Visits can be recorded once the session starts.")
    if data.age_at_visit is not None and not 0 <= data.age_at_visit <= 120:
        raise DomainError("BAD_USER_INPUT", "年齢は0〜120の数で入力してください。",
                          ["input", "ageAtVisit"], message_en="ageAtVisit must be 0..120.")
    resident = None
    age = data.age_at_visit
    if data.resident_id is not None:
        resident = await get_scoped(Resident, data.resident_id, actor, what="住民",
                                    field=["input", "residentId"])
        if not actor.is_staff and not await _takes_part(resident.id, session.id):
            # A supporter names only people of their own session; anyone else is, to them,
            # a resident that does not exist (staff link other visitors, or it stays anonymous).
            raise NotFound("住民", ["input", "residentId"])
        ensure_not_erased(resident)
        if age is None:
            age = timeutil.age_on(resident.birth_date, resident.birth_year,
                                  timeutil.local_date(session.starts_at, actor.timezone))
    if data.outcome == VisitOutcome.NEEDS_FOLLOW_UP and resident is None:
        raise DomainError(
            "RESIDENT_REQUIRED",
            "フォローアップが必要な場合は、連絡できるよう住民を登録してから記録してください。",
            ["input", "residentId"],
            message_en="A follow-up needs a known resident to contact.",
        )
    visit_notes = clean_text(data.notes, "notes", "メモ", NOTES_MAX, multiline=True)
    helped_by_id = data.helped_by_id
    if helped_by_id is None and actor.supporter_id is not None:
        helped_by_id = actor.supporter_id
    if helped_by_id is not None:
        await get_scoped(Supporter, helped_by_id, actor, what="支援員",
                         field=["input", "helpedById"])
    async with in_transaction():
        visit = await Visit.create(
            municipality_id=actor.municipality_id,
            session_id=session.id,
            resident_id=resident.id if resident else None,
            age_at_visit=age,
            topic=data.topic,
            outcome=data.outcome,
            helped_by_id=helped_by_id,
            notes=visit_notes,
        )
        if data.outcome == VisitOutcome.NEEDS_FOLLOW_UP and resident is not None:
            due = timeutil.local_date(session.starts_at, actor.timezone) + timedelta(
                days=followups.VISIT_FOLLOW_UP_DAYS)
            await followups.create_automatic(
                actor=actor, resident=resident, purpose=FollowUpPurpose.AFTER_VISIT,
                due_on=due, visit_id=visit.id, notes="相談会で解決しきれなかった内容の確認",
            )
        await audit.record(actor, "visit.create", "Visit", [visit.id],
                           {"sessionId": session.id, "anonymous": resident is None})
    return visit


# --- residents' rights ---------------------------------------------------------------------

async def upcoming_registrations(resident_id: int) -> int:
    """Seats and waitlist places the resident holds for sessions that have not ended."""
    return await Registration.filter(
        resident_id=resident_id, status__in=ACTIVE_STATUSES,
        session__status=SessionStatus.SCHEDULED, session__ends_at__gt=timeutil.now()).count()


async def erase_for_resident(resident: Resident, tz: str) -> None:
    """Before the resident's birth data goes: keep their age on each session day (the
    reports count them in the same band as before), drop free text that may name them and
    give their seats new invite links (the old ones stop working)."""
    registrations = await Registration.filter(resident_id=resident.id).select_related("session")
    for registration in registrations:
        day = timeutil.local_date(registration.session.starts_at, tz)
        if registration.age_at_session is None:
            registration.age_at_session = timeutil.age_on(resident.birth_date,
                                                           resident.birth_year, day)
        registration.cancel_reason = None
        registration.calendar_token = new_calendar_token()
        await registration.save(update_fields=["age_at_session", "cancel_reason",
                                               "calendar_token"])
    for visit in await Visit.filter(resident_id=resident.id).select_related("session"):
        if visit.age_at_visit is None:
            visit.age_at_visit = timeutil.age_on(
                resident.birth_date, resident.birth_year,
                timeutil.local_date(visit.session.starts_at, tz))
        visit.notes = None
        await visit.save(update_fields=["age_at_visit", "notes"])
