"""A supporter's own upcoming duties (SUPPORTER): who comes, on which device, for which
course; and the link that puts every duty into their phone's calendar."""

from __future__ import annotations

from datetime import datetime

from starlette.responses import Response
from starlette.routing import Route

from divide_support.core import timeutil
from divide_support.web.pages import SUPPORTER, Console, page
from divide_support.web.views.supporters import ASSIGNMENT_ROLES

DEVICES = {"IPHONE": "iPhone", "ANDROID": "Android（アンドロイド）",
           "FEATURE_PHONE": "携帯電話（ガラケー）", "TABLET": "タブレット",
           "NONE": "まだ持っていません", "OTHER": "その他"}
LEVELS = {"BASIC": "基本", "APPLIED": "応用"}


def webcal(url: str | None) -> str:
    """The webcal:// form of a feed URL: phones open it as a calendar to subscribe to."""
    if not url:
        return ""
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            return "webcal://" + url[len(scheme):]
    return url


def attendees(session: dict) -> list[dict]:
    """Those holding a seat, then the waitlist in the API's order (registrations_in_order);
    cancelled seats are nobody's duty."""
    return [edge["node"] for part in ("confirmed", "waitlist") for edge in session[part]["edges"]]


@page(SUPPORTER)
async def my_duties(console: Console) -> Response:
    now = timeutil.now()
    data = await console.query("ConsoleMyDuties", {"from": now.replace(
        hour=0, minute=0, second=0, microsecond=0).isoformat()})
    supporter = (data.get("me") or {}).get("supporter")
    duties = [] if supporter is None else [
        d for d in supporter["assignments"]
        if datetime.fromisoformat(d["session"]["endsAt"]) > now]
    return console.render(
        "duties.html", title="担当の予定", supporter=supporter, duties=duties,
        feed_url=supporter["calendarFeedUrl"] if supporter else "",
        webcal_url=webcal(supporter["calendarFeedUrl"]) if supporter else "",
        attendees=attendees, devices=DEVICES, levels=LEVELS, assignment_roles=ASSIGNMENT_ROLES)


ROUTES = [Route("/duties", my_duties, methods=["GET"])]
