"""What the reports share: the period they cover, and the SQL of ages and of counted facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from divide_support.core.errors import CoreCode, DomainError

MAX_PERIOD_DAYS = 3 * 366


@dataclass(frozen=True)
class ReportFilter:
    date_from: date
    date_to: date
    venue_ids: list[int] | None = None
    course_ids: list[int] | None = None
    kinds: list[str] | None = None
    districts: list[str] | None = None


def _check_period(report_filter: ReportFilter) -> None:
    if report_filter.date_to < report_filter.date_from:
        raise DomainError(CoreCode.INVALID_TIME_RANGE, "期間の終わりが始まりより前です。", "to",
                          message_en="to is before from.")
    if (report_filter.date_to - report_filter.date_from).days > MAX_PERIOD_DAYS:
        raise DomainError(CoreCode.INVALID_TIME_RANGE, "期間は3年以内にしてください。", "to",
                          message_en="The period is at most three years.")


def _age_on(day: str) -> str:
    """SQL: age in whole years on `day` (a date expression), from the resident's birth date,
    else their birth year; NULL when neither is known. The one age rule of the reports, the
    same as core.timeutil.age_on (which erasure uses to keep the ages the reports need:
    registration.age_at_session and visit.age_at_visit win over this when set)."""
    return (f"CASE WHEN p.birth_date IS NOT NULL THEN date_part('year', age({day}, p.birth_date))::int "
            f"WHEN p.birth_year IS NOT NULL THEN date_part('year', {day})::int - p.birth_year END")


def _counted_with_keys(facts: dict[str, str]) -> str:
    """SQL: per kind of fact, its count and the sum of its record keys (the cell key before
    the modulo)."""
    return ",\n           ".join(
        f"count(*) FILTER (WHERE what = '{what}') AS {name}, "
        f"sum(rk) FILTER (WHERE what = '{what}') AS {name}_key" for what, name in facts.items())
