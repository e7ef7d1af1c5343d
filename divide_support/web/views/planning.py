"""The planners' pages: who is reached, by age band against the survey baseline, and what
was done per month and venue. The numbers, their rounding and what is hidden are the API's
(small cells hidden for planners exactly as in participationReport and activityReport)."""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from divide_support.core import timeutil
from divide_support.web.pages import PLANNER, STAFF, Console, local_path, page

KINDS = [("CLASS", "スマホ教室"), ("HELP_SESSION", "スマホ相談会")]


def _fiscal_year_start(today: date) -> date:
    """Japanese municipalities count from 1 April."""
    return date(today.year if today.month >= 4 else today.year - 1, 4, 1)


def _date(value: str | None, default: date) -> tuple[date, bool]:
    try:
        return (date.fromisoformat(value), True) if value else (default, True)
    except ValueError:
        return default, False


def _period(params: Any, today: date, errors: dict[str, str]) -> tuple[date, date]:
    """The report's period from the page's fields (this fiscal year by default); a date that
    cannot be read is said at its field and the default stands in."""
    date_from, ok_from = _date(params.get("from"), _fiscal_year_start(today))
    date_to, ok_to = _date(params.get("to"), today)
    if not ok_from:
        errors["from"] = "開始日は 2026-04-01 の形で入力してください。"
    if not ok_to:
        errors["to"] = "終了日は 2026-04-01 の形で入力してください。"
    return date_from, date_to


def _districts(raw: str) -> list[str] | None:
    parts = [part.strip() for part in raw.replace("、", ",").split(",")]
    return [part for part in parts if part] or None


def _options(items: list[dict[str, Any]], label: str) -> list[tuple[str, str]]:
    return [(item["id"], item[label]) for item in items]


@page(PLANNER | STAFF)
async def participation(console: Console) -> Response:
    params = console.request.query_params
    today = timeutil.local_date(timeutil.now(), console.timezone)
    choices = await console.query("PlanningChoices")
    surveys = choices["surveys"]
    errors: dict[str, str] = {}
    date_from, date_to = _period(params, today, errors)
    survey = next((s for s in surveys if s["id"] == params.get("survey")),
                  surveys[0] if surveys else None)
    metric = params.get("metric") or (survey["metrics"][0] if survey and survey["metrics"]
                                      else "")
    values: dict[str, Any] = {
        "survey": survey["id"] if survey else "", "metric": metric,
        "from": date_from.isoformat(), "to": date_to.isoformat(),
        "venues": params.getlist("venues"), "courses": params.getlist("courses"),
        "kinds": params.getlist("kinds"), "districts": params.get("districts", "")}
    report = None
    if survey and not errors:
        report = (await console.query("PlanningParticipation", {
            "surveyId": survey["id"], "metric": metric,
            "filter": {"from": values["from"], "to": values["to"],
                       "venueIds": values["venues"] or None,
                       "courseIds": values["courses"] or None,
                       "kinds": values["kinds"] or None,
                       "districts": _districts(values["districts"])}}))["participationReport"]
    return console.render(
        "planning_participation.html", title="参加状況（年代別）", surveys=surveys,
        survey_options=[(s["id"], f"{s['title']}（{s['year']}年）") for s in surveys],
        metric_options=[(m["key"], m["label"]) for m in
                        (survey["metricOptions"] if survey else [])],
        venue_options=_options(choices["venues"], "name"),
        course_options=_options(choices["courses"], "title"), kinds=KINDS,
        values=values, errors=errors, report=report,
        chart_url=local_path(report["chartUrl"]) if report else "",
        csv_url=local_path(report["csvUrl"]) if report else "")


@page(PLANNER | STAFF)
async def activity(console: Console) -> Response:
    params = console.request.query_params
    today = timeutil.local_date(timeutil.now(), console.timezone)
    errors: dict[str, str] = {}
    date_from, date_to = _period(params, today, errors)
    values = {"from": date_from.isoformat(), "to": date_to.isoformat(),
              "venues": params.getlist("venues")}
    data = await console.query("PlanningActivity", {
        "from": values["from"], "to": values["to"], "venueIds": values["venues"] or None})
    report = data["activityReport"]
    return console.render("planning_activity.html", title="活動実績",
                          venue_options=_options(data["venues"], "name"),
                          values=values, errors=errors, report=report,
                          csv_url=local_path(report["csvUrl"]))


ROUTES = [
    Route("/planning/participation", participation, methods=["GET"]),
    Route("/planning/activity", activity, methods=["GET"]),
]
