"""When a message may go: the municipality's quiet hours, and the moments of reminders and
follow-up messages (local wall-clock time)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from divide_support.accounts.models import Municipality
from divide_support.core import timeutil
from divide_support.core.closures import closed_day_reason
from divide_support.messaging.models import Channel, MessageKind

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


# --- automated calls ----------------------------------------------------------------------

SUNDAY = 6
CALL_SEARCH_DAYS = 14  # the year-end closure and a holiday week fit well within


def call_window(municipality: Municipality) -> tuple[time, time]:
    """(from, until) in local wall-clock time: 10:00-19:00 unless the municipality says."""
    start, end = municipality.call_from_minute, municipality.call_until_minute
    until = time.max if end >= 24 * 60 else time(end // 60, end % 60)  # 1440: midnight
    return time(start // 60 % 24, start % 60), until


def call_day_closed(day: date, municipality: Municipality) -> bool:
    """No automated calls on Sundays, national holidays and the year-end closure, unless
    the municipality calls on those days too."""
    if municipality.calls_on_closed_days:
        return False
    return day.weekday() == SUNDAY or closed_day_reason(day) is not None


def may_call_at(moment: datetime, municipality: Municipality) -> bool:
    local = moment.astimezone(ZoneInfo(municipality.timezone))
    start, end = call_window(municipality)
    return not call_day_closed(local.date(), municipality) and start <= local.time() < end


def next_call_moment(moment: datetime, municipality: Municipality) -> datetime:
    """`moment`, or the opening of the next call window after it."""
    if may_call_at(moment, municipality):
        return moment
    tz = ZoneInfo(municipality.timezone)
    local = moment.astimezone(tz)
    start, _ = call_window(municipality)
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    for _ in range(CALL_SEARCH_DAYS):
        if not call_day_closed(day, municipality):
            break
        day += timedelta(days=1)
    return datetime.combine(day, start, tzinfo=tz).astimezone(moment.tzinfo or ZoneInfo("UTC"))


def call_day_before(moment: datetime, municipality: Municipality) -> datetime:
    """The day-before reminder's moment for a call: when the day before is a Sunday or a
    holiday, the last open day before it, at the same time (the call names the date and
    weekday, never "tomorrow", so an earlier day reads right)."""
    tz = ZoneInfo(municipality.timezone)
    local = moment.astimezone(tz)
    for _ in range(CALL_SEARCH_DAYS):
        if not call_day_closed(local.date(), municipality):
            break
        local -= timedelta(days=1)
    return local.astimezone(moment.tzinfo or ZoneInfo("UTC"))


def earliest_send(channel: Channel, kind: MessageKind, moment: datetime, now: datetime,
                  municipality: Municipality) -> datetime:
    """When a message meant for `moment` may go by `channel`: outside SMS quiet hours, or
    within the call window (a day-before call moved off a closed day first)."""
    if channel == Channel.VOICE:
        if kind == MessageKind.REMINDER_DAY_BEFORE:
            moment = call_day_before(moment, municipality)
        return next_call_moment(max(moment, now), municipality)
    return after_quiet_hours(max(moment, now), municipality)
