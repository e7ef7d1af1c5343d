"""/paper/schedule.pdf and /paper/slip.pdf: the printed pages, for the same callers as the
report files (bearer token, or the staff console's session cookie)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from divide_support.accounts import service as accounts
from divide_support.core.actor import Actor
from divide_support.core.errors import DomainError
from divide_support.core.http_answers import (
    domain_error_answer,
    unauthenticated_answer,
)
from divide_support.core.ids import decode_id, to_global_id
from divide_support.core.publicurl import public_base_url
from divide_support.paper import service as paper


def schedule_url(venue_id: int, month: date) -> str:
    query = urlencode({"venueId": to_global_id("Venue", venue_id), "month": f"{month:%Y-%m}"})
    return f"{public_base_url()}/paper/schedule.pdf?{query}"


def slip_url(registration_id: int) -> str:
    query = urlencode({"registrationId": to_global_id("Registration", registration_id)})
    return f"{public_base_url()}/paper/slip.pdf?{query}"



def _pdf(printed: paper.PrintedFile, name_ja: str) -> Response:
    # inline: the browser opens its viewer with a print button; the Japanese name is
    # what is saved.
    return Response(printed.content, media_type="application/pdf", headers={
        "Content-Disposition": f"inline; filename=\"{printed.filename}\"; "
                               f"filename*=UTF-8''{quote(name_ja)}",
        "Cache-Control": "private, no-store"})


async def _answer(request: Request, make: Callable[[Actor], Awaitable[Response]]) -> Response:
    actor = await accounts.authenticate_request(request.headers.get("authorization"),
                                                 request.cookies)
    if actor is None:
        return unauthenticated_answer()
    try:
        return await make(actor)
    except DomainError as error:
        return domain_error_answer(error)


async def schedule_pdf(request: Request) -> Response:
    async def make(actor: Actor) -> Response:
        venue_id = decode_id(request.query_params.get("venueId", ""), "Venue", "venue_id",
                             "会場")
        month = paper.parse_month(request.query_params.get("month", ""))
        printed = await paper.monthly_schedule(actor=actor, venue_id=venue_id, month=month)
        return _pdf(printed, f"予定表-{month:%Y-%m}.pdf")
    return await _answer(request, make)


async def slip_pdf(request: Request) -> Response:
    async def make(actor: Actor) -> Response:
        registration_id = decode_id(request.query_params.get("registrationId", ""),
                                    "Registration", "registration_id", "申込み")
        printed = await paper.confirmation_slip(actor=actor, registration_id=registration_id)
        return _pdf(printed, "申込み確認票.pdf")
    return await _answer(request, make)
