from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from divide_support.api.context import Info
from divide_support.api.enums import SessionKind
from divide_support.api.errors import UserError, mutate, raise_as_graphql
from divide_support.api.permissions import actor_of
from divide_support.api.reports.types import (
    ActivityReport,
    ParticipationReport,
    Survey,
    TopicRow,
    activity_from,
)
from divide_support.core.ids import decode_id
from divide_support.reports import service as reports
from divide_support.reports.service import ReportFilter


@strawberry.input
class ParticipationFilter:
    from_: Annotated[date, strawberry.argument(name="from")] = strawberry.field(name="from")
    to: date
    venue_ids: list[strawberry.ID] | None = None
    course_ids: list[strawberry.ID] | None = None
    kinds: list[SessionKind] | None = None
    districts: list[str] | None = None


@strawberry.input
class ImportSurveyInput:
    document: str = strawberry.field(
        description="The same YAML or JSON shape as the shipped seeds/surveys files.")


@strawberry.type
class SurveyPayload:
    survey: Survey | None = None
    errors: list[UserError]


@strawberry.type
class ReportsQuery:
    @strawberry.field
    async def surveys(self, info: Info) -> list[Survey]:
        actor = actor_of(info)
        return [Survey.from_model(s) for s in await raise_as_graphql(
            lambda: reports.surveys_query(actor))]

    @strawberry.field(description="Participation by age band against a survey baseline. "
                      "PLANNER: every count is adjusted by at most 2, the same way every time "
                      "(cell key method; totals on their own, so they need not add up), then "
                      "counts of 1-4 are suppressed.")
    async def participation_report(self, info: Info, survey_id: strawberry.ID, metric: str,
                                   filter: ParticipationFilter) -> ParticipationReport:
        actor = actor_of(info)

        async def run():
            report_filter = ReportFilter(
                date_from=filter.from_, date_to=filter.to,
                venue_ids=[decode_id(v, "Venue", "venue_ids", "会場")
                           for v in filter.venue_ids] if filter.venue_ids else None,
                course_ids=[decode_id(c, "Course", "course_ids", "講座")
                            for c in filter.course_ids] if filter.course_ids else None,
                kinds=[str(k.value) for k in filter.kinds] if filter.kinds else None,
                districts=list(filter.districts) if filter.districts else None)
            return await reports.participation_report(
                actor=actor, survey_id=decode_id(survey_id, "Survey", "survey_id", "調査"),
                metric=metric, report_filter=report_filter)

        return ParticipationReport.from_report(await raise_as_graphql(run))


    @strawberry.field(description="Per month and venue: sessions (コマ), attendees per session, "
                      "sessions with a single attendee, basic vs applied menus, staffing.")
    async def activity_report(
        self, info: Info, from_: Annotated[date, strawberry.argument(name="from")], to: date,
        venue_ids: list[strawberry.ID] | None = None,
    ) -> ActivityReport:
        actor = actor_of(info)

        async def run():
            venues = [decode_id(v, "Venue", "venue_ids", "会場") for v in venue_ids] \
                if venue_ids else None
            rows, total = await reports.activity_report(actor=actor, date_from=from_, date_to=to,
                                                        venue_ids=venues)
            return activity_from(rows, total, from_, to, venues)

        return await raise_as_graphql(run)

    @strawberry.field(description="By age band and course topic: what the band asked for in a "
                      "course-wish survey (e.g. Yaizu 2021) against what it attended. PLANNER: "
                      "counts adjusted by at most 2 (cell key method), 1-4 suppressed.")
    async def topic_report(
        self, info: Info, survey_id: strawberry.ID,
        from_: Annotated[date, strawberry.argument(name="from")], to: date,
    ) -> list[TopicRow]:
        actor = actor_of(info)

        async def run():
            return await reports.topic_report(
                actor=actor, survey_id=decode_id(survey_id, "Survey", "survey_id", "調査"),
                date_from=from_, date_to=to)

        return [TopicRow.from_row(r) for r in await raise_as_graphql(run)]


@strawberry.type
class ReportsMutation:
    @strawberry.mutation(description="ADMIN: load a survey of the municipality (YAML or JSON, "
                         "the shape of seeds/surveys). Nothing is half-imported.")
    async def import_survey(self, info: Info, input: ImportSurveyInput) -> SurveyPayload:
        actor = actor_of(info)
        return await mutate(info, SurveyPayload, lambda: reports.import_survey(
            actor=actor, document_text=input.document), survey=Survey.from_model)
