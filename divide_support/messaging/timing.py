"""When a message may go: the municipality's quiet hours, and the moments of reminders and
follow-up messages (local wall-clock time)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from divide_support.accounts.models import Municipality
from divide_support.core import timeutil
from divide_support.messaging.models import MessageKind

REMINDER_KINDS = (MessageKind.REMINDER_DAY_BEFORE, MessageKind.REMINDER_SAME_DAY)
DAY_BEFORE_AT = time(10, 0)
SAME_DAY_LEAD = timedelta(hours=2)
FOLLOW_UP_AT = time(10, 0)


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
