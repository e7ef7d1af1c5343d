"""Time helpers: aware UTC inside, the municipality's zone at the edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS_JA = "月火水木金土日"


def now() -> datetime:
    return datetime.now(UTC)


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def ensure_aware(value: datetime, tz: str) -> datetime:
    """Naive datetimes typed by staff are read in the municipality's zone."""
    if value.tzinfo is None:
        return value.replace(tzinfo=ZoneInfo(tz))
    return value


def local_date(value: datetime, tz: str) -> date:
    return value.astimezone(ZoneInfo(tz)).date()


def today(tz: str) -> date:
    return local_date(now(), tz)


def add_weeks_local(value: datetime, weeks: int, tz: str) -> datetime:
    """Add whole weeks keeping the local wall-clock time (DST-safe)."""
    local = value.astimezone(ZoneInfo(tz))
    naive = local.replace(tzinfo=None) + timedelta(weeks=weeks)
    return naive.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def start_of_local_day(day: date, tz: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def format_day(day: date) -> str:
    """e.g. 12月3日(水) — how days are worded to people."""
    return f"{day.month}月{day.day}日({WEEKDAYS_JA[day.weekday()]})"


def format_local(value: datetime, tz: str) -> str:
    """e.g. 12月3日(水)10:00 — how times are worded to people."""
    local = value.astimezone(ZoneInfo(tz))
    return f"{format_day(local.date())}{local:%H:%M}"


def age_on(birth_date: date | None, birth_year: int | None, on: date) -> int | None:
    if birth_date is not None:
        years = on.year - birth_date.year
        if (on.month, on.day) < (birth_date.month, birth_date.day):
            years -= 1
        return years
    if birth_year is not None:
        return on.year - birth_year
    return None
