"""What each age band asked for (the course-wish survey) against what it attended, per course
topic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tortoise import connections

from divide_support.core.actor import Actor, Role
from divide_support.core.permissions import require_role
from divide_support.core.tenancy import get_scoped
from divide_support.reports import cellkey
from divide_support.reports._common import ReportFilter, _age_on, _check_period, _counted_with_keys
from divide_support.reports.cellkey import record_key
from divide_support.reports.models import Survey, SurveyBand, SurveyValue
from divide_support.reports.suppression import suppress_columns
from divide_support.scheduling.models import CourseTopic

TOPIC_FOR_WISH = {
    "device_operation": "DEVICE_BASICS",
    "sns": "MESSAGING_SNS",
    "city_online_services": "CITY_ONLINE_SERVICES",
    "security": "SECURITY",
}

_TOPIC_FACTS = {"attendance": "attendances", "visit": "visits", "done": "follow_ups_done",
                "independent": "uses_independently"}

TOPIC_SQL = f"""
WITH bands AS (
    SELECT position, min_age, max_age FROM survey_band WHERE survey_id = $1
),
sess AS (
    SELECT s.id, (s.starts_at AT TIME ZONE $3)::date AS day, c.topic
    FROM session s JOIN course c ON c.id = s.course_id
    WHERE s.municipality_id = $2 AND s.status <> 'CANCELLED' AND s.kind = 'CLASS'
      AND s.starts_at >= ($4::date::timestamp AT TIME ZONE $3)
      AND s.starts_at < (($5::date + 1)::timestamp AT TIME ZONE $3)
),
attended AS (  -- rk: record keys of the cell key method ($6: for planners only)
    SELECT r.id, s.topic, COALESCE(r.age_at_session, {_age_on("s.day")}) AS age,
           {record_key("registration", "r.id", "$6")} AS rk
    FROM registration r JOIN sess s ON s.id = r.session_id JOIN resident p ON p.id = r.resident_id
    WHERE r.attendance = 'ATTENDED' AND r.status <> 'CANCELLED'
),
visited AS (
    SELECT v.topic, COALESCE(v.age_at_visit, {_age_on("(s.starts_at AT TIME ZONE $3)::date")}) AS age,
           {record_key("visit", "v.id", "$6")} AS rk
    FROM visit v JOIN session s ON s.id = v.session_id LEFT JOIN resident p ON p.id = v.resident_id
    WHERE s.municipality_id = $2 AND s.status <> 'CANCELLED'
      AND s.starts_at >= ($4::date::timestamp AT TIME ZONE $3)
      AND s.starts_at < (($5::date + 1)::timestamp AT TIME ZONE $3)
),
outcomes AS (
    SELECT a.topic, a.age, f.outcome, {record_key("follow_up", "f.id", "$6")} AS rk
    FROM attended a
    JOIN follow_up f ON f.registration_id = a.id AND f.status = 'DONE'
),
facts AS (
    SELECT topic, age, 'attendance' AS what, rk FROM attended
    UNION ALL SELECT topic, age, 'visit', rk FROM visited
    UNION ALL SELECT topic, age, 'done', rk FROM outcomes
    UNION ALL SELECT topic, age, 'independent', rk FROM outcomes
    WHERE outcome = 'USES_INDEPENDENTLY'
)
SELECT b.position, f.topic,
       {_counted_with_keys(_TOPIC_FACTS)}
FROM facts f JOIN bands b ON f.age >= b.min_age AND (b.max_age IS NULL OR f.age <= b.max_age)
GROUP BY b.position, f.topic
"""


TOPIC_FIELDS = ("attendances", "visits", "follow_ups_done", "uses_independently")


@dataclass
class TopicRow:
    band: str
    topic: str
    wished_percent: float | None  # share of the band that asked for such a course
    attendances: int | None = 0  # class attendances on courses of the topic
    visits: int | None = 0  # help-session visits about the topic
    follow_ups_done: int | None = 0
    uses_independently: int | None = 0
    attendance_share: float | None = None  # of the band's class attendances
    suppressed: bool = False


async def topic_report(*, actor: Actor, survey_id: int, date_from: date, date_to: date
                       ) -> list[TopicRow]:
    """For each age band and course topic: how many wanted it (course-wish survey) and what
    the band attended, with follow-up outcomes. PLANNER: cells of 1-4 hidden."""
    require_role(actor, Role.ADMIN, Role.COORDINATOR, Role.PLANNER)
    _check_period(ReportFilter(date_from, date_to))
    survey = await get_scoped(Survey, survey_id, actor, what="調査", field="survey_id")
    bands = await SurveyBand.filter(survey_id=survey.id).order_by("position")
    wishes: dict[tuple[int, str], float] = {}
    for value in await SurveyValue.filter(band_id__in=[b.id for b in bands]):
        group, _, name = value.metric.partition(".")
        if group == "course_wish" and name in TOPIC_FOR_WISH:
            wishes[(value.band_id, TOPIC_FOR_WISH[name])] = value.percent
    perturbed = actor.role == Role.PLANNER
    records = await connections.get("default").execute_query_dict(TOPIC_SQL, [
        survey.id, actor.municipality_id, actor.timezone, date_from, date_to, perturbed])
    counts = {(r["position"], r["topic"]): r for r in records}
    rows: list[TopicRow] = []
    for band in bands:
        in_band: list[TopicRow] = []
        for topic in CourseTopic:
            record = counts.get((band.position, topic.value))
            row = TopicRow(band=band.label, topic=topic.value,
                           wished_percent=wishes.get((band.id, topic.value)))
            if record:
                for name in TOPIC_FIELDS:
                    value = int(record[name])
                    setattr(row, name, cellkey.perturb(value, record[f"{name}_key"])
                            if perturbed else value)
            in_band.append(row)
        # from the counts shown (perturbed for planners)
        band_attendances = sum(r.attendances for r in in_band)
        for row in in_band:
            row.attendance_share = (round(row.attendances / band_attendances, 4)
                                    if band_attendances else None)
        rows.extend(in_band)
    if actor.role == Role.PLANNER:
        for band in bands:
            in_band = [r for r in rows if r.band == band.label]
            if suppress_columns(in_band, TOPIC_FIELDS):
                for row in in_band:  # a share would reveal the band's hidden total
                    row.attendance_share = None
                    row.suppressed = any(getattr(row, name) is None for name in TOPIC_FIELDS)
    return rows
