"""DateTime and Date with a sane range: year 0001 would pass ISO parsing and then
overflow in the database driver; such values are the client's mistake (BAD_USER_INPUT)."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

MIN_YEAR = 1900
MAX_YEAR = 2200


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"year must be between {MIN_YEAR} and {MAX_YEAR}")


def _parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO-8601 string")
    parsed = datetime.fromisoformat(value)
    _check_year(parsed.year)
    return parsed


def _parse_date(value: object) -> date:
    if not isinstance(value, str):
        raise ValueError("Date must be an ISO-8601 string (YYYY-MM-DD)")
    parsed = date.fromisoformat(value)
    _check_year(parsed.year)
    return parsed


DateTime = strawberry.scalar(
    name="DateTime",
    description="ISO-8601 date and time with offset, e.g. 2026-12-03T10:00:00+09:00 "
    "(a value without offset is read in the municipality's time zone).",
    serialize=lambda value: value.isoformat(), parse_value=_parse_datetime,
)
Date = strawberry.scalar(
    name="Date", description="ISO-8601 date, e.g. 2026-12-03.",
    serialize=lambda value: value.isoformat(), parse_value=_parse_date,
)

SCALAR_MAP = {datetime: DateTime, date: Date}
