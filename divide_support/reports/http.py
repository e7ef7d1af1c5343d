"""/reports/participation.csv and .svg: the participationReport field as a file, for the
same caller (bearer token, or the staff console's session cookie) and with the same
suppression rules."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from divide_support.accounts import service as accounts
from divide_support.core.errors import DomainError
from divide_support.core.http_answers import (
    domain_error_answer,
    error_answer,
    unauthenticated_answer,
)
from divide_support.core.ids import decode_id, to_global_id
from divide_support.core.publicurl import public_base_url
from divide_support.reports import render
from divide_support.reports._common import ReportFilter
from divide_support.reports.activity import activity_report
from divide_support.reports.participation import Report, participation_report


def report_url(extension: str, survey_id: int, metric: str, report_filter: ReportFilter) -> str:
    """The file form of a report query: what csvUrl and chartUrl point at."""
    params: list[tuple[str, str]] = [
        ("surveyId", to_global_id("Survey", survey_id)), ("metric", metric),
        ("from", report_filter.date_from.isoformat()), ("to", report_filter.date_to.isoformat()),
    ]
    if report_filter.venue_ids:
        params.append(("venueIds", ",".join(to_global_id("Venue", v)
                                            for v in report_filter.venue_ids)))
    if report_filter.course_ids:
        params.append(("courseIds", ",".join(to_global_id("Course", c)
                                             for c in report_filter.course_ids)))
    if report_filter.kinds:
        params.append(("kinds", ",".join(report_filter.kinds)))
    if report_filter.districts:
        params.append(("districts", ",".join(report_filter.districts)))
    return f"{public_base_url()}/reports/participation.{extension}?{urlencode(params)}"


def _list(request: Request, name: str) -> list[str] | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    return [part for part in raw.split(",") if part]



async def _report(request: Request) -> Report | Response:
    actor = await accounts.authenticate_request(request.headers.get("authorization"),
                                                 request.cookies)
    if actor is None:
        return unauthenticated_answer()
    query = request.query_params
    try:
        survey_id = decode_id(query.get("surveyId", ""), "Survey", "survey_id", "調査")
        try:
            date_from = date.fromisoformat(query.get("from", ""))
            date_to = date.fromisoformat(query.get("to", ""))
        except ValueError:
            return error_answer(400, "BAD_USER_INPUT", "from と to は 2026-04-01 の形で指定してください。")
        kinds = _list(request, "kinds")
        if kinds and not set(kinds) <= {"CLASS", "HELP_SESSION"}:
            return error_answer(400, "BAD_USER_INPUT", "kinds は CLASS または HELP_SESSION です。")
        report_filter = ReportFilter(
            date_from=date_from, date_to=date_to,
            venue_ids=[decode_id(v, "Venue", "venue_ids", "会場")
                       for v in _list(request, "venueIds") or []] or None,
            course_ids=[decode_id(c, "Course", "course_ids", "講座")
                        for c in _list(request, "courseIds") or []] or None,
            kinds=kinds, districts=_list(request, "districts"))
        return await participation_report(
            actor=actor, survey_id=survey_id, metric=query.get("metric", ""),
            report_filter=report_filter)
    except DomainError as error:
        return domain_error_answer(error)


def activity_url(date_from: date, date_to: date, venue_ids: list[int] | None) -> str:
    params = [("from", date_from.isoformat()), ("to", date_to.isoformat())]
    if venue_ids:
        params.append(("venueIds", ",".join(to_global_id("Venue", v) for v in venue_ids)))
    return f"{public_base_url()}/reports/activity.csv?{urlencode(params)}"


async def activity_csv(request: Request) -> Response:
    actor = await accounts.authenticate_request(request.headers.get("authorization"),
                                                 request.cookies)
    if actor is None:
        return unauthenticated_answer()
    try:
        date_from = date.fromisoformat(request.query_params.get("from", ""))
        date_to = date.fromisoformat(request.query_params.get("to", ""))
    except ValueError:
        return error_answer(400, "BAD_USER_INPUT", "from と to は 2026-04-01 の形で指定してください。")
    try:
        venue_ids = [decode_id(v, "Venue", "venue_ids", "会場")
                     for v in _list(request, "venueIds") or []] or None
        rows, total = await activity_report(actor=actor, date_from=date_from,
                                            date_to=date_to, venue_ids=venue_ids)
    except DomainError as error:
        return domain_error_answer(error)
    return Response(render.activity_csv(rows, total, date_from, date_to),
                    media_type="text/csv; charset=utf-8", headers={
                        "Content-Disposition": "attachment; filename=\"activity.csv\"",
                        "Cache-Control": "private, no-store"})


async def participation_csv(request: Request) -> Response:
    report = await _report(request)
    if isinstance(report, Response):
        return report
    return Response(render.to_csv(report), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": "attachment; filename=\"participation.csv\"; "
                               "filename*=UTF-8''%E5%8F%82%E5%8A%A0%E7%8A%B6%E6%B3%81.csv",
        "Cache-Control": "private, no-store"})


async def participation_svg(request: Request) -> Response:
    report = await _report(request)
    if isinstance(report, Response):
        return report
    return Response(render.to_svg(report), media_type="image/svg+xml; charset=utf-8",
                    headers={"Cache-Control": "private, no-store"})
