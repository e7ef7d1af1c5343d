"""Follow-ups (フォローアップ（その後の確認）): who is to be phoned today, and recording how it
went with the next step. The outcome and the next check are one API call (completeFollowUp
with nextDueOn/nextChannel), so a refused next step records no outcome either."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any
from urllib.parse import quote

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
from divide_support.web.views.people import LABELS, typed_values

NEXT_DATE_MESSAGE = "次に確認する日は 2024-12-03 のように年-月-日で選んでください。"


@page(STAFF)
async def follow_ups(console: Console) -> Response:
    data = await console.query("FollowUpsOpen")
    today = timeutil.today(console.timezone).isoformat()
    # the API lists them soonest due first; the page splits them at today
    nodes = [edge["node"] for edge in data["followUps"]["edges"]]
    return console.render("followups.html", title="フォローアップ（その後の確認）",
                          due=[f for f in nodes if f["dueOn"] <= today],
                          later=[f for f in nodes if f["dueOn"] > today],
                          total=data["followUps"]["totalCount"], labels=LABELS,
                          notice="結果を記録しました。" if console.request.query_params.get(
                              "done") == "completed" else "")


async def _detail(console: Console) -> dict[str, Any] | None:
    node = (await console.query("FollowUpsDetail",
                                {"id": console.request.path_params["id"]})).get("node")
    return node if node and "dueOn" in node else None


def _page(console: Console, follow_up: dict[str, Any], *, values: dict[str, str],
          errors: dict[str, str] | None = None, general: list[str] | None = None,
          notice: str = "", status_code: int = 200) -> Response:
    return console.render("followup.html", status_code=status_code,
                          title="フォローアップ（その後の確認）", follow_up=follow_up,
                          values=values, errors=errors or {}, general=general or [],
                          notice=notice, labels=LABELS)


@page(STAFF)
async def follow_up(console: Console) -> Response:
    found = await _detail(console)
    if found is None:
        return not_found_page(console)
    done = console.request.query_params.get("done") == "completed"
    return _page(console, found, values={"nextChannel": found["channel"]},
                 notice="結果を記録しました。" if done else "")


@page(STAFF)
async def complete(console: Console) -> Response:
    form = await console.form()
    found = await _detail(console)
    if found is None:
        return not_found_page(console)
    typed = typed_values(form)
    if not typed.get("outcome"):
        return _page(console, found, values=typed, status_code=400,
                     errors={"outcome": "結果を選んでください。"})
    variables: dict[str, Any] = {"followUpId": found["id"], "outcome": typed["outcome"],
                                 "notes": typed.get("notes") or None}
    due_on = unicodedata.normalize("NFKC", typed.get("nextDueOn", "")).strip()
    if due_on:  # a date chosen: the next check is planned with this outcome
        try:
            variables["nextDueOn"] = date.fromisoformat(due_on).isoformat()
        except ValueError:
            return _page(console, found, values=typed, status_code=400,
                         errors={"nextDueOn": NEXT_DATE_MESSAGE})
        variables["nextChannel"] = typed.get("nextChannel") or None
    result = await console.mutate("FollowUpsComplete", {"input": variables})
    payload = result.data["completeFollowUp"]
    if payload.get("errors"):
        by_field, general = user_errors(payload)
        return _page(console, found, values=typed, errors=by_field, general=general,
                     status_code=400)
    return redirect(f"/follow-ups/{quote(found['id'], safe='')}?done=completed")


ROUTES = [
    Route("/follow-ups", follow_ups, methods=["GET"]),
    Route("/follow-ups/{id}", follow_up, methods=["GET"]),
    Route("/follow-ups/{id}", complete, methods=["POST"]),
]
