"""The home page: what the counter needs this morning. Supporters get their duties, planners
their report."""

from __future__ import annotations

from datetime import datetime, timedelta

from starlette.responses import Response
from starlette.routing import Route

from divide_support.core import timeutil
from divide_support.core.actor import Role
from divide_support.web.pages import Console, page, redirect
from divide_support.web.session import set_preference

VENUE_COOKIE = "ds_venue"
# How many people to phone, and understaffed sessions, the home page lists (one more is
# asked for, to know whether to say there are more).
LISTED = 20


def staffing(session: dict) -> str:
    """How the glossary says a session's staffing stands."""
    missing = session["requiredSupporters"] - len(session["assignments"])
    if missing > 0:
        return f"支援員が足りません（あと{missing}人必要）"
    if not session["hasCertifiedLead"]:
        return "認定講師（リード）がいません"
    return "支援員は足りています"


@page()
async def home(console: Console) -> Response:
    if console.role == Role.SUPPORTER:
        return redirect("/duties")
    if console.role == Role.PLANNER:
        return redirect("/planning/participation")
    request = console.request
    venue_id = request.query_params.get("venue", request.cookies.get(VENUE_COOKIE, "")) or None
    today = timeutil.local_date(timeutil.now(), console.timezone)
    start = timeutil.start_of_local_day(today, console.timezone)
    week_end = timeutil.start_of_local_day(today + timedelta(days=7 - today.weekday()),
                                           console.timezone)
    variables = {"venueId": venue_id, "from": start.isoformat(), "to": week_end.isoformat(),
                 "dueBefore": (today + timedelta(days=1)).isoformat(), "listed": LISTED + 1}
    data = await console.query("ConsoleHome", variables)
    if venue_id and venue_id not in {venue["id"] for venue in data["venues"]}:
        # A venue of another municipality, gone or made up (a stale or planted ds_venue) is
        # simply not chosen, and hides nothing: the page shows every venue's sessions and
        # whom to phone, not an empty day under the heading of all venues.
        venue_id = None
        data = await console.query("ConsoleHome", {**variables, "venueId": None})
    tomorrow = timeutil.start_of_local_day(today + timedelta(days=1), console.timezone)
    sessions = [edge["node"] for edge in data["sessions"]["edges"]]
    todays = [s for s in sessions if datetime.fromisoformat(s["startsAt"]) < tomorrow]
    this_week = [s for s in sessions if datetime.fromisoformat(s["startsAt"]) >= tomorrow]
    response = console.render(
        "home.html", title="ホーム", venues=data["venues"], venue_id=venue_id, today=today,
        todays=todays, this_week=this_week, follow_ups=data["followUps"],
        to_phone=data["residentsToPhoneSoon"][:LISTED],
        more_to_phone=len(data["residentsToPhoneSoon"]) > LISTED,
        understaffed=data["understaffedSessions"][:LISTED],
        more_understaffed=len(data["understaffedSessions"]) > LISTED,
        staffing=staffing)
    if "venue" in request.query_params or (request.cookies.get(VENUE_COOKIE) and not venue_id):
        # the choice made, or a cookie naming no venue of ours forgotten (asked once)
        set_preference(response, request, VENUE_COOKIE, venue_id or "", 180 * 86400)
    return response


ROUTES = [Route("/", home, methods=["GET"])]
