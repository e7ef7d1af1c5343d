"""Twilio webhooks: delivery status callbacks and replies from residents.

Both verify X-Twilio-Signature against the public URL (PUBLIC_BASE_URL, so it holds
behind a proxy; core/publicurl.py) and the auth token; a missing or wrong signature gets 403 and changes
nothing.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from divide_support.core.errors import DomainError
from divide_support.core.publicurl import public_base_url
from divide_support.core.settings import get_settings
from divide_support.core.text import replace_refused
from divide_support.messaging import replies
from divide_support.messaging.dispatcher import apply_status_callback
from divide_support.people import phones

log = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 64_000
_SMALL_INT = re.compile(r"[0-9]{1,9}")
MAX_SID = 64  # the column; Twilio's sids have 34 characters


def public_url(request: Request) -> str:
    """The URL Twilio signed: the public base URL plus the path and query we received."""
    url = public_base_url() + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


async def _verified_form(request: Request) -> dict[str, str] | None:
    token = get_settings().twilio_auth_token
    signature = request.headers.get("x-twilio-signature")
    if not token or not signature:
        return None
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        return None
    # Blank values kept: Twilio signs empty fields such as FromZip= too.
    params = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    if not RequestValidator(token).validate(public_url(request), params, signature):
        return None
    # Signed, but what a phone sent: a NUL or a stray control character would fail in the
    # database. Replaced (never dropped), after the signature was checked over the original.
    return {key: replace_refused(value) for key, value in params.items()}


def _forbidden() -> Response:
    return Response("forbidden", status_code=403, media_type="text/plain")


def _int_or_none(value: str | None) -> int | None:
    # ASCII digits that fit the column: int() alone takes "٣" and 30-digit numbers.
    return int(value) if value is not None and _SMALL_INT.fullmatch(value) else None


async def twilio_status(request: Request) -> Response:
    params = await _verified_form(request)
    if params is None:
        return _forbidden()
    sid = params.get("MessageSid") or params.get("SmsSid")
    status = params.get("MessageStatus") or params.get("SmsStatus")
    if sid and status and len(sid) <= MAX_SID and len(status) <= 40:
        applied = await apply_status_callback(
            provider_id=sid, provider_status=status,
            error_code=(params.get("ErrorCode") or "")[:16] or None,  # Twilio's have 5 digits
            message_id=_int_or_none(request.query_params.get("message_id")),
            attempt=_int_or_none(request.query_params.get("attempt")))
        if not applied:
            log.info("status callback for %s (%s) ignored: unknown or not newer", sid, status)
    return Response(status_code=204)


async def twilio_inbound(request: Request) -> Response:
    params = await _verified_form(request)
    if params is None:
        return _forbidden()
    sid = params.get("MessageSid") or params.get("SmsSid")
    raw_from = params.get("From", "")
    try:
        from_number = phones.parse_any(raw_from, "From")
    except DomainError:
        from_number = raw_from[:20]
    twiml = MessagingResponse()
    if sid:
        inbound, municipality = await replies.receive_reply(
            provider_id=sid, from_number=from_number, body=params.get("Body", ""),
            municipality_code=request.query_params.get("municipality"))
        answer = replies.reply_text(inbound.action, municipality)
        if answer:
            twiml.message(answer)
    return Response(str(twiml), media_type="application/xml")
