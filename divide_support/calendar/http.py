"""Calendar endpoints: text/calendar files that calendar apps import or subscribe to.

Token URLs need no login (calendar apps cannot log in); an unknown, malformed or rotated
token gets the same plain 404 as a missing file, so tokens cannot be probed.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from divide_support.accounts import service as accounts
from divide_support.calendar import service as calendar
from divide_support.calendar.service import CalendarFile
from divide_support.core.errors import Forbidden

VENUE_ID = re.compile(r"[1-9][0-9]{0,8}")


def _not_found() -> Response:
    return Response("not found", status_code=404, media_type="text/plain",
                    headers={"Cache-Control": "no-store"})


def _file(found: CalendarFile | None, *, public: bool = False) -> Response:
    if found is None:
        return _not_found()
    # RFC 5545 3.7.2: METHOD in the body and method= in the Content-Type go together.
    content_type = f"text/calendar; charset=utf-8; method={found.method}"
    headers = {
        "Content-Type": content_type,
        "Content-Disposition": f"inline; filename=\"{found.filename}\"; "
                               f"filename*=UTF-8''{quote(found.filename)}",
        # Token URLs are private: no shared caches, no search engines.
        "Cache-Control": "public, max-age=300" if public else "private, no-store",
        "X-Robots-Tag": "noindex",
    }
    return Response(found.body, headers=headers)


def _token(request: Request) -> str:
    return request.path_params["token"]


async def registration_ics(request: Request) -> Response:
    return _file(await calendar.registration_file(_token(request)))


async def assignment_ics(request: Request) -> Response:
    return _file(await calendar.assignment_file(_token(request)))


async def supporter_ics(request: Request) -> Response:
    return _file(await calendar.supporter_feed(_token(request)))


async def venue_ics(request: Request) -> Response:
    raw = request.path_params["venue_id"]
    # ASCII digits only: str.isdigit() also takes "²" and "١", which int() then refuses.
    if not VENUE_ID.fullmatch(raw):
        return _not_found()
    return _file(await calendar.venue_feed(int(raw)), public=True)


async def municipality_ics(request: Request) -> Response:
    actor = await accounts.authenticate_header(request.headers.get("authorization"))
    if actor is None:
        return Response("login required", status_code=401, media_type="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="divide-support"'})
    try:
        found = await calendar.municipality_feed(actor)
    except Forbidden:
        return Response("forbidden", status_code=403, media_type="text/plain")
    return _file(found)
