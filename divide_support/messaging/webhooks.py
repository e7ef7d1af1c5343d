"""Twilio webhooks: delivery status callbacks, replies from residents, and automated calls
(the words when a call is answered, the key pressed, the call's progress).

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
from divide_support.messaging import calls, replies, voice
from divide_support.messaging.calls import KeyAnswer
from divide_support.messaging.dispatcher import apply_call_status, apply_status_callback
from divide_support.messaging.models import Message
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


# --- automated calls -------------------------------------------------------------------------

def _twiml(body: str) -> Response:
    return Response(body, media_type="application/xml")


def _gather_url(message: Message) -> str:
    return (f"{public_base_url()}/webhooks/twilio/voice/gather"
            f"?message_id={message.id}&attempt={message.attempts}")


async def _call(request: Request, *, answering: bool = False
                ) -> tuple[dict[str, str] | None, Message | None]:
    params = await _verified_form(request)
    if params is None:
        return None, None
    sid = params.get("CallSid") or ""
    message = await calls.call_message(
        _int_or_none(request.query_params.get("message_id")),
        _int_or_none(request.query_params.get("attempt")),
        sid if len(sid) <= MAX_SID else None, answering=answering)
    return params, message


def _goodbye() -> Response:
    """A call we cannot place (another call's request, or over): no alarm, no change."""
    return _twiml(voice.goodbye())


async def twilio_voice(request: Request) -> Response:
    """The call was answered: the words for a person (with the keys), or for a machine."""
    params, message = await _call(request, answering=True)
    if params is None:
        return _forbidden()
    if message is None or not message.voice_script:
        return _goodbye()
    answered_by = (params.get("AnsweredBy") or "")[:32] or None
    await calls.answered(message, params.get("CallSid"), answered_by)
    if voice.is_fax(answered_by):
        return _twiml(voice.hang_up())
    if not await calls.still_held(message):  # given up while it rang
        return _twiml(voice.answer(voice.KEY_NOT_ACTIVE))
    if voice.is_machine(answered_by):
        return _twiml(voice.for_machine(message.voice_script))
    return _twiml(voice.for_person(message.voice_script, _gather_url(message)))


KEY_WORDS = {KeyAnswer.CONFIRMED: voice.KEY_CONFIRMED, KeyAnswer.GAVE_UP: voice.KEY_GAVE_UP,
             KeyAnswer.NOT_ACTIVE: voice.KEY_NOT_ACTIVE}


async def twilio_gather(request: Request) -> Response:
    """The key a person pressed: 1 confirm, 2 give up the seat, 9 hear it again."""
    params, message = await _call(request)
    if params is None:
        return _forbidden()
    if message is None or not message.voice_script:
        return _goodbye()
    answer = await calls.pressed(message, params.get("Digits", ""))
    if answer == KeyAnswer.REPEAT:
        return _twiml(voice.for_person(message.voice_script, _gather_url(message)))
    if answer == KeyAnswer.UNKNOWN_KEY:
        return _twiml(voice.answer(voice.KEY_UNKNOWN, ask_again_url=_gather_url(message)))
    return _twiml(voice.answer(KEY_WORDS[answer]))


async def twilio_call_status(request: Request) -> Response:
    """A call's progress: initiated, ringing, in-progress, then completed, busy, no-answer,
    failed or canceled (with its length and who answered)."""
    params = await _verified_form(request)
    if params is None:
        return _forbidden()
    sid = params.get("CallSid")
    status = params.get("CallStatus")
    if sid and status and len(sid) <= MAX_SID and len(status) <= 40:
        applied = await apply_call_status(
            provider_id=sid, call_status=status,
            message_id=_int_or_none(request.query_params.get("message_id")),
            attempt=_int_or_none(request.query_params.get("attempt")),
            call_seconds=_int_or_none(params.get("CallDuration")),
            answered_by=(params.get("AnsweredBy") or "")[:32] or None)
        if not applied:
            log.info("call status for %s (%s) ignored: unknown or not newer", sid, status)
    return Response(status_code=204)
