"""Surveys and the participation report by age band.

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

import asyncio
import hashlib
from dataclasses import dataclass, field, replace
from datetime import date
from importlib.resources import files

from tortoise import connections
from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.audit import service as audit
from divide_support.core.actor import Actor, Role
from divide_support.core.errors import DomainError
from divide_support.core.permissions import require_role
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import clean_text
from divide_support.reports import cellkey
from divide_support.reports.cellkey import record_key
from divide_support.reports.models import PopulationFigure, Survey, SurveyBand, SurveyValue
from divide_support.reports.surveys import SurveyDocument, parse_survey

SUPPRESS_BELOW = 5  # planners never see a cell of 1-4 people
SHARE_PLACES = 4  # decimal places of the published shares and the index
INDEX_PLACES = 4
UNKNOWN_LABEL = "年齢不明"
MAX_PERIOD_DAYS = 3 * 366
SEED_FOLDER = "surveys"


# --- surveys -------------------------------------------------------------------------------

async def save_survey(document: SurveyDocument, municipality: Municipality) -> Survey:
    """Insert or replace (by municipality and key) in one transaction: never half-imported."""
    fingerprint = hashlib.sha256(repr(document).encode("utf-8")).hexdigest()
    async with in_transaction():
        survey = await Survey.filter(municipality_id=municipality.id,
                                     key=document.key).select_for_update().first()
        if survey is not None and survey.fingerprint == fingerprint:
            return survey
        values = dict(fingerprint=fingerprint, title=document.title, year=document.year, field_from=document.field_from,
                      field_to=document.field_to, source=document.source,
                      sample_size=document.sample_size,
                      metric_groups=[{"key": g.key, "label": g.label, "exhaustive": g.exhaustive,
                                      "metrics": [{"key": m.key, "label": m.label, "need": m.need}
                                                  for m in g.metrics]}
                                     for g in document.groups])
        if survey is None:
            survey = await Survey.create(municipality_id=municipality.id, key=document.key,
                                         **values)
        else:
            await Survey.filter(id=survey.id).update(**values)
            await SurveyBand.filter(survey_id=survey.id).delete()
        for position, band in enumerate(document.bands):
            row = await SurveyBand.create(survey_id=survey.id, position=position, label=band.label,
                                          min_age=band.min_age, max_age=band.max_age,
                                          respondents=band.respondents)
            await SurveyValue.bulk_create([SurveyValue(band_id=row.id, metric=metric, percent=value)
                                           for metric, value in band.values.items()])
        for figure in document.population:
            await PopulationFigure.filter(municipality_id=municipality.id, as_of=figure.as_of,
                                          min_age=figure.min_age).delete()
            await PopulationFigure.create(municipality_id=municipality.id, as_of=figure.as_of,
                                          min_age=figure.min_age, max_age=figure.max_age,
                                          population=figure.population)
    return await Survey.get(id=survey.id)


async def read_survey(text: str) -> SurveyDocument:
    """parse_survey beside the event loop: reading a large document takes a while (bounded,
    but up to about a second), and the server goes on answering meanwhile."""
    return await asyncio.to_thread(parse_survey, text)


async def _municipality_of(document: SurveyDocument, field: list[str]) -> Municipality:
    """The registered municipality a survey document names (UNKNOWN_MUNICIPALITY if none)."""
    municipality = await Municipality.get_or_none(code=document.municipality_code)
    if municipality is None:
        raise DomainError("UNKNOWN_MUNICIPALITY",
                          f"municipality: 団体コード {document.municipality_code} の自治体は登録されていません。",
                          field, message_en=f"Unknown municipality {document.municipality_code}.")
    return municipality


async def import_survey(*, actor: Actor, document_text: str) -> Survey:
    """ADMIN: load a survey of their own municipality (the same shape as the seeds)."""
    require_role(actor, Role.ADMIN)
    document = await read_survey(document_text)
    municipality = await _municipality_of(document, ["input", "document"])
    if municipality.id != actor.municipality_id:
        raise DomainError("FORBIDDEN", "ほかの自治体の調査は取り込めません。", ["input", "document"],
                          message_en="The survey belongs to another municipality.")
    survey = await save_survey(document, municipality)
    await audit.record(actor, "survey.import", "Survey", [survey.id], {"key": document.key})
    return survey


async def import_survey_file(text: str) -> Survey:
    """The CLI: any municipality (operators run it), same checks otherwise."""
    document = await read_survey(text)
    municipality = await _municipality_of(document, ["document"])
    return await save_survey(document, municipality)


def seed_documents() -> list[tuple[str, str]]:
    """(file name, text) of the surveys shipped in seeds/surveys/."""
    folder = files("divide_support.seeds").joinpath(SEED_FOLDER)
    return sorted((entry.name, entry.read_text(encoding="utf-8")) for entry in folder.iterdir()
                  if entry.name.endswith(".yaml"))


async def load_seed_surveys() -> int:
    """Idempotent: the same files give the same rows. Skips a survey whose municipality is
    not loaded."""
    loaded = 0
    for name, text in seed_documents():
        try:
            document = parse_survey(text)
        except DomainError as error:
            raise ValueError(f"seeds/surveys/{name}: {error.message}") from error
        municipality = await Municipality.get_or_none(code=document.municipality_code)
        if municipality is None:
            continue
        await save_survey(document, municipality)
        loaded += 1
    return loaded


def surveys_query(actor: Actor):
    require_role(actor, Role.ADMIN, Role.COORDINATOR, Role.PLANNER)
    return Survey.filter(municipality_id=actor.municipality_id).order_by("-year", "key")


def metric_keys(survey: Survey) -> list[str]:
    return [m["key"] for g in survey.metric_groups for m in g["metrics"]]


def metric_labels(survey: Survey) -> list[tuple[str, str]]:
    """(key, what people read) per metric: 「インターネットの利用の有無: 利用している」."""
    return [(m["key"], f"{g['label']}: {m['label']}" if g.get("label") else m["label"])
            for g in survey.metric_groups for m in g["metrics"]]


def metric_need(survey: Survey, metric: str) -> str | None:
    for group in survey.metric_groups:
        for m in group["metrics"]:
            if m["key"] == metric:
                return m.get("need", "value")
    return None


# --- the report ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportFilter:
    date_from: date
    date_to: date
    venue_ids: list[int] | None = None
    course_ids: list[int] | None = None
    kinds: list[str] | None = None
    districts: list[str] | None = None


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


def _age_on(day: str) -> str:
    """SQL: age in whole years on `day` (a date expression), from the resident's birth date,
    else their birth year; NULL when neither is known. The one age rule of the reports, the
    same as core.timeutil.age_on (which erasure uses to keep the ages the reports need:
    registration.age_at_session and visit.age_at_visit win over this when set)."""
    return (f"CASE WHEN p.birth_date IS NOT NULL THEN date_part('year', age({day}, p.birth_date))::int "
            f"WHEN p.birth_year IS NOT NULL THEN date_part('year', {day})::int - p.birth_year END")


# what a fact is called in REPORT_SQL: the count it goes into
_REPORT_FACTS = {"participant": "participants", "registration": "registrations",
                 "attendance": "attendances", "no_show": "no_shows", "visit": "visits",
                 "follow_up_done": "follow_ups_done", "uses_independently": "uses_independently"}


def _counted_with_keys(facts: dict[str, str]) -> str:
    """SQL: per kind of fact, its count and the sum of its record keys (the cell key before
    the modulo)."""
    return ",\n           ".join(
        f"count(*) FILTER (WHERE what = '{what}') AS {name}, "
        f"sum(rk) FILTER (WHERE what = '{what}') AS {name}_key" for what, name in facts.items())


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
            raise DomainError("TOO_MANY", f"地区は{MAX_DISTRICTS}個まで指定できます。",
                              ["filter", "districts"],
                              message_en=f"At most {MAX_DISTRICTS} districts.")
        cleaned = [clean_text(d, "districts", "地区", DISTRICT_MAX, path=["filter", "districts"])
                   for d in districts]
        districts = [d for d in cleaned if d] or None
    return replace(report_filter, districts=districts)


def _check_period(report_filter: ReportFilter) -> None:
    if report_filter.date_to < report_filter.date_from:
        raise DomainError("INVALID_TIME_RANGE", "期間の終わりが始まりより前です。", ["filter", "to"],
                          message_en="to is before from.")
    if (report_filter.date_to - report_filter.date_from).days > MAX_PERIOD_DAYS:
        raise DomainError("INVALID_TIME_RANGE", "期間は3年以内にしてください。", ["filter", "to"],
                          message_en="The period is at most three years.")


async def participation_report(*, actor: Actor, survey_id: int, metric: str,
                               report_filter: ReportFilter) -> Report:
    require_role(actor, Role.ADMIN, Role.COORDINATOR, Role.PLANNER)
    report_filter = _checked_filter(report_filter)
    metric = clean_text(metric, "metric", "指標", 100, required=True, path=["metric"]) or ""
    survey = await get_scoped(Survey, survey_id, actor, what="調査", field=["surveyId"])
    need_kind = metric_need(survey, metric)
    if need_kind is None:
        raise DomainError("UNKNOWN_METRIC",
                          f"この調査に指標「{metric}」はありません（{', '.join(metric_keys(survey))}）。",
                          ["metric"], message_en=f"Unknown metric {metric}.")
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


def _small(value: int | None) -> bool:
    return value is not None and 0 < value < SUPPRESS_BELOW


def suppress_columns(rows: list, fields: tuple[str, ...], total: object | None = None) -> bool:
    """Hide every count of 1-4, column by column, so that none can be worked out: the
    column's total when it is 1-4 itself, and a column never has exactly one hidden cell
    beside a shown total (the next smallest goes with it, or the total when there is no
    other). Works on any objects with those attributes; True if anything was hidden."""
    hidden_any = False
    for name in fields:
        hidden = [r for r in rows if getattr(r, name) is None or _small(getattr(r, name))]
        for row in hidden:
            setattr(row, name, None)
        if total is not None and _small(getattr(total, name)):
            setattr(total, name, None)
            hidden_any = True
        if len(hidden) == 1 and not (total is not None and getattr(total, name) is None):
            others = [r for r in rows if r not in hidden and (getattr(r, name) or 0) > 0]
            if others:
                setattr(min(others, key=lambda r: getattr(r, name)), name, None)
            elif total is not None:
                setattr(total, name, None)
        hidden_any = hidden_any or bool(hidden)
    return hidden_any


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


# --- the national programme's activity report ---------------------------------------------

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


# --- what each age band asked for vs what it attended ---------------------------------------

# Course topics as the Yaizu survey named the courses people want.
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
    survey = await get_scoped(Survey, survey_id, actor, what="調査", field=["surveyId"])
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
    from divide_support.scheduling.models import CourseTopic

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
