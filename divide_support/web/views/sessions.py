"""The counter's session pages: the list of upcoming sessions, scheduling a class or help
session, one session's page (roster, registering on a resident's behalf, cancelling a seat,
attendance, walk-ins, help-session visits, supporters, the printed sign-in sheet) and its
changes (reschedule, capacity, cancellation) with a confirmation that says whom they tell.

Every rule (who may, what is refused, who is promoted, who gets an SMS) is the API's; the
page shows what the API answered, at the field it concerns."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.responses import Response
from starlette.routing import Route

from divide_support.core import timeutil
from divide_support.web.pages import (
    STAFF,
    Console,
    not_found_page,
    page,
    redirect,
    user_errors,
)
from divide_support.web.views.home import staffing

KINDS = [("CLASS", "スマホ教室"), ("HELP_SESSION", "スマホ相談会")]
ROLES = [("ASSISTANT", "補助"), ("LEAD", "講師（リード）")]
SOURCES = {"PHONE": "電話で代理申込", "COUNTER": "窓口で代理申込", "WALK_IN": "当日参加",
           "ONLINE": "インターネット", "SUPPORTER": "支援員が受付"}
TOPICS = [("DEVICE_BASICS", "スマホの基本操作"), ("MESSAGING_SNS", "LINE・メール"),
          ("CITY_ONLINE_SERVICES", "市のオンライン手続き"), ("MY_NUMBER_CARD", "マイナンバーカード"),
          ("SECURITY", "安全な使い方（詐欺対策）"), ("CASHLESS", "キャッシュレス決済"),
          ("OTHER", "その他")]
OUTCOMES = [("RESOLVED", "解決した"), ("PARTLY_RESOLVED", "一部解決した"),
            ("NEEDS_FOLLOW_UP", "フォローアップが必要")]
ATTENDANCE = {"ATTENDED": "出席", "NO_SHOW": "欠席"}

# What the page says after a change (keys in the redirect's query, never free text).
NOTICES = {
    "scheduled": "登録しました。",
    "registered": "申込を受け付けました。",
    "waitlisted": "満席のため、キャンセル待ちで受け付けました。",
    "cancelled-seat": "申込を取り消しました。",
    "attendance": "出欠を記録しました。",
    "visit": "相談記録を登録しました。",
    "assigned": "支援員を割り当てました。",
    "unassigned": "支援員の担当を外しました。",
    "changed": "この回の変更を保存しました。",
    "cancelled": "この回を中止しました。",
}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}")


def _values(form: FormData) -> dict[str, str]:
    return {key: str(value).strip() for key, value in form.items() if key != "csrf_token"}


def _span(values: dict[str, str]) -> str:
    """12月3日(木) 10:00〜12:00 for the form's date and times (already checked)."""
    day = date.fromisoformat(values["date"])
    return f"{timeutil.format_day(day)} {values['startsAt']}〜{values['endsAt']}"


def _int_or_none(value: str) -> int | str | None:
    """A number field: its number, None when empty, the text itself otherwise (so the API
    is never asked with it: the page says so at the field)."""
    if not value:
        return None
    try:
        return int(value.translate(str.maketrans("０１２３４５６７８９", "0123456789")))
    except ValueError:
        return value


def _moment(day: str, clock: str) -> str:
    """A local wall-clock time as the API reads it (no offset: the municipality's zone)."""
    return f"{day}T{clock}:00"


def _times(values: dict[str, str], errors: dict[str, str]) -> tuple[str, str] | None:
    """The start and end of the form (date, startsAt, endsAt), or messages at the fields."""
    day, start, end = values.get("date", ""), values.get("startsAt", ""), values.get("endsAt", "")
    if not _DATE.fullmatch(day):
        errors["date"] = "日付を入力してください（例: 2026-12-03）。"
    if not _TIME.fullmatch(start):
        errors["startsAt"] = "開始時刻を入力してください（例: 10:00）。"
    if not _TIME.fullmatch(end):
        errors["endsAt"] = "終了時刻を入力してください（例: 12:00）。"
    if errors:
        return None
    return _moment(day, start), _moment(day, end)


def _numbers(values: dict[str, str], names: list[str], errors: dict[str, str]
             ) -> dict[str, int | None]:
    numbers: dict[str, int | None] = {}
    for name in names:
        number = _int_or_none(values.get(name, ""))
        if isinstance(number, str):
            errors[name] = "数字で入力してください。"
        else:
            numbers[name] = number
    return numbers


def _placed(payload: dict[str, Any], fields: set[str], result_errors: list[dict[str, Any]]
            ) -> tuple[dict[str, str], list[str]]:
    """The payload's messages at the form's fields; those of fields the form does not have
    (e.g. sessionId) above the form, with any top-level error."""
    by_field, general = user_errors(payload)
    general += [message for name, message in by_field.items() if name not in fields]
    general += [error["message"] for error in result_errors]
    return {k: v for k, v in by_field.items() if k in fields}, general


SCHEDULE_FIELDS = {"kind", "courseId", "title", "venueId", "date", "startsAt", "endsAt",
                   "capacity", "repeatWeekly"}
FORM_FIELDS = {"visit": {"residentId", "ageAtVisit", "topic", "outcome", "notes"},
               "supporters": {"supporterId", "role"}}
CHANGE_FIELDS = {"date", "startsAt", "endsAt", "venueId", "capacity"}


def _with(url: str, **query: str) -> str:
    return f"{url}?{urlencode({k: v for k, v in query.items() if v})}"


# --- the list and scheduling ----------------------------------------------------------------

@page(STAFF)
async def sessions_list(console: Console) -> Response:
    params = console.request.query_params
    venue_id = params.get("venue", "") or None
    kind = params.get("kind", "")
    kind = kind if kind in dict(KINDS) else None
    today = timeutil.local_date(timeutil.now(), console.timezone)
    understaffed = params.get("understaffed") == "1"
    data = await console.query("ConsoleSessions", {
        "venueId": venue_id, "kind": kind, "understaffed": understaffed or None,
        "from": timeutil.start_of_local_day(today, console.timezone).isoformat()})
    sessions = [edge["node"] for edge in data["sessions"]["edges"]]
    return console.render("sessions.html", title="教室・相談会", venues=data["venues"],
                          venue_id=venue_id, kind=kind, kinds=KINDS, sessions=sessions,
                          understaffed=understaffed,
                          total=data["sessions"]["totalCount"], staffing=staffing)


async def _schedule_form(console: Console, values: dict[str, str], errors: dict[str, str],
                         general: list[str], status_code: int = 200) -> Response:
    data = await console.query("ConsoleScheduleForm")
    courses = [(c["id"], f"{c['title']}（{'基本' if c['level'] == 'BASIC' else '応用'}）")
               for c in data["courses"]]
    venues = [(v["id"], v["name"] + (f"（収容人数 {v['capacity']}人）" if v["capacity"] else ""))
              for v in data["venues"]]
    return console.render("sessions_new.html", status_code=status_code,
                          title="教室・相談会を登録", values=values, errors=errors,
                          general=general, courses=courses, venues=venues, kinds=KINDS)


@page(STAFF)
async def session_new(console: Console) -> Response:
    return await _schedule_form(console, {"kind": "CLASS", "repeatWeekly": "0"}, {}, [])


@page(STAFF)
async def session_create(console: Console) -> Response:
    values = _values(await console.form())
    errors: dict[str, str] = {}
    times = _times(values, errors)
    numbers = _numbers(values, ["capacity", "repeatWeekly"], errors)
    if times is None or errors:
        return await _schedule_form(console, values, errors, [], 400)
    result = await console.mutate("ConsoleScheduleSession", {"input": {
        "kind": values.get("kind") if values.get("kind") in dict(KINDS) else "CLASS",
        "venueId": values.get("venueId", ""), "courseId": values.get("courseId") or None,
        "title": values.get("title") or None, "startsAt": times[0], "endsAt": times[1],
        "capacity": numbers["capacity"], "repeatWeekly": numbers["repeatWeekly"] or 0,
        "keepClosedDays": values.get("keepClosedDays") == "1"}})
    payload = result.data.get("scheduleSession") or {}
    if not payload.get("sessions"):
        errors, general = _placed(payload, SCHEDULE_FIELDS, result.errors)
        return await _schedule_form(console, values, errors, general, 400)
    created = payload["sessions"]
    skipped = ",".join(item["date"] for item in payload.get("skippedDates") or [])
    return redirect(_with(f"/sessions/{created[0]['id']}", done="scheduled",
                          count=str(len(created)), skipped=skipped))


def _skipped_dates(value: str) -> list[date]:
    """The dates a series left out, from the redirect's query: ISO dates only, at most a
    year's worth; anything else is ignored (the URL never puts words of its own on the page)."""
    days = []
    for part in value.split(",")[:53]:
        try:
            days.append(date.fromisoformat(part))
        except ValueError:
            continue
    return days


# --- one session ----------------------------------------------------------------------------

def _not_found(console: Console) -> Response:
    return not_found_page(console)


async def _session_page(console: Console, session_id: str, *, section: str = "",
                        errors: dict[str, str] | None = None, general: list[str] | None = None,
                        values: dict[str, str] | None = None, row: str = "",
                        status_code: int = 200) -> Response:
    params = console.request.query_params
    search = (values or {}).get("q") or params.get("q", "")
    promoted_ids = [p for p in params.get("promoted", "").split(",") if p][:5]
    data = await console.query("ConsoleSession", {
        "id": session_id, "search": search, "searching": bool(search.strip()),
        "promoted": promoted_ids[0] if promoted_ids else "", "hasPromoted": bool(promoted_ids)})
    session = data.get("node") or {}
    if not session.get("id"):
        return _not_found(console)
    phone_reasons = {p["registration"]["id"]: p["reason"] for p in data["residentsToPhone"]}
    promoted = data.get("promoted") or {}
    if promoted.get("session", {}).get("id") != session["id"] \
            or promoted.get("status") != "CONFIRMED":
        promoted = {}
    started = _started(session)
    confirmed = [e["node"] for e in session["confirmed"]["edges"]]
    waitlist = [e["node"] for e in session["waitlist"]["edges"]]
    residents = [e["node"] for e in (data.get("residents") or {}).get("edges", [])]
    done = params.get("done", "")
    notice = NOTICES.get(done, "")
    count = params.get("count", "")
    # a number or nothing: the URL never puts words of its own on the page
    if done == "scheduled" and count.isascii() and count.isdigit() \
            and len(count) <= 3 and int(count) > 1:
        notice = f"{int(count)}回分を登録しました（毎週同じ曜日・時刻）。この画面は1回目です。"
    skipped = _skipped_dates(params.get("skipped", "")) if done == "scheduled" else []
    if skipped:
        notice += ("祝日・年末年始のため、次の日は登録していません："
                   + "、".join(timeutil.format_day(d) for d in skipped) + "。")
    errors, general = dict(errors or {}), list(general or [])
    shown = {r["id"] for r in [*confirmed, *waitlist, *residents]} | {
        a["id"] for a in session["assignments"]}
    # Each message at its field or row; one whose field or row is not on the page above
    # the section's form instead.
    keep = set(FORM_FIELDS.get(section, ()))
    if row in shown:
        keep |= {"registrationId", "assignmentId", "residentId", "sessionId"} \
            if section == "register" else {"registrationId", "assignmentId"}
    general += [message for name, message in errors.items() if name not in keep]
    errors = {name: message for name, message in errors.items() if name in keep}
    template = "sessions_sheet.html" if params.get("print") == "1" else "sessions_detail.html"
    return console.render(
        template, status_code=status_code, title=session["title"], session=session,
        confirmed=confirmed, waitlist=waitlist,
        visits=[e["node"] for e in session["visits"]["edges"]],
        supporters=[e["node"] for e in data["supporters"]["edges"]], residents=residents,
        searched=bool(search.strip()), search=search, phone_reasons=phone_reasons,
        promoted=promoted, started=started, notice=notice, section=section,
        errors=errors, general=general, values=values or {}, row=row,
        staffing=staffing, sources=SOURCES, topics=TOPICS, outcomes=OUTCOMES, roles=ROLES,
        attendance=ATTENDANCE, topic_names=dict(TOPICS), outcome_names=dict(OUTCOMES))


def _started(session: dict[str, Any]) -> bool:
    """Whether the session's start has passed (which buttons to offer; the API decides)."""
    return datetime.fromisoformat(session["startsAt"]) <= timeutil.now()


@page(STAFF)
async def session_detail(console: Console) -> Response:
    return await _session_page(console, console.request.path_params["session_id"])


async def _act(console: Console, operation: str, field: str, variables: dict[str, Any], *,
               section: str, values: dict[str, str], done: str | None = None,
               row: str = "") -> tuple[dict[str, Any] | None, Response | None]:
    """Run one of the page's changes: the payload when it went through, or the page again
    with the API's message at the field (nothing changed)."""
    session_id = console.request.path_params["session_id"]
    result = await console.mutate(operation, {"input": variables})
    payload = result.data.get(field) or {}
    by_field, general = user_errors(payload)
    if result.errors or by_field or general:
        general = general + [e["message"] for e in result.errors]
        return None, await _session_page(console, session_id, section=section, errors=by_field,
                                         general=general, values=values, row=row,
                                         status_code=400)
    if done is not None:
        return payload, redirect(_with(f"/sessions/{session_id}", done=done,
                                       q=values.get("q", "")))
    return payload, None


@page(STAFF)
async def session_register(console: Console) -> Response:
    values = _values(await console.form())
    source = values.get("source", "PHONE")
    payload, response = await _act(
        console, "ConsoleRegister", "register",
        {"sessionId": console.request.path_params["session_id"],
         "residentId": values.get("residentId", ""),
         "source": source if source in SOURCES else "PHONE"},
        section="register", values=values, row=values.get("residentId", ""))
    if response is not None:
        return response
    assert payload is not None
    done = "waitlisted" if payload["registration"]["status"] == "WAITLISTED" else "registered"
    return redirect(_with(f"/sessions/{console.request.path_params['session_id']}", done=done))


@page(STAFF)
async def session_cancel_seat(console: Console) -> Response:
    values = _values(await console.form())
    payload, response = await _act(
        console, "ConsoleCancelSeat", "cancelRegistration",
        {"registrationId": values.get("registrationId", ""), "reason": values.get("reason") or None},
        section="roster", values=values, row=values.get("registrationId", ""))
    if response is not None:
        return response
    assert payload is not None
    promoted = ",".join(p["id"] for p in payload.get("promoted") or [])
    return redirect(_with(f"/sessions/{console.request.path_params['session_id']}",
                          done="cancelled-seat", promoted=promoted))


@page(STAFF)
async def session_attendance(console: Console) -> Response:
    values = _values(await console.form())
    attendance = values.get("attendance", "")
    _, response = await _act(
        console, "ConsoleAttendance", "recordAttendance",
        {"registrationId": values.get("registrationId", ""),
         "attendance": attendance if attendance in ATTENDANCE else "ATTENDED"},
        section="roster", values=values, done="attendance", row=values.get("registrationId", ""))
    assert response is not None
    return response


@page(STAFF)
async def session_visit(console: Console) -> Response:
    values = _values(await console.form())
    errors: dict[str, str] = {}
    numbers = _numbers(values, ["ageAtVisit"], errors)
    session_id = console.request.path_params["session_id"]
    if errors:
        return await _session_page(console, session_id, section="visit", errors=errors,
                                   values=values, status_code=400)
    topic, outcome = values.get("topic", ""), values.get("outcome", "")
    _, response = await _act(
        console, "ConsoleRecordVisit", "recordVisit",
        {"sessionId": session_id, "topic": topic if topic in dict(TOPICS) else "OTHER",
         "outcome": outcome if outcome in dict(OUTCOMES) else "RESOLVED",
         "residentId": values.get("residentId") or None, "ageAtVisit": numbers["ageAtVisit"],
         "notes": values.get("notes") or None},
        section="visit", values=values, done="visit")
    assert response is not None
    return response


@page(STAFF)
async def session_assign(console: Console) -> Response:
    values = _values(await console.form())
    role = values.get("role", "ASSISTANT")
    _, response = await _act(
        console, "ConsoleAssignSupporter", "assignSupporter",
        {"sessionId": console.request.path_params["session_id"],
         "supporterId": values.get("supporterId", ""),
         "role": role if role in dict(ROLES) else "ASSISTANT"},
        section="supporters", values=values, done="assigned")
    assert response is not None
    return response


@page(STAFF)
async def session_unassign(console: Console) -> Response:
    values = _values(await console.form())
    _, response = await _act(
        console, "ConsoleUnassignSupporter", "unassignSupporter",
        {"assignmentId": values.get("assignmentId", "")},
        section="supporters", values=values, done="unassigned",
        row=values.get("assignmentId", ""))
    assert response is not None
    return response


# --- changes: reschedule, capacity, cancellation ---------------------------------------------

def _current(session: dict[str, Any]) -> dict[str, str]:
    return {"date": session["startsAt"][:10], "startsAt": session["startsAt"][11:16],
            "endsAt": session["endsAt"][11:16], "venueId": session["venue"]["id"],
            "capacity": "" if session["capacity"] is None else str(session["capacity"])}


async def _change_data(console: Console, *, capacity: int | None = None,
                       previewing: bool = False) -> dict[str, Any]:
    return await console.query("ConsoleSessionChange", {
        "id": console.request.path_params["session_id"], "capacity": capacity,
        "byCapacity": capacity is not None, "previewing": previewing})


async def _change_form(console: Console, data: dict[str, Any], values: dict[str, str],
                       errors: dict[str, str], general: list[str],
                       status_code: int = 200) -> Response:
    venues = [(v["id"], v["name"] + (f"（収容人数 {v['capacity']}人）" if v["capacity"] else ""))
              for v in data["venues"]]
    return console.render("sessions_change.html", status_code=status_code,
                          title="日時・会場・定員の変更", session=data["node"], values=values,
                          errors=errors, general=general, venues=venues, staffing=staffing)


@page(STAFF)
async def session_change(console: Console) -> Response:
    data = await _change_data(console)
    if not (data.get("node") or {}).get("id"):
        return _not_found(console)
    return await _change_form(console, data, _current(data["node"]), {}, [])


@page(STAFF)
async def session_change_submit(console: Console) -> Response:
    """First post: check the form and show whom the change tells. Second (confirm=1): make it."""
    values = _values(await console.form())
    data = await _change_data(console)
    session = data.get("node") or {}
    if not session.get("id"):
        return _not_found(console)
    errors: dict[str, str] = {}
    times = _times(values, errors)
    numbers = _numbers(values, ["capacity"], errors)
    if times is None or errors:
        return await _change_form(console, data, values, errors, [], 400)
    current = _current(session)
    moved = any(values.get(k) != current[k] for k in ("date", "startsAt", "endsAt", "venueId"))
    capacity = numbers["capacity"]
    resized = capacity is not None and values.get("capacity") != current["capacity"]
    if not moved and not resized:
        return await _change_form(console, data, values, {},
                                  ["変更する項目がありません。日時・会場・定員のどれかを変えてください。"],
                                  400)
    if values.get("confirm") != "1":
        preview = await _change_data(console, capacity=capacity if resized else None,
                                     previewing=moved)
        notice = preview["node"]["all"] if moved else preview["node"]["grown"]
        return console.render("sessions_confirm.html", title="変更の確認", session=session,
                              values=values, moved=moved, resized=resized, preview=notice,
                              action=f"/sessions/{session['id']}/change", cancelling=False,
                              new_span=_span(values),
                              venue_names={v["id"]: v["name"] for v in data["venues"]})
    variables: dict[str, Any] = {"sessionId": session["id"]}
    if moved:
        variables.update(startsAt=times[0], endsAt=times[1], venueId=values.get("venueId"))
    if resized:
        variables["capacity"] = capacity
    result = await console.mutate("ConsoleReschedule", {"input": variables})
    payload = result.data.get("rescheduleSession") or {}
    if not payload.get("session"):
        by_field, general = _placed(payload, CHANGE_FIELDS, result.errors)
        return await _change_form(console, data, values, by_field, general, 400)
    return redirect(_with(f"/sessions/{session['id']}", done="changed"))


@page(STAFF)
async def session_cancel(console: Console) -> Response:
    data = await _change_data(console, previewing=True)
    session = data.get("node") or {}
    if not session.get("id"):
        return _not_found(console)
    return console.render("sessions_confirm.html", title="この回を中止", session=session,
                          values={}, preview=session["all"], cancelling=True, errors={},
                          general=[], action=f"/sessions/{session['id']}/cancel")


@page(STAFF)
async def session_cancel_submit(console: Console) -> Response:
    values = _values(await console.form())
    session_id = console.request.path_params["session_id"]
    result = await console.mutate("ConsoleCancelSession", {"input": {
        "sessionId": session_id, "reason": values.get("reason") or None}})
    payload = result.data.get("cancelSession") or {}
    if payload.get("session"):
        return redirect(_with(f"/sessions/{session_id}", done="cancelled"))
    data = await _change_data(console, previewing=True)
    session = data.get("node") or {}
    if not session.get("id"):
        return _not_found(console)
    by_field, general = _placed(payload, {"reason"}, result.errors)
    return console.render("sessions_confirm.html", status_code=400, title="この回を中止",
                          session=session, values=values, preview=session["all"],
                          cancelling=True, errors=by_field, general=general,
                          action=f"/sessions/{session_id}/cancel")


ROUTES = [
    Route("/sessions", sessions_list, methods=["GET"]),
    Route("/sessions/new", session_new, methods=["GET"]),
    Route("/sessions/new", session_create, methods=["POST"]),
    Route("/sessions/{session_id}", session_detail, methods=["GET"]),
    Route("/sessions/{session_id}/register", session_register, methods=["POST"]),
    Route("/sessions/{session_id}/cancel-seat", session_cancel_seat, methods=["POST"]),
    Route("/sessions/{session_id}/attendance", session_attendance, methods=["POST"]),
    Route("/sessions/{session_id}/visit", session_visit, methods=["POST"]),
    Route("/sessions/{session_id}/assign", session_assign, methods=["POST"]),
    Route("/sessions/{session_id}/unassign", session_unassign, methods=["POST"]),
    Route("/sessions/{session_id}/change", session_change, methods=["GET"]),
    Route("/sessions/{session_id}/change", session_change_submit, methods=["POST"]),
    Route("/sessions/{session_id}/cancel", session_cancel, methods=["GET"]),
    Route("/sessions/{session_id}/cancel", session_cancel_submit, methods=["POST"]),
]
