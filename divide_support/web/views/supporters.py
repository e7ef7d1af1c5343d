"""Supporters (デジタル活用支援員) for the counter: the roster with skills and certification,
adding and editing them (createSupporter, updateSupporter), and one supporter's duties."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

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

# The API's SupporterAffiliation values, in the words staff use.
AFFILIATIONS = [("CARRIER_SHOP", "携帯ショップ・通信事業者"), ("NPO", "NPO・団体"),
                ("VOLUNTEER", "ボランティア"), ("CITY_STAFF", "市の職員"), ("STUDENT", "学生"),
                ("OTHER", "その他")]
ASSIGNMENT_ROLES = {"LEAD": "講師（リード）", "ASSISTANT": "補助"}
# Staff type skills as they speak: 「LINE、マイナンバーカード」 or one a line.
_SKILL_SEPARATORS = re.compile(r"[,、，\n]+")
_TEXT_FIELDS = ("displayName", "kana", "organisation", "phone", "email", "skills")


def _globals(**values: Any) -> dict[str, Any]:
    return {"affiliations": AFFILIATIONS, "affiliation_names": dict(AFFILIATIONS),
            "assignment_roles": ASSIGNMENT_ROLES, **values}


def _typed(form: FormData) -> dict[str, str]:
    """What was typed, to show again after a refusal."""
    values = {name: str(form.get(name, "")) for name in (*_TEXT_FIELDS, "affiliation")}
    values["certified"] = "on" if form.get("certified") else ""
    values["active"] = "on" if form.get("active") else ""
    return values


def _input(values: dict[str, str]) -> dict[str, Any]:
    """The form as the API's input: empty optional fields are null (cleared)."""
    return {
        "displayName": values["displayName"],
        "kana": values["kana"] or None,
        "affiliation": values["affiliation"] or None,
        "organisation": values["organisation"] or None,
        "phone": values["phone"] or None,
        "email": values["email"] or None,
        "skills": [s.strip() for s in _SKILL_SEPARATORS.split(values["skills"]) if s.strip()],
        "certified": bool(values["certified"]),
    }


def _values_of(supporter: dict[str, Any]) -> dict[str, str]:
    return {"displayName": supporter["displayName"], "kana": supporter.get("kana") or "",
            "affiliation": supporter["affiliation"],
            "organisation": supporter.get("organisation") or "",
            "phone": supporter.get("phone") or "", "email": "",
            "skills": "、".join(supporter["skills"]),
            "certified": "on" if supporter["certified"] else "",
            "active": "on" if supporter["active"] else ""}


async def _supporter(console: Console, operation: str, **variables: Any) -> dict | None:
    node = (await console.query(operation, {"id": console.request.path_params["id"],
                                            **variables})).get("node")
    return node if node and node.get("__typename") == "Supporter" else None


@page(STAFF)
async def supporter_list(console: Console) -> Response:
    # Only the page's own choices come from the URL, never words to show: a link from
    # anywhere must not make this page say what its author wants.
    show = "all" if console.request.query_params.get("show") == "all" else "active"
    after = console.request.query_params.get("after") or None
    data = await console.query("ConsoleSupporters", {
        "active": None if show == "all" else True, "after": after})
    return console.render(
        "supporters.html", title="支援員", supporters=data["supporters"], show=show,
        **_globals())


@page(STAFF)
async def supporter_new(console: Console) -> Response:
    return console.render("supporter_form.html", title="支援員を登録", supporter=None,
                          values={"affiliation": "VOLUNTEER"}, errors={}, general=[],
                          **_globals())


@page(STAFF)
async def supporter_create(console: Console) -> Response:
    form = await console.form()
    values = _typed(form)
    result = await console.mutate("ConsoleCreateSupporter", {"input": _input(values)})
    payload = result.data.get("createSupporter") or {}
    if payload.get("supporter"):
        return redirect(f"/supporters/{payload['supporter']['id']}?saved=1")
    errors, general = user_errors(payload)
    return console.render("supporter_form.html", status_code=400, title="支援員を登録",
                          supporter=None, values=values, errors=errors, general=general,
                          **_globals())


@page(STAFF)
async def supporter_detail(console: Console) -> Response:
    since = timeutil.now() - timedelta(days=90)
    supporter = await _supporter(console, "ConsoleSupporter", **{"from": since.isoformat()})
    if supporter is None:
        return not_found_page(console)
    now = timeutil.now()
    upcoming, past = [], []
    for duty in supporter["assignments"]:
        ends = datetime.fromisoformat(duty["session"]["endsAt"])
        (upcoming if ends > now else past).append(duty)
    saved = console.request.query_params.get("saved")
    return console.render(
        "supporter.html", title=supporter["displayName"], supporter=supporter,
        upcoming=upcoming, past=list(reversed(past)),
        notice="保存しました。" if saved else "", **_globals())


@page(STAFF)
async def supporter_edit(console: Console) -> Response:
    supporter = await _supporter(console, "ConsoleSupporterForEdit")
    if supporter is None:
        return not_found_page(console)
    return console.render("supporter_form.html", title="支援員の情報を変更",
                          supporter=supporter, values=_values_of(supporter), errors={},
                          general=[], **_globals())


@page(STAFF)
async def supporter_update(console: Console) -> Response:
    form = await console.form()
    values = _typed(form)
    supporter_id = console.request.path_params["id"]
    fields = _input(values)
    if not values["email"]:  # the API does not show the e-mail: empty means unchanged
        fields.pop("email")
    result = await console.mutate("ConsoleUpdateSupporter", {"input": {
        "supporterId": supporter_id, **fields, "active": bool(values["active"])}})
    payload = result.data.get("updateSupporter") or {}
    if payload.get("supporter"):
        return redirect(f"/supporters/{supporter_id}?saved=1")
    errors, general = user_errors(payload)
    if "supporterId" in errors:  # another municipality's, or gone: nothing to edit
        return not_found_page(console)
    return console.render("supporter_form.html", status_code=400, title="支援員の情報を変更",
                          supporter={"id": supporter_id, "displayName": values["displayName"]},
                          values=values, errors=errors, general=general, **_globals())


ROUTES = [
    Route("/supporters", supporter_list, methods=["GET"]),
    Route("/supporters/new", supporter_new, methods=["GET"]),
    Route("/supporters/new", supporter_create, methods=["POST"]),
    Route("/supporters/{id}", supporter_detail, methods=["GET"]),
    Route("/supporters/{id}/edit", supporter_edit, methods=["GET"]),
    Route("/supporters/{id}/edit", supporter_update, methods=["POST"]),
]
