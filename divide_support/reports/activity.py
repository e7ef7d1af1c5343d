"""The national programme's activity report: per month and venue, sessions, attendees and
staffing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tortoise import connections

from divide_support.core.actor import Actor, Role
from divide_support.core.permissions import require_role
from divide_support.reports import cellkey
from divide_support.reports._common import ReportFilter, _check_period
from divide_support.reports.cellkey import record_key
from divide_support.reports.suppression import suppress_columns

ACTIVITY_SQL = f"""
WITH sess AS (
    SELECT s.id, s.kind, s.venue_id, s.course_id,
           to_char(date_trunc('month', s.starts_at AT TIME ZONE $2), 'YYYY-MM') AS month
    FROM session s
    WHERE s.municipality_id = $1 AND s.status <> 'CANCELLED'
      AND s.starts_at >= ($3::date::timestamp AT TIME ZONE $2)
      AND s.starts_at < (($4::date + 1)::timestamp AT TIME ZONE $2)
      AND ($5::int[] IS NULL OR s.venue_id = ANY($5))
),
came AS (  -- rk: record keys of the cell key method ($6: for planners only)
    SELECT session_id, count(*) AS people, sum(rk) AS people_key FROM (
        SELECT r.session_id, {record_key("registration", "r.id", "$6")} AS rk
        FROM registration r JOIN sess s ON s.id = r.session_id
        WHERE r.attendance = 'ATTENDED'
        UNION ALL
        SELECT v.session_id, {record_key("visit", "v.id", "$6")}
        FROM visit v JOIN sess s ON s.id = v.session_id
    ) AS attended GROUP BY session_id
),
staff AS (
    SELECT a.session_id, count(*) AS supporters, count(*) FILTER (WHERE p.certified) AS certified
    FROM assignment a JOIN sess s ON s.id = a.session_id JOIN supporter p ON p.id = a.supporter_id
    GROUP BY a.session_id
)
SELECT s.month, s.venue_id, v.name AS venue_name,
       count(*) AS sessions,
       count(*) FILTER (WHERE s.kind = 'CLASS') AS classes,
       count(*) FILTER (WHERE s.kind = 'HELP_SESSION') AS help_sessions,
       coalesce(sum(came.people), 0) AS attendees, sum(came.people_key) AS attendees_key,
       count(*) FILTER (WHERE came.people = 1) AS single_attendee_sessions,
       sum({record_key("session", "s.id", "$6")}) FILTER (WHERE came.people = 1)
           AS single_attendee_sessions_key,
       count(*) FILTER (WHERE coalesce(came.people, 0) = 0) AS empty_sessions,
       sum({record_key("session", "s.id", "$6")}) FILTER (WHERE coalesce(came.people, 0) = 0)
           AS empty_sessions_key,
       count(*) FILTER (WHERE c.level = 'BASIC') AS basic_classes,
       count(*) FILTER (WHERE c.level = 'APPLIED') AS applied_classes,
       coalesce(sum(staff.supporters), 0) AS supporters,
       coalesce(sum(staff.certified), 0) AS certified_supporters
FROM sess s
JOIN venue v ON v.id = s.venue_id
LEFT JOIN course c ON c.id = s.course_id
LEFT JOIN came ON came.session_id = s.id
LEFT JOIN staff ON staff.session_id = s.id
GROUP BY s.month, s.venue_id, v.name
ORDER BY s.month, v.name, s.venue_id
"""

ACTIVITY_FIELDS = ("sessions", "classes", "help_sessions", "attendees", "single_attendee_sessions",
                   "empty_sessions", "basic_classes", "applied_classes", "supporters",
                   "certified_supporters")
# Perturbed for planners: attendees are people; a count of sessions with one or no attendee
# would give a day's attendees away exactly when the period moves by a day.
ACTIVITY_PERTURBED = ("attendees", "single_attendee_sessions", "empty_sessions")


@dataclass
class ActivityRow:
    month: str  # YYYY-MM, local time
    venue_id: int | None
    venue_name: str
    sessions: int = 0
    classes: int = 0
    help_sessions: int = 0
    attendees: int | None = 0
    single_attendee_sessions: int | None = 0
    empty_sessions: int | None = 0
    basic_classes: int = 0
    applied_classes: int = 0
    supporters: int = 0
    certified_supporters: int = 0
    perturbed: bool = False  # PLANNER: people counts adjusted by the cell key method

    @property
    def attendees_per_session(self) -> float | None:
        if self.attendees is None or not self.sessions:
            return None
        return round(self.attendees / self.sessions, 2)

    @property
    def supporters_per_session(self) -> float | None:
        return round(self.supporters / self.sessions, 2) if self.sessions else None


async def activity_report(*, actor: Actor, date_from: date, date_to: date,
                          venue_ids: list[int] | None = None) -> tuple[list[ActivityRow],
                                                                       ActivityRow]:
    """Per month and venue, what デジタル活用支援推進事業 reports are judged on: sessions (コマ),
    attendees per session, sessions with a single attendee, basic vs applied menus, staffing.
    Counts of sessions and people, nobody's details."""
    require_role(actor, Role.ADMIN, Role.COORDINATOR, Role.PLANNER)
    _check_period(ReportFilter(date_from, date_to))
    perturbed = actor.role == Role.PLANNER
    rows = await connections.get("default").execute_query_dict(ACTIVITY_SQL, [
        actor.municipality_id, actor.timezone, date_from, date_to, venue_ids, perturbed])
    result = [ActivityRow(month=r["month"], venue_id=r["venue_id"], venue_name=r["venue_name"],
                          **{name: int(r[name]) for name in ACTIVITY_FIELDS}) for r in rows]
    total = ActivityRow(month="合計", venue_id=None, venue_name="全会場")
    for name in ACTIVITY_FIELDS:
        setattr(total, name, sum(getattr(r, name) for r in result))
    if perturbed:
        keyed = [*zip(result, rows, strict=True),
                 (total, {f"{n}_key": cellkey.cell_key(*(r[f"{n}_key"] for r in rows))
                          for n in ACTIVITY_PERTURBED})]
        for row, record in keyed:
            row.perturbed = True
            for name in ACTIVITY_PERTURBED:
                value = cellkey.perturb(getattr(row, name), record[f"{name}_key"])
                # counts of sessions stay within the sessions held
                setattr(row, name, value if name == "attendees" else min(value, row.sessions))
        suppress_activity(result, total)
    return result, total


def suppress_activity(rows: list[ActivityRow], total: ActivityRow) -> None:
    """Attendee counts are people: no 1-4 for planners. Where a row's attendees are hidden,
    its counts of sessions with one or no attendee go too (one session with a single
    attendee would say exactly how many came)."""
    suppress_columns(rows, ("attendees",), total)
    for row in [*rows, total]:
        if row.attendees is None:
            row.single_attendee_sessions = None
            row.empty_sessions = None
