"""Residents at the counter: search, register a new resident (the API's duplicate check shown
as a question, never skipped), a resident's page, edit, SMS consent and opt-out.

Everything goes through the API's operations (residents.graphql): who may see contact details,
the audit of reading them, what a valid phone number is and who counts as the same person
are the API's decisions."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from starlette.datastructures import FormData
from starlette.responses import Response
from starlette.routing import Route

from divide_support.web.pages import (
    STAFF,
    Console,
    not_found_page,
    page,
    redirect,
    user_errors,
)

# The API's enum values in the glossary's words, for every page of this area.
DEVICES = {"IPHONE": "iPhone（アイフォーン）", "ANDROID": "Android（アンドロイド）",
           "FEATURE_PHONE": "携帯電話（ガラケー）", "TABLET": "タブレット",
           "NONE": "持っていない", "OTHER": "その他"}
PREFERENCES = {"PHONE_CALL": "電話", "SMS": "SMS", "POST": "郵送", "NONE": "希望なし"}
REGISTRATION_STATUS = {"CONFIRMED": "受付済", "WAITLISTED": "キャンセル待ち", "CANCELLED": "取消"}
ATTENDANCE = {"ATTENDED": "出席", "NO_SHOW": "欠席"}
MESSAGE_KINDS = {"CONFIRMATION": "申込の確認", "REMINDER_DAY_BEFORE": "前日のお知らせ",
                 "REMINDER_SAME_DAY": "当日のお知らせ", "WAITLIST_PROMOTED": "繰り上げのお知らせ",
                 "SESSION_CHANGED": "日時・会場の変更", "SESSION_CANCELLED": "中止のお知らせ",
                 "FOLLOW_UP": "フォローアップ（その後の確認）"}
MESSAGE_STATUS = {"PENDING": "送信待ち", "SENDING": "送信中", "UNKNOWN": "確認中",
                  "SENT": "送信済み", "DELIVERED": "届きました", "UNDELIVERED": "届きませんでした",
                  "FAILED": "送信できませんでした", "SKIPPED": "送りませんでした",
                  "CANCELLED": "取りやめ"}
FOLLOW_UP_STATUS = {"OPEN": "未完了", "DONE": "完了", "CANCELLED": "取消"}
FOLLOW_UP_PURPOSES = {"AFTER_CLASS": "教室のあと", "AFTER_VISIT": "相談のあと",
                      "SEAT_AVAILABLE": "空席のお知らせ", "MANUAL": "窓口で予定"}
OUTCOMES = {"USES_INDEPENDENTLY": "自分で使えるようになった",
            "NEEDS_MORE_HELP": "まだ手助けが必要",
            "NOT_REACHED": "連絡がつかなかった", "DECLINED": "確認を辞退された"}
LABELS = {"devices": DEVICES, "preferences": PREFERENCES,
          "registration_status": REGISTRATION_STATUS, "attendance": ATTENDANCE,
          "message_kinds": MESSAGE_KINDS, "message_status": MESSAGE_STATUS,
          "follow_up_status": FOLLOW_UP_STATUS, "purposes": FOLLOW_UP_PURPOSES,
          "outcomes": OUTCOMES}

# What the resident's page says after a change (fixed words: nothing typed is echoed).
NOTICES = {"created": "住民を登録しました。", "updated": "住民の情報を保存しました。",
           "consent": "SMSでのお知らせへの同意を記録しました。",
           "consent-withdrawn": "SMSでのお知らせへの同意を取り消しました。",
           "call-consent": "自動音声の電話でのお知らせへの同意を記録しました。",
           "call-consent-withdrawn": "自動音声の電話でのお知らせへの同意を取り消しました。",
           "opted-out": "SMSの配信を停止しました。", "opted-in": "SMSの配信停止を解除しました。",
           "scheduled": "フォローアップ（その後の確認）を予定しました。"}

TEXT_FIELDS = ("familyName", "givenName", "kana", "phone", "landline", "district", "notes",
               "supportNeeds")
REQUIRED_FIELDS = ("familyName", "givenName")
BIRTH_YEAR_MESSAGE = "生まれ年は西暦の数字4けた（例: 1948）で入力してください。"
BIRTH_DATE_MESSAGE = "生年月日は 1948-04-02 のように年-月-日で入力してください。"


def resident_input(form: FormData, *, clearing: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The form as the API's input. An empty field is left out when creating and cleared
    when editing (`clearing`). Only the shape is checked here (a year must be a number for
    GraphQL to carry it); whether a value is acceptable is the API's answer."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in TEXT_FIELDS:
        typed = str(form.get(name, ""))
        if typed.strip() or name in REQUIRED_FIELDS:
            values[name] = typed
        elif clearing:
            values[name] = None
    for name in ("device", "contactPreference"):
        chosen = str(form.get(name, ""))
        if chosen:
            values[name] = chosen
        elif clearing and name == "device":
            values[name] = None
    birth_date = unicodedata.normalize("NFKC", str(form.get("birthDate", ""))).strip()
    birth_year = unicodedata.normalize("NFKC", str(form.get("birthYear", ""))).strip()
    if birth_date:
        try:
            values["birthDate"] = date.fromisoformat(birth_date).isoformat()
        except ValueError:
            problems["birthDate"] = BIRTH_DATE_MESSAGE
    elif clearing:
        values["birthDate"] = None
    if birth_year:
        if birth_year.isascii() and birth_year.isdigit() and len(birth_year) <= 4:
            values["birthYear"] = int(birth_year)
        else:
            problems["birthYear"] = BIRTH_YEAR_MESSAGE
    elif clearing:
        values["birthYear"] = None
    return values, problems


def typed_values(form: FormData) -> dict[str, str]:
    """What was typed, to put back into the form."""
    return {key: str(value) for key, value in form.items() if key != "csrf_token"}


def resident_values(resident: dict[str, Any]) -> dict[str, str]:
    """A stored resident as the edit form's values. The birth year is shown on its own only
    without a birth date (the API derives it from the date)."""
    values = {name: resident.get(name) or "" for name in (*TEXT_FIELDS, "device",
                                                          "contactPreference", "birthDate")}
    if not resident.get("birthDate") and resident.get("birthYear"):
        values["birthYear"] = str(resident["birthYear"])
    return values


def _session_param(console: Console) -> str:
    return console.request.query_params.get("session", "")


async def _session_for(console: Console, session_id: str) -> dict[str, Any] | None:
    """The session a new resident is to be registered for (or None: another municipality's
    or a wrong ID simply is not offered)."""
    if not session_id:
        return None
    node = (await console.query("ResidentsSessionFor", {"id": session_id})).get("node")
    return node if node and node.get("title") else None


@page(STAFF)
async def residents(console: Console) -> Response:
    search = console.request.query_params.get("q", "").strip()
    session_id = _session_param(console)
    found = None
    if search:
        found = (await console.query("ResidentsSearch", {"search": search}))["residents"]
    return console.render("residents.html", title="住民をさがす", search=search, found=found,
                          session=await _session_for(console, session_id),
                          new_link=_new_link(session_id, search))


def _new_link(session_id: str, search: str) -> str:
    query = {key: value for key, value in (("session", session_id), ("q", search)) if value}
    return "/residents/new" + (f"?{urlencode(query)}" if query else "")


def _create_form(console: Console, *, values: dict[str, str], errors: dict[str, str] | None = None,
                 general: list[str] | None = None, duplicates: list[dict[str, Any]] | None = None,
                 session: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    action = "/residents/new"
    if session:
        action += f"?{urlencode({'session': session['id']})}"
    return console.render("resident_new.html", status_code=status_code, title="住民を登録",
                          values=values, errors=errors or {}, general=general or [],
                          duplicates=duplicates or [], session=session, action=action,
                          labels=LABELS)


@page(STAFF)
async def new_resident(console: Console) -> Response:
    session = await _session_for(console, _session_param(console))
    values = {"contactPreference": "PHONE_CALL"}
    search = console.request.query_params.get("q", "").strip()
    if search and not any(ch.isdigit() for ch in search):
        # the name searched for, as a start: family and given name split at the space
        family, _, given = search.replace("\u3000", " ").partition(" ")
        values.update(familyName=family.strip(), givenName=given.strip())
    return _create_form(console, values=values, session=session)


@page(STAFF)
async def create_resident(console: Console) -> Response:
    form = await console.form()
    session = await _session_for(console, _session_param(console))
    typed = typed_values(form)
    variables, problems = resident_input(form, clearing=False)
    if problems:
        return _create_form(console, values=typed, errors=problems, session=session,
                            status_code=400)
    variables["smsConsent"] = form.get("smsConsent") == "on"
    if form.get("allowDuplicate") == "yes":
        variables["allowDuplicate"] = True
    result = await console.mutate("ResidentsCreate", {"input": variables})
    payload = result.data["createResident"]
    created = payload.get("resident")
    if not created:
        errors = payload.get("errors") or []
        duplicates = payload.get("possibleDuplicates") or []
        # The duplicate question is asked by the page's own warning (the API's message
        # speaks to programmers: possibleDuplicates, allowDuplicate).
        others = [e for e in errors if e["code"] != "POSSIBLE_DUPLICATE"]
        by_field, general = user_errors({"errors": others})
        return _create_form(console, values=typed, errors=by_field, general=general,
                            duplicates=duplicates if len(others) < len(errors) else [],
                            session=session, status_code=200 if duplicates else 400)
    if session:
        registered = await console.mutate("ResidentsRegisterCreated", {
            "sessionId": session["id"], "residentId": created["id"]})
        refused = (registered.data.get("register") or {}).get("errors") or []
        if not refused:
            return redirect(f"/sessions/{quote(session['id'], safe='')}")
        # The resident exists now; say why the seat was not taken, on their page.
        return await _resident_page(console, created["id"], notice=NOTICES["created"],
                                    problems=[e["message"] for e in refused])
    return redirect(f"/residents/{quote(created['id'], safe='')}?done=created")


async def _resident_page(console: Console, resident_id: str, *, notice: str = "",
                         problems: list[str] | None = None, status_code: int = 200,
                         schedule_values: dict[str, str] | None = None,
                         schedule_errors: dict[str, str] | None = None) -> Response:
    resident = (await console.query("ResidentsDetail", {"id": resident_id})).get("node")
    if not resident or "familyName" not in resident:
        return not_found_page(console)
    return console.render(
        "resident.html", status_code=status_code,
        title=f"{resident['familyName']} {resident['givenName']} 様", resident=resident,
        notice=notice, problems=problems or [], labels=LABELS,
        schedule_values=schedule_values or {"channel": "PHONE_CALL"},
        schedule_errors=schedule_errors or {})


@page(STAFF)
async def resident(console: Console) -> Response:
    done = console.request.query_params.get("done", "")
    return await _resident_page(console, console.request.path_params["id"],
                                notice=NOTICES.get(done, ""))


async def _change(console: Console, operation: str, variables: dict[str, Any], notice: str
                  ) -> Response:
    """A one-button change on the resident's page: back to the page with what happened."""
    resident_id = console.request.path_params["id"]
    result = await console.mutate(operation, {"residentId": resident_id, **variables})
    payload = next(iter(result.data.values()), None) or {}
    if payload.get("errors"):
        return await _resident_page(console, resident_id, status_code=400,
                                    problems=[e["message"] for e in payload["errors"]])
    return redirect(f"/residents/{quote(resident_id, safe='')}?done={notice}")


async def _toggle(console: Console, operation: str, field: str, on: str, off: str
                  ) -> Response:
    """A yes/no button on the resident's page (`field` = "yes" or "no"): the change, then
    the page with notice `on` or `off`."""
    form = await console.form()
    value = form.get(field) == "yes"
    return await _change(console, operation, {field: value}, on if value else off)


@page(STAFF)
async def set_consent(console: Console) -> Response:
    return await _toggle(console, "ResidentsSetConsent", "consent", "consent",
                         "consent-withdrawn")


@page(STAFF)
async def set_call_consent(console: Console) -> Response:
    return await _toggle(console, "ResidentsSetCallConsent", "consent", "call-consent",
                         "call-consent-withdrawn")


@page(STAFF)
async def set_opt_out(console: Console) -> Response:
    return await _toggle(console, "ResidentsSetOptOut", "optedOut", "opted-out", "opted-in")


@page(STAFF)
async def schedule_follow_up(console: Console) -> Response:
    form = await console.form()
    resident_id = console.request.path_params["id"]
    typed = typed_values(form)
    due_on = unicodedata.normalize("NFKC", typed.get("dueOn", "")).strip()
    try:
        due = date.fromisoformat(due_on).isoformat()
    except ValueError:
        return await _resident_page(console, resident_id, status_code=400, schedule_values=typed,
                                    schedule_errors={"dueOn": "確認する日を選んでください。"})
    result = await console.mutate("FollowUpsSchedule", {"input": {
        "residentId": resident_id, "dueOn": due, "channel": typed.get("channel") or "PHONE_CALL",
        "notes": typed.get("notes") or None}})
    payload = result.data["scheduleFollowUp"]
    if payload.get("errors"):
        by_field, general = user_errors(payload)
        return await _resident_page(console, resident_id, status_code=400, problems=general,
                                    schedule_values=typed, schedule_errors=by_field)
    return redirect(f"/residents/{quote(resident_id, safe='')}?done=scheduled")


async def _edit_form(console: Console, resident: dict[str, Any], *, values: dict[str, str],
                     errors: dict[str, str] | None = None, general: list[str] | None = None,
                     status_code: int = 200) -> Response:
    return console.render("resident_edit.html", status_code=status_code,
                          title=f"{resident['familyName']} {resident['givenName']} 様の情報を変更",
                          resident=resident, values=values, errors=errors or {},
                          general=general or [], labels=LABELS)


async def _resident_for_edit(console: Console) -> dict[str, Any] | None:
    node = (await console.query("ResidentsForEdit",
                                {"id": console.request.path_params["id"]})).get("node")
    return node if node and "familyName" in node else None


@page(STAFF)
async def edit_resident(console: Console) -> Response:
    found = await _resident_for_edit(console)
    if found is None:
        return not_found_page(console)
    return await _edit_form(console, found, values=resident_values(found))


@page(STAFF)
async def update_resident(console: Console) -> Response:
    form = await console.form()
    found = await _resident_for_edit(console)
    if found is None:
        return not_found_page(console)
    typed = typed_values(form)
    variables, problems = resident_input(form, clearing=True)
    if problems:
        return await _edit_form(console, found, values=typed, errors=problems, status_code=400)
    result = await console.mutate("ResidentsUpdate", {"input": {
        "residentId": found["id"], **variables}})
    payload = result.data["updateResident"]
    if payload.get("errors"):
        by_field, general = user_errors(payload)
        return await _edit_form(console, found, values=typed, errors=by_field, general=general,
                                status_code=400)
    return redirect(f"/residents/{quote(found['id'], safe='')}?done=updated")


ROUTES = [
    Route("/residents", residents, methods=["GET"]),
    Route("/residents/new", new_resident, methods=["GET"]),
    Route("/residents/new", create_resident, methods=["POST"]),
    Route("/residents/{id}", resident, methods=["GET"]),
    Route("/residents/{id}/edit", edit_resident, methods=["GET"]),
    Route("/residents/{id}/edit", update_resident, methods=["POST"]),
    Route("/residents/{id}/consent", set_consent, methods=["POST"]),
    Route("/residents/{id}/call-consent", set_call_consent, methods=["POST"]),
    Route("/residents/{id}/opt-out", set_opt_out, methods=["POST"]),
    Route("/residents/{id}/follow-ups", schedule_follow_up, methods=["POST"]),
]
