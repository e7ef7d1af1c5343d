"""Venues (会場) for the counter: the list and editing one (updateVenue)."""

from __future__ import annotations

from datetime import timedelta
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

# The API's VenueKind values, in the words staff use.
VENUE_KINDS = [("COMMUNITY_CENTRE", "公民館・コミュニティセンター"),
               ("DIGITAL_STATION", "デジタルステーション"), ("LIBRARY", "図書館"),
               ("CITY_HALL", "市役所"), ("OTHER", "その他")]
_TEXT_FIELDS = ("name", "kind", "address", "capacity", "loanerDevices", "accessibilityNotes")


def _number(text: str) -> int | str | None:
    """A typed number as the API's Int; what is not a number goes as typed (the page shows
    the refusal at the field)."""
    text = text.strip().translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if not text:
        return None
    return int(text) if text.isdigit() else text


def _typed(form: FormData) -> dict[str, str]:
    values = {name: str(form.get(name, "")) for name in _TEXT_FIELDS}
    values["hasWifi"] = "on" if form.get("hasWifi") else ""
    return values


def _values_of(venue: dict[str, Any]) -> dict[str, str]:
    values = {name: "" if venue.get(name) is None else str(venue[name]) for name in _TEXT_FIELDS}
    values["hasWifi"] = "on" if venue["hasWifi"] else ""
    return values


def _render_form(console: Console, venue_id: str, values: dict[str, str],
                 errors: dict[str, str], general: list[str], status_code: int = 200
                 ) -> Response:
    return console.render("venue_form.html", status_code=status_code, title="会場の情報を変更",
                          venue_id=venue_id, values=values, errors=errors, general=general,
                          kinds=VENUE_KINDS)


@page(STAFF)
async def venue_list(console: Console) -> Response:
    this_month = timeutil.today(console.timezone).replace(day=1)
    next_month = (this_month + timedelta(days=32)).replace(day=1)
    venues = (await console.query("ConsoleVenues", {"thisMonth": f"{this_month:%Y-%m}",
                                                    "nextMonth": f"{next_month:%Y-%m}"}))["venues"]
    saved = console.request.query_params.get("saved")
    return console.render("venues.html", title="会場", venues=venues, kinds=dict(VENUE_KINDS),
                          this_month=this_month, next_month=next_month,
                          notice="会場の情報を保存しました。" if saved else "")


@page(STAFF)
async def venue_edit(console: Console) -> Response:
    node = (await console.query("ConsoleVenue", {"id": console.request.path_params["id"]}
                                )).get("node")
    if not node or node.get("__typename") != "Venue":
        return not_found_page(console)
    return _render_form(console, node["id"], _values_of(node), {}, [])


@page(STAFF)
async def venue_update(console: Console) -> Response:
    form = await console.form()
    values = _typed(form)
    venue_id = console.request.path_params["id"]
    numbers = {name: _number(values[name]) for name in ("capacity", "loanerDevices")}
    wrong = {name: "半角の数字で入力してください。" for name, value in numbers.items()
             if isinstance(value, str)}
    if wrong:  # the API's Int cannot carry it; say so at the field, as the API would
        return _render_form(console, venue_id, values, wrong, [], 400)
    result = await console.mutate("ConsoleUpdateVenue", {"input": {
        "venueId": venue_id, "name": values["name"], "kind": values["kind"] or None,
        "address": values["address"] or None, "capacity": numbers["capacity"],
        "hasWifi": bool(values["hasWifi"]), "loanerDevices": numbers["loanerDevices"] or 0,
        "accessibilityNotes": values["accessibilityNotes"] or None}})
    payload = result.data.get("updateVenue") or {}
    if payload.get("venue"):
        return redirect("/venues?saved=1")
    errors, general = user_errors(payload)
    if "venueId" in errors:
        return not_found_page(console)
    return _render_form(console, venue_id, values, errors, general, 400)


ROUTES = [
    Route("/venues", venue_list, methods=["GET"]),
    Route("/venues/{id}/edit", venue_edit, methods=["GET"]),
    Route("/venues/{id}/edit", venue_update, methods=["POST"]),
]
