from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from divide_support.api.accounts.types import Municipality
from divide_support.api.context import Info
from divide_support.api.loaders import MunicipalityLoader, loader
from divide_support.api.node import Node
from divide_support.core.ids import to_global_id
from divide_support.reports import models
from divide_support.reports import service as reports
from divide_support.reports.http import activity_url, report_url


@strawberry.type
class SurveyBand:
    label: str
    min_age: int
    max_age: int | None
    respondents: int | None


@strawberry.type(description="A municipality's own survey: the baseline of the reports.")
class Survey(Node):
    id: strawberry.ID
    key: str
    title: str
    year: int
    source: str | None
    sample_size: int | None
    field_from: date | None
    field_to: date | None
    _model: strawberry.Private[models.Survey]

    @classmethod
    def from_model(cls, m: models.Survey) -> Survey:
        return cls(id=strawberry.ID(to_global_id("Survey", m.id)), key=m.key, title=m.title,
                   year=m.year, source=m.source, sample_size=m.sample_size,
                   field_from=m.field_from, field_to=m.field_to, _model=m)

    @strawberry.field
    async def municipality(self, info: Info) -> Municipality:
        row = await loader(info.context, MunicipalityLoader).load(self._model.municipality_id)
        return Municipality.from_model(row)

    @strawberry.field
    async def bands(self) -> list[SurveyBand]:
        rows = await models.SurveyBand.filter(survey_id=self._model.id).order_by("position")
        return [SurveyBand(label=b.label, min_age=b.min_age, max_age=b.max_age,
                           respondents=b.respondents) for b in rows]

    @strawberry.field(description="Metric keys available per band, e.g. internet_use.using")
    def metrics(self) -> list[str]:
        return reports.metric_keys(self._model)

    @strawberry.field(description="The metrics with the survey's own words for them, for a "
                      "choice on screen.")
    def metric_options(self) -> list[SurveyMetric]:
        return [SurveyMetric(key=key, label=label)
                for key, label in reports.metric_labels(self._model)]


@strawberry.type(description="One metric of a survey: its key and its question and answer.")
class SurveyMetric:
    key: str
    label: str = strawberry.field(description="e.g. インターネットの利用の有無: 利用している")


@strawberry.type
class ParticipationRow:
    band: SurveyBand
    unique_participants: int | None = strawberry.field(
        description="Distinct residents who attended a CLASS or made a VISIT in the period, "
                    "by age on the day.")
    registrations: int | None
    attendances: int | None
    no_shows: int | None
    no_show_rate: float | None
    visits: int | None
    follow_ups_done: int | None
    uses_independently: int | None
    participant_share: float | None = strawberry.field(
        description="uniqueParticipants of this band / all uniqueParticipants with a known age.")
    baseline_need_share: float | None = strawberry.field(
        description="The survey's share of non-users that falls in this band (respondents x "
                    "(100 - metric) / 100, normalised), or the population-weighted share when "
                    "population figures are loaded.")
    representation_index: float | None = strawberry.field(
        description="participantShare / baselineNeedShare: 1.0 = reached in proportion to need, "
                    "below 1 = under-reached.")
    suppressed: bool = strawberry.field(
        description="True when counts are hidden because a cell is smaller than the suppression "
                    "threshold (PLANNER role).")

    @classmethod
    def from_row(cls, row: reports.Row) -> ParticipationRow:
        return cls(
            band=SurveyBand(label=row.label, min_age=row.min_age, max_age=row.max_age,
                            respondents=row.respondents),
            unique_participants=row.participants, registrations=row.registrations,
            attendances=row.attendances, no_shows=row.no_shows, no_show_rate=row.no_show_rate,
            visits=row.visits, follow_ups_done=row.follow_ups_done,
            uses_independently=row.uses_independently, participant_share=row.participant_share,
            baseline_need_share=row.need_share, representation_index=row.representation,
            suppressed=row.suppressed)


@strawberry.type
class ParticipationReport:
    survey: Survey
    metric: str
    from_: Annotated[date, strawberry.field(name="from")]
    to: date
    rows: list[ParticipationRow]
    unknown_age: int | None
    total: ParticipationRow
    weighting: str = strawberry.field(
        description="respondents (the survey sample stands in) or population (figures loaded).")
    csv_url: str = strawberry.field(
        description="CSV of the same rows (UTF-8 with BOM so spreadsheet software opens "
                    "Japanese text correctly).")
    chart_url: str = strawberry.field(
        description="SVG bar chart of participantShare against baselineNeedShare per band.")

    @classmethod
    def from_report(cls, report: reports.Report) -> ParticipationReport:
        survey_id = report.survey.id
        return cls(
            survey=Survey.from_model(report.survey), metric=report.metric,
            from_=report.filter.date_from, to=report.filter.date_to,
            rows=[ParticipationRow.from_row(r) for r in report.rows],
            unknown_age=report.unknown_age, total=ParticipationRow.from_row(report.total),
            weighting=report.weighting,
            csv_url=report_url("csv", survey_id, report.metric, report.filter),
            chart_url=report_url("svg", survey_id, report.metric, report.filter))


@strawberry.type(description="Per month and venue, the figures デジタル活用支援推進事業 is judged on.")
class ActivityRow:
    month: str
    venue_name: str
    sessions: int = strawberry.field(description="Sessions held (コマ), cancelled ones excluded.")
    classes: int
    help_sessions: int
    attendees: int | None = strawberry.field(
        description="Attendances at classes plus help-session visits (PLANNER: adjusted by at "
                    "most 2 by the cell key method, null when 1-4).")
    attendees_per_session: float | None
    single_attendee_sessions: int | None = strawberry.field(
        description="PLANNER: adjusted by at most 2 like attendees (never above sessions); null "
                    "where attendees are hidden. Likewise emptySessions.")
    empty_sessions: int | None
    basic_classes: int = strawberry.field(description="Classes of the basic menu (基本的な講座).")
    applied_classes: int = strawberry.field(description="Classes of the applied menu (応用的な講座).")
    supporters: int = strawberry.field(description="Supporter assignments (延べ人数).")
    certified_supporters: int
    supporters_per_session: float | None
    _venue_id: strawberry.Private[int | None]

    @strawberry.field
    def venue_id(self) -> strawberry.ID | None:
        return strawberry.ID(to_global_id("Venue", self._venue_id)) if self._venue_id else None

    @classmethod
    def from_row(cls, row: reports.ActivityRow) -> ActivityRow:
        return cls(month=row.month, venue_name=row.venue_name, sessions=row.sessions,
                   classes=row.classes, help_sessions=row.help_sessions, attendees=row.attendees,
                   attendees_per_session=row.attendees_per_session,
                   single_attendee_sessions=row.single_attendee_sessions,
                   empty_sessions=row.empty_sessions, basic_classes=row.basic_classes,
                   applied_classes=row.applied_classes, supporters=row.supporters,
                   certified_supporters=row.certified_supporters,
                   supporters_per_session=row.supporters_per_session, _venue_id=row.venue_id)


@strawberry.type
class ActivityReport:
    from_: Annotated[date, strawberry.field(name="from")]
    to: date
    rows: list[ActivityRow]
    total: ActivityRow
    csv_url: str


@strawberry.type(description="What an age band asked for (course-wish survey) against what it "
                 "attended, by course topic.")
class TopicRow:
    band: str
    topic: str
    wished_percent: float | None = strawberry.field(
        description="Share of the band that wants such a course (null: the survey does not say).")
    attendances: int | None
    visits: int | None
    follow_ups_done: int | None
    uses_independently: int | None
    attendance_share: float | None = strawberry.field(
        description="This topic's share of the band's class attendances.")
    suppressed: bool

    @classmethod
    def from_row(cls, row: reports.TopicRow) -> TopicRow:
        return cls(band=row.band, topic=row.topic, wished_percent=row.wished_percent,
                   attendances=row.attendances, visits=row.visits,
                   follow_ups_done=row.follow_ups_done, uses_independently=row.uses_independently,
                   attendance_share=row.attendance_share, suppressed=row.suppressed)


def activity_from(rows: list[reports.ActivityRow], total: reports.ActivityRow, date_from: date,
                  date_to: date, venue_ids: list[int] | None) -> ActivityReport:
    return ActivityReport(from_=date_from, to=date_to, rows=[ActivityRow.from_row(r) for r in rows],
                          total=ActivityRow.from_row(total),
                          csv_url=activity_url(date_from, date_to, venue_ids))
