"""A weekly series leaves out the days a Japanese town's centres are closed: national holidays
(substitute holidays and 国民の休日 included, from jpholiday) and the year-end closure
(12/29-1/3), unless staff ask to keep them; the answer says which dates it left out. A
single session is scheduled on the day staff chose.

The dates are fixed (2027-2029) so that the holidays are known: 2027-01-11 is 成人の日,
2029-01-01 (元日) and 2029-01-08 (成人の日) are both Mondays.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import factories
import pytest
from factories import TOKYO
from helpers_scheduling import audit_entries

from divide_support.core.closures import closed_day_reason
from divide_support.core.ids import to_global_id
from divide_support.scheduling.models import Session

SCHEDULE = """mutation ($input: ScheduleSessionInput!) {
  scheduleSession(input: $input) {
    sessions { id startsAt endsAt }
    skippedDates { date reason }
    errors { code message field }
  }
}"""


@pytest.mark.parametrize(("day", "reason"), [
    ("2027-01-01", "元日"),            # a holiday inside the closure keeps its own name
    ("2026-12-29", "年末年始"), ("2026-12-31", "年末年始"), ("2027-01-03", "年末年始"),
    ("2027-01-11", "成人の日"),
    ("2026-05-06", "憲法記念日 振替休日"),  # 5/3 fell on a Sunday
    ("2026-09-22", "国民の休日"),       # between 敬老の日 and 秋分の日
    ("2026-12-02", None), ("2026-12-28", None), ("2027-01-04", None),
])
def test_closed_days_are_holidays_and_the_year_end_closure(day, reason):
    assert closed_day_reason(date.fromisoformat(day)) == reason


def _at(day: str, hour: int) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=TOKYO).replace(
        hour=hour)


async def _schedule(gql, town, first: str, repeat: int, **extra) -> dict:
    venue = await factories.venue(town.coordinator)
    starts = _at(first, 13)
    data = await gql().data(SCHEDULE, {"input": {
        "kind": "HELP_SESSION", "venueId": to_global_id("Venue", venue.id),
        "startsAt": starts.isoformat(), "endsAt": (starts + timedelta(hours=2)).isoformat(),
        "repeatWeekly": repeat, **extra}})
    return data["scheduleSession"]


def _days(payload: dict) -> list[str]:
    return [datetime.fromisoformat(s["startsAt"]).date().isoformat() for s in payload["sessions"]]


async def test_a_weekly_series_leaves_out_a_national_holiday_and_says_so(gql, town):
    payload = await _schedule(gql, town, "2027-01-04", 2)
    assert payload["errors"] == []
    assert _days(payload) == ["2027-01-04", "2027-01-18"]
    assert payload["skippedDates"] == [{"date": "2027-01-11", "reason": "成人の日"}]
    assert {datetime.fromisoformat(s["startsAt"]).hour for s in payload["sessions"]} == {13}
    stored = await Session.all().order_by("starts_at")
    assert len(stored) == 2 and len({s.series_id for s in stored}) == 1
    [entry] = await audit_entries("session.schedule", stored[0].id)
    assert entry.details == {"repeatWeekly": 2, "skipped": ["2027-01-11"]}


async def test_a_weekly_series_leaves_out_the_year_end_closure(gql, town):
    payload = await _schedule(gql, town, "2027-12-22", 2)
    assert _days(payload) == ["2027-12-22", "2028-01-05"]
    assert payload["skippedDates"] == [{"date": "2027-12-29", "reason": "年末年始"}]


async def test_staff_can_keep_the_closed_days(gql, town):
    payload = await _schedule(gql, town, "2027-01-04", 2, keepClosedDays=True)
    assert _days(payload) == ["2027-01-04", "2027-01-11", "2027-01-18"]
    assert payload["skippedDates"] == []


async def test_a_single_session_is_scheduled_on_the_day_chosen_even_a_holiday(gql, town):
    payload = await _schedule(gql, town, "2027-01-11", 0)
    assert _days(payload) == ["2027-01-11"] and payload["skippedDates"] == []


async def test_a_series_of_only_closed_days_is_refused_and_changes_nothing(gql, town):
    payload = await _schedule(gql, town, "2029-01-01", 1)
    assert payload["sessions"] == [] and payload["skippedDates"] == []
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("ALL_DATES_CLOSED", ["input", "startsAt"])]
    assert "祝日か年末年始" in payload["errors"][0]["message"]
    assert await Session.all().count() == 0


async def test_the_console_says_which_dates_a_series_left_out(console, town):
    await console.login("hiratsuka-coordinator@example.jp")
    venue = await factories.venue(town.coordinator, capacity=20)
    await console.get("/sessions/new")
    assert "祝日・年末年始も開催する" in console.text()
    form = {"kind": "HELP_SESSION", "venueId": to_global_id("Venue", venue.id),
            "date": "2027-12-22", "startsAt": "10:00", "endsAt": "12:00", "repeatWeekly": "2"}
    await console.post("/sessions/new", form)
    assert "2回分を登録しました" in console.text()
    assert "祝日・年末年始のため、次の日は登録していません：12月29日(水)。" in console.text()
    assert await Session.all().count() == 2

    await console.get("/sessions/new")
    await console.post("/sessions/new", {**form, "keepClosedDays": "1"})
    assert "3回分を登録しました" in console.text()
    assert "登録していません" not in console.text()
    assert await Session.all().count() == 5
