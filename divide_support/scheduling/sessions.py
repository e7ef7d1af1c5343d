"""Sessions: scheduled once or weekly, moved, cancelled, listed and found short of supporters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.closures import closed_day_reason
from divide_support.core.errors import CoreCode, DomainError
from divide_support.core.permissions import require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import NOTES_MAX, clean_text
from divide_support.scheduling import notices
from divide_support.scheduling._common import MAX_SESSION_HOURS, _lock_session, _non_negative, _session_not_open
from divide_support.scheduling.assignments import _check_supporters_free
from divide_support.scheduling.errors import SchedulingCode
from divide_support.scheduling.models import (
    Assignment,
    Course,
    Registration,
    RegistrationStatus,
    Session,
    SessionKind,
    SessionStatus,
    Venue,
)
from divide_support.scheduling.pages import SessionQuery
from divide_support.scheduling.registrations import _fill_free_seats
from divide_support.scheduling.staffing import understaffed_session_ids

MAX_WEEKLY_REPEATS = 52


def _check_time_range(starts_at: datetime, ends_at: datetime, field: str = "ends_at") -> None:
    if ends_at <= starts_at:
        raise DomainError(CoreCode.INVALID_TIME_RANGE, "終了時刻は開始時刻より後にしてください。",
                          field, message_en="endsAt must be after startsAt.")
    if ends_at - starts_at > timedelta(hours=MAX_SESSION_HOURS):
        raise DomainError(CoreCode.INVALID_TIME_RANGE,
                          f"1回の開催は{MAX_SESSION_HOURS}時間以内にしてください。",
                          field,
                          message_en=f"A session lasts at most {MAX_SESSION_HOURS} hours.")


@dataclass(frozen=True)
class SkippedDate:
    """A date of a weekly series left out: a national holiday or the year-end closure."""

    day: date
    reason: str  # the holiday's name (元日, 振替休日, ...) or 年末年始


@dataclass(frozen=True)
class ScheduledSeries:
    sessions: list[Session]
    skipped: list[SkippedDate]


async def schedule_sessions(**kwargs: Any) -> list[Session]:
    """schedule_series, for callers that need only the sessions (seeding, tests)."""
    return (await schedule_series(**kwargs)).sessions


async def schedule_series(
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
    repeat_weekly: int | None = 0,
    keep_closed_days: bool = False,
) -> ScheduledSeries:
    """One session, or a weekly series keeping the local wall-clock time. A series leaves
    out national holidays and the year-end closure (core.closures), unless
    `keep_closed_days`, and says which dates it left out; a single session is scheduled on
    the day staff chose, whatever day it is."""
    require_staff(actor)
    starts_at = timeutil.ensure_aware(starts_at, actor.timezone)
    ends_at = timeutil.ensure_aware(ends_at, actor.timezone)
    _check_time_range(starts_at, ends_at)
    repeat_weekly = repeat_weekly or 0
    if not 0 <= repeat_weekly <= MAX_WEEKLY_REPEATS:
        raise DomainError(CoreCode.BAD_USER_INPUT, f"繰り返しは0〜{MAX_WEEKLY_REPEATS}回で指定してください。",
                          "repeat_weekly",
                          message_en=f"repeatWeekly must be 0..{MAX_WEEKLY_REPEATS}.")
    _non_negative(capacity, "capacity", "定員", minimum=1)
    _non_negative(required_supporters, "required_supporters", "必要な支援員数", minimum=1)
    venue = await get_scoped(Venue, venue_id, actor, what="会場", field="venue_id")
    course = None
    if course_id is not None:
        course = await get_scoped(Course, course_id, actor, what="講座",
                                  field="course_id")
    if kind == SessionKind.CLASS and course is None:
        raise DomainError(SchedulingCode.COURSE_REQUIRED, "教室には講座を指定してください。",
                          "course_id", message_en="A CLASS needs a course.")
    default_title = course.title if course else "スマホ相談会"
    clean_title = clean_text(title, "title", "タイトル", 200) or default_title
    if capacity is not None and venue.capacity is not None and capacity > venue.capacity:
        raise DomainError(SchedulingCode.CAPACITY_EXCEEDS_VENUE,
                          f"定員が会場の収容人数（{venue.capacity}人）を超えています。",
                          "capacity",
                          message_en=f"Capacity exceeds the venue's {venue.capacity} places.")
    times, skipped = _series_times(starts_at, ends_at, repeat_weekly, actor.timezone,
                                   keep_closed_days=keep_closed_days)
    if not times:
        raise DomainError(SchedulingCode.ALL_DATES_CLOSED,
                          "指定した日はすべて祝日か年末年始です。別の日を選ぶか、祝日も開催する"
                          "を選んでください。", "starts_at",
                          message_en="Every date of the series is a holiday or in the "
                                     "year-end closure.")
    series_id = uuid.uuid4() if repeat_weekly else None
    sessions: list[Session] = []
    async with in_transaction():
        for session_start, session_end in times:
            session = await Session.create(
                municipality_id=actor.municipality_id,
                kind=kind,
                course_id=course.id if course else None,
                venue_id=venue.id,
                title=clean_title,
                starts_at=session_start,
                ends_at=session_end,
                capacity=capacity,
                required_supporters_explicit=required_supporters,
                series_id=series_id,
            )
            sessions.append(session)
        details: dict[str, Any] = {"repeatWeekly": repeat_weekly}
        if skipped:
            details["skipped"] = [item.day.isoformat() for item in skipped]
        await audit.record(actor, "session.schedule", "Session", [s.id for s in sessions],
                           details)
    return ScheduledSeries(sessions, skipped)


def _series_times(starts_at: datetime, ends_at: datetime, repeat_weekly: int, timezone: str, *,
                  keep_closed_days: bool) -> tuple[list[tuple[datetime, datetime]],
                                                   list[SkippedDate]]:
    """The start and end of each week's session (the same local wall-clock time), and the
    dates a series leaves out."""
    zone = ZoneInfo(timezone)
    times, skipped = [], []
    for week in range(repeat_weekly + 1):
        start = timeutil.add_weeks_local(starts_at, week, timezone)
        day = start.astimezone(zone).date()
        reason = closed_day_reason(day) if repeat_weekly and not keep_closed_days else None
        if reason:
            skipped.append(SkippedDate(day, reason))
            continue
        times.append((start, timeutil.add_weeks_local(ends_at, week, timezone)))
    return times, skipped


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
                                     field="venue_id")
        time_changed = (target_starts, target_ends) != (session.starts_at, session.ends_at)
        venue_changed = venue is not None and venue.id != session.venue_id
        changes: dict[str, object] = {}
        if capacity is not None:
            _non_negative(capacity, "capacity", "定員", minimum=1)
            confirmed = await Registration.filter(
                session_id=session.id, status=RegistrationStatus.CONFIRMED).count()
            if capacity < confirmed:
                raise DomainError(
                    SchedulingCode.CAPACITY_BELOW_CONFIRMED,
                    f"確定済みの参加者が{confirmed}人いるため、定員をそれより少なくできません。",
                    "capacity",
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
                    SchedulingCode.CAPACITY_EXCEEDS_VENUE,
                    f"定員が会場の収容人数（{room.capacity}人）を超えています。定員も合わせて変更してください。",
                    "capacity",
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
        raise DomainError(CoreCode.BAD_USER_INPUT, f"weeks は1〜{MAX_UNDERSTAFFED_WEEKS}で指定してください。",
                          "weeks", message_en=f"weeks must be 1 to {MAX_UNDERSTAFFED_WEEKS}.")
    if limit is not None and not 1 <= limit <= max_limit:
        raise DomainError(CoreCode.BAD_USER_INPUT, f"first は1〜{max_limit}で指定してください。",
                          "first", message_en=f"first must be 1 to {max_limit}.")
    now = timeutil.now()
    ids = await understaffed_session_ids(actor.municipality_id, now, now + timedelta(weeks=weeks))
    query = sessions_query(actor, session_ids=ids, venue_id=venue_id)
    return await query.all(limit=limit)
