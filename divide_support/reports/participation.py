"""The participation report by age band.

The report is computed in SQL (one statement: GROUP BY over the survey's bands, with each
cell's count and, for planners, its cell key); Python only adds shares, the baseline and, for
planners, the perturbation of every count (cell key method, reports/cellkey.py) followed by the
suppression of small cells.

Definitions (also in the API contract):
- age: on the (local) day of each session, from the birth date, else the birth year
  (year difference); a visit by the age recorded at the visit (record_visit computes it from
  the birth data, or staff type it for anonymous visitors), else from the birth data; a
  follow-up by the age of its registration, else of its visit;
- participants: distinct residents who attended a CLASS or made a VISIT in the period, each in
  the band of their age at their first participation in the period (so bands add up to the
  total); every anonymous visit is one participant;
- registrations (not cancelled), attendances, no-shows, visits, follow-ups done and those
  ending in USES_INDEPENDENTLY, all for sessions in the period that were not cancelled;
- need per band: survey respondents × need% / 100, or population × need% / 100 when
  population figures cover every band (need% = 100 − value for "complement" metrics such as
  internet_use.using, else the value itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.core.actor import Actor, Role
from divide_support.core.errors import DomainError
from divide_support.core.permissions import require_role
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import clean_text
from divide_support.reports import cellkey
from divide_support.reports._common import ReportFilter, _age_on, _check_period, _counted_with_keys
from divide_support.reports.cellkey import record_key
from divide_support.reports.errors import ReportsCode
from divide_support.reports.models import PopulationFigure, Survey, SurveyBand, SurveyValue
from divide_support.reports.suppression import _small, suppress_columns
from divide_support.reports.survey_storage import metric_keys, metric_need

SHARE_PLACES = 4  # decimal places of the published shares and the index
INDEX_PLACES = 4
UNKNOWN_LABEL = "年齢不明"


def _rounded(value: float | None, places: int) -> float | None:
    return None if value is None else round(value, places)


@dataclass
class Row:
    label: str
    min_age: int
    max_age: int | None
    respondents: int | None
    participants: int | None = 0
    registrations: int | None = 0
    attendances: int | None = 0
    no_shows: int | None = 0
    visits: int | None = 0
    follow_ups_done: int | None = 0
    uses_independently: int | None = 0
    # The shares as computed, never rounded: the published numbers below are rounded once,
    # from these (an index from two shares already rounded to 4 places is off by up to 1 %).
    participant_fraction: float | None = None
    need: float | None = None
    need_fraction: float | None = None
    suppressed: bool = False
    is_band: bool = True

    @property
    def participant_share(self) -> float | None:
        return _rounded(self.participant_fraction, SHARE_PLACES)

    @property
    def need_share(self) -> float | None:
        return _rounded(self.need_fraction, SHARE_PLACES)

    @property
    def representation(self) -> float | None:
        """Share of participants / share of need (1.0 = reached in proportion to need), for
        bands only."""
        if not self.is_band or self.participant_fraction is None or not self.need_fraction:
            return None
        return round(self.participant_fraction / self.need_fraction, INDEX_PLACES)

    @property
    def no_show_rate(self) -> float | None:
        if self.no_shows is None or self.attendances is None:
            return None
        held = self.no_shows + self.attendances
        return round(self.no_shows / held, 4) if held else None


@dataclass
class Report:
    survey: Survey
    metric: str
    filter: ReportFilter
    rows: list[Row]
    total: Row
    unknown_age: int | None
    weighting: str  # "respondents" or "population"
    suppressed_any: bool = False
    bands: list[SurveyBand] = field(default_factory=list)
    perturbed: bool = False  # PLANNER: counts adjusted by the cell key method


# what a fact is called in REPORT_SQL: the count it goes into
_REPORT_FACTS = {"participant": "participants", "registration": "registrations",
                 "attendance": "attendances", "no_show": "no_shows", "visit": "visits",
                 "follow_up_done": "follow_ups_done", "uses_independently": "uses_independently"}


def _summed_with_keys(facts: dict[str, str]) -> str:
    """SQL: the per-age counts and key sums of `_counted_with_keys`, summed per band."""
    return ",\n       ".join(f"sum(p.{name}) AS {name}, sum(p.{name}_key) AS {name}_key"
                             for name in facts.values())


REPORT_SQL = f"""
WITH bands AS (
    SELECT position, min_age, max_age FROM survey_band WHERE survey_id = $1
),
sess AS (
    SELECT s.id, s.kind, (s.starts_at AT TIME ZONE $3)::date AS day
    FROM session s
    WHERE s.municipality_id = $2 AND s.status <> 'CANCELLED'
      -- the local days as a UTC range: the index on starts_at and its statistics apply
      AND s.starts_at >= ($4::date::timestamp AT TIME ZONE $3)
      AND s.starts_at < (($5::date + 1)::timestamp AT TIME ZONE $3)
      AND ($6::int[] IS NULL OR s.venue_id = ANY($6))
      AND ($7::int[] IS NULL OR s.course_id = ANY($7))
      AND ($8::text[] IS NULL OR s.kind = ANY($8))
),
regs AS (
    SELECT r.id, r.resident_id, r.attendance, s.kind, s.day,
           COALESCE(r.age_at_session, {_age_on("s.day")}) AS age,
           {record_key("registration", "r.id", "$10")} AS rk
    FROM registration r
    JOIN sess s ON s.id = r.session_id
    JOIN resident p ON p.id = r.resident_id
    WHERE r.status <> 'CANCELLED' AND r.municipality_id = $2
      AND ($9::text[] IS NULL OR p.district = ANY($9))
),
vis AS (
    SELECT v.id, v.resident_id, s.day, COALESCE(v.age_at_visit, {_age_on("s.day")}) AS age,
           {record_key("visit", "v.id", "$10")} AS rk
    FROM visit v
    JOIN sess s ON s.id = v.session_id
    LEFT JOIN resident p ON p.id = v.resident_id
    WHERE v.municipality_id = $2 AND ($9::text[] IS NULL OR p.district = ANY($9))
),
participations AS (
    SELECT 'r' || resident_id AS who, resident_id, NULL::int AS visit_rk, day, age FROM regs
    WHERE attendance = 'ATTENDED' AND kind = 'CLASS'
    UNION ALL
    SELECT COALESCE('r' || resident_id, 'v' || id) AS who, resident_id,
           CASE WHEN resident_id IS NULL THEN rk END, day, age FROM vis
),
first_participation AS (
    SELECT DISTINCT ON (who) who, resident_id, visit_rk, age FROM participations
    ORDER BY who, day, age
),
done AS (
    SELECT f.outcome, COALESCE(r.age, v.age) AS age, {record_key("follow_up", "f.id", "$10")} AS rk
    FROM follow_up f
    LEFT JOIN regs r ON r.id = f.registration_id
    LEFT JOIN vis v ON v.id = f.visit_id
    WHERE f.municipality_id = $2 AND f.status = 'DONE'
      AND (r.id IS NOT NULL OR v.id IS NOT NULL)
),
facts AS (  -- rk: the fact's record key (cell key method; NULL for staff)
    SELECT age, 'participant' AS what,
           COALESCE({record_key("resident", "resident_id", "$10")}, visit_rk) AS rk
    FROM first_participation
    UNION ALL SELECT age, 'registration', rk FROM regs
    UNION ALL SELECT age, 'attendance', rk FROM regs WHERE attendance = 'ATTENDED'
    UNION ALL SELECT age, 'no_show', rk FROM regs WHERE attendance = 'NO_SHOW'
    UNION ALL SELECT age, 'visit', rk FROM vis
    UNION ALL SELECT age, 'follow_up_done', rk FROM done
    UNION ALL SELECT age, 'uses_independently', rk FROM done WHERE outcome = 'USES_INDEPENDENTLY'
),
per_age AS (  -- counted per age first: a few hundred rows meet the bands, not millions
    SELECT age, {_counted_with_keys(_REPORT_FACTS)}
    FROM facts GROUP BY age
)
SELECT b.position, (p.age IS NULL) AS age_unknown,
       {_summed_with_keys(_REPORT_FACTS)}
FROM per_age p
LEFT JOIN bands b ON p.age >= b.min_age AND (b.max_age IS NULL OR p.age <= b.max_age)
GROUP BY b.position, (p.age IS NULL)
"""

COUNT_FIELDS = ("participants", "registrations", "attendances", "no_shows", "visits",
                "follow_ups_done", "uses_independently")


MAX_DISTRICTS = 100
DISTRICT_MAX = 100  # the length of Resident.district


def _checked_filter(report_filter: ReportFilter) -> ReportFilter:
    """The filter with its free text cleaned like every other text (districts reach SQL)."""
    _check_period(report_filter)
    districts = report_filter.districts
    if districts:
        if len(districts) > MAX_DISTRICTS:
            raise DomainError(ReportsCode.TOO_MANY, f"地区は{MAX_DISTRICTS}個まで指定できます。",
                              "districts",
                              message_en=f"At most {MAX_DISTRICTS} districts.")
        cleaned = [clean_text(d, "districts", "地区", DISTRICT_MAX)
                   for d in districts]
        districts = [d for d in cleaned if d] or None
    return replace(report_filter, districts=districts)


async def participation_report(*, actor: Actor, survey_id: int, metric: str,
                               report_filter: ReportFilter) -> Report:
    require_role(actor, Role.ADMIN, Role.COORDINATOR, Role.PLANNER)
    report_filter = _checked_filter(report_filter)
    metric = clean_text(metric, "metric", "指標", 100, required=True) or ""
    survey = await get_scoped(Survey, survey_id, actor, what="調査", field="survey_id")
    need_kind = metric_need(survey, metric)
    if need_kind is None:
        raise DomainError(ReportsCode.UNKNOWN_METRIC,
                          f"この調査に指標「{metric}」はありません（{', '.join(metric_keys(survey))}）。",
                          "metric", message_en=f"Unknown metric {metric}.")
    bands = await SurveyBand.filter(survey_id=survey.id).order_by("position")
    values = {v.band_id: v.percent for v in await SurveyValue.filter(
        band_id__in=[b.id for b in bands], metric=metric)}
    municipality = await Municipality.get(id=actor.municipality_id)
    perturbed = actor.role == Role.PLANNER
    async with in_transaction() as conn:
        # JIT compilation costs seconds on this statement and saves nothing (measured with
        # scripts/bench_report.py).
        await conn.execute_script("SET LOCAL jit = off")
        rows_sql = await conn.execute_query_dict(REPORT_SQL, [
            survey.id, actor.municipality_id, municipality.timezone, report_filter.date_from,
            report_filter.date_to, report_filter.venue_ids, report_filter.course_ids,
            report_filter.kinds, report_filter.districts, perturbed,
        ])
    rows = [Row(label=b.label, min_age=b.min_age, max_age=b.max_age, respondents=b.respondents)
            for b in bands]
    unknown = Row(label=UNKNOWN_LABEL, min_age=0, max_age=None, respondents=None, is_band=False)
    outside = Row(label="調査の年齢区分外", min_age=0, max_age=None, respondents=None,
                  is_band=False)
    cells = [*rows, unknown, outside]
    keys: dict[tuple[int, str], int | None] = {}  # (index in cells, count) -> cell key
    for record in rows_sql:
        if record["position"] is not None:
            index = record["position"]
        else:
            index = len(rows) + (0 if record["age_unknown"] else 1)
        target = cells[index]
        for name in COUNT_FIELDS:
            setattr(target, name, getattr(target, name) + int(record[name]))
            keys[index, name] = cellkey.cell_key(keys.get((index, name)), record[f"{name}_key"])
    exact_total = {name: sum(getattr(r, name) for r in cells) for name in COUNT_FIELDS}
    if perturbed:  # planners: every count, and what is computed from them, perturbed first
        for index, row in enumerate(cells):
            for name in COUNT_FIELDS:
                setattr(row, name, cellkey.perturb(getattr(row, name), keys.get((index, name))))
    weighting = await _apply_need(rows, bands, values, need_kind, actor.municipality_id,
                                  report_filter.date_to)
    known = sum(r.participants for r in rows) + outside.participants
    for row in rows:
        row.participant_fraction = row.participants / known if known else None
    extra = [r for r in (unknown, outside) if any(getattr(r, n) for n in COUNT_FIELDS)]
    total = Row(label="合計", min_age=0, max_age=None, respondents=sum(
        b.respondents or 0 for b in bands) or None, is_band=False)
    for name in COUNT_FIELDS:
        setattr(total, name, sum(getattr(r, name) for r in [*rows, unknown, outside]))
        if perturbed:  # the total's own key, from all its facts: not the sum of the rows
            setattr(total, name, cellkey.perturb(exact_total[name], cellkey.cell_key(
                *(v for (_, n), v in keys.items() if n == name))))
    total.participant_fraction = 1.0 if known else None
    total.need_fraction = 1.0 if any(r.need_fraction for r in rows) else None
    report = Report(survey=survey, metric=metric, filter=report_filter, rows=rows + extra,
                    total=total, unknown_age=unknown.participants, weighting=weighting,
                    bands=list(bands), perturbed=perturbed)
    if actor.role == Role.PLANNER:
        suppress_small_cells(report)
    return report


async def _apply_need(rows: list[Row], bands: list[SurveyBand], values: dict[int, float],
                      need_kind: str, municipality_id: int, as_of: date) -> str:
    population = await _population_for(bands, municipality_id, as_of)
    weighting = "population" if population else "respondents"
    for row, band in zip(rows, bands, strict=True):
        percent = values.get(band.id)
        base = population.get(band.id) if population else band.respondents
        if percent is None or base is None:
            row.need = None
            continue
        share = (100 - percent) if need_kind == "complement" else percent
        row.need = base * share / 100
    total_need = sum(r.need for r in rows if r.need is not None)
    for row in rows:
        row.need_fraction = row.need / total_need if row.need is not None and total_need else None
    return weighting


async def _population_for(bands: list[SurveyBand], municipality_id: int, as_of: date
                          ) -> dict[int, int]:
    """Population per band from the latest figures on or before `as_of`, if every band has
    one with exactly its age range; otherwise {} (the respondents stand in)."""
    figures = await PopulationFigure.filter(municipality_id=municipality_id,
                                            as_of__lte=as_of).order_by("-as_of")
    found: dict[int, int] = {}
    for band in bands:
        match = next((f for f in figures if f.min_age == band.min_age
                      and f.max_age == band.max_age), None)
        if match is None:
            return {}
        found[band.id] = match.population
    return found


def _hide_row(row: Row) -> None:
    for name in COUNT_FIELDS:
        setattr(row, name, None)
    row.participant_fraction = None  # and so the index
    row.suppressed = True


def suppress_small_cells(report: Report) -> None:
    """Planners see no count of 1-4 and nothing that gives one away.

    Participants (whole rows): a band or the age-unknown row with 1-4 is hidden. The bands'
    shares reveal how many participants have a known age, so a single hidden band takes the
    next smallest band with it (or, if there is none, the total); a hidden age-unknown or
    out-of-band row hides the total, which would otherwise give it away.
    Every other count of 1-4 is hidden too, column by column, never leaving a single hidden
    cell that the column's total would reveal.
    """
    bands = [r for r in report.rows if r.is_band]
    extras = [r for r in report.rows if not r.is_band]
    for row in report.rows:
        if _small(row.participants):
            _hide_row(row)
    hidden_bands = [r for r in bands if r.suppressed]
    if len(hidden_bands) == 1:
        others = [r for r in bands if not r.suppressed and (r.participants or 0) > 0]
        if others:
            _hide_row(min(others, key=lambda r: r.participants or 0))
        else:
            report.total.participants = None
    if any(r.suppressed for r in extras) or _small(report.total.participants):
        report.total.participants = None
    other_fields = tuple(name for name in COUNT_FIELDS if name != "participants")
    suppress_columns(report.rows, other_fields, report.total)
    for row in [*report.rows, report.total]:
        if any(getattr(row, name) is None for name in COUNT_FIELDS):
            row.suppressed = True
    unknown = next((r for r in extras if r.label == UNKNOWN_LABEL), None)
    if unknown is not None and unknown.participants is None:
        report.unknown_age = None
    report.suppressed_any = any(r.suppressed for r in [*report.rows, report.total])
