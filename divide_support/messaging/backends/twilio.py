"""Twilio Programmable Messaging through the official package's async client.

- The client's own retries stay off: its retry re-POSTs after a 5xx, and a 5xx may mean
  Twilio accepted the message, so a retry could send it twice. The dispatcher decides.
- The async client ignores its timeout argument; the dispatcher bounds every call with
  asyncio.timeout.
- TWILIO_API_BASE points the client at another base URL (a local fake server in tests).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from divide_support.core.publicurl import public_base_url
from divide_support.core.settings import Settings
from divide_support.messaging.backends import (
    Outcome,
    OutgoingCall,
    OutgoingSms,
    ProviderRecord,
    SendResult,
)

log = logging.getLogger(__name__)

# Twilio keeps a message queued at most this long (its own upper bound).
MAX_VALIDITY_SECONDS = 36_000
CALL_RING_SECONDS = 30  # then no-answer
CALL_TIME_LIMIT_SECONDS = 600  # the message twice, a key and a few "again": ten minutes at most


def _status_callback(base_url: str, sms: OutgoingSms) -> str:
    # Our own id (and the attempt) in the URL: the callback can settle a message whose
    # send ended ambiguously, before we ever learnt Twilio's sid.
    return (f"{base_url.rstrip('/')}/webhooks/twilio/status"
            f"?message_id={sms.message_id}&attempt={sms.attempt}")


def _refused(error: Exception) -> SendResult:
    """What a failed request to Twilio means for the outbox (a message's or a call's)."""
    if isinstance(error, TwilioRestException):
        code = str(error.code) if error.code is not None else None
        if error.status == 429:
            # Twilio never processes a request it answered with 429.
            return SendResult(Outcome.RETRY, error_code=code or "429",
                              error_message="rate limited by the provider")
        if error.status in (401, 403, 404):
            # Wrong credentials or account SID: Twilio refused the request unprocessed.
            return SendResult(Outcome.RETRY, error_code=code or str(error.status),
                              error_message=f"Twilio rejected our credentials ({error.status})",
                              configuration_error=True)
        if error.status >= 500:
            return SendResult(Outcome.UNKNOWN, error_code=code or str(error.status),
                              error_message=f"provider answered {error.status}")
        return SendResult(Outcome.PERMANENT, error_code=code or str(error.status),
                          error_message=str(error.msg)[:500])
    if isinstance(error, aiohttp.ClientConnectorError):
        # The connection never opened, so the request never reached Twilio.
        return SendResult(Outcome.RETRY, error_code="CONNECT",
                          error_message=f"connection failed: {error.os_error}")
    return SendResult(Outcome.UNKNOWN, error_code="NETWORK",
                      error_message=f"connection lost: {type(error).__name__}")


def _voice_urls(base_url: str, call: OutgoingCall) -> tuple[str, str]:
    """Where Twilio fetches the call's words, and where it reports the call's progress."""
    base = base_url.rstrip("/")
    ours = f"message_id={call.message_id}&attempt={call.attempt}"
    return f"{base}/webhooks/twilio/voice?{ours}", f"{base}/webhooks/twilio/call-status?{ours}"


class TwilioBackend:
    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        voice_from: str | None = None,
        api_base: str | None = None,
        public_base_url: str,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required")
        self._http = AsyncTwilioHttpClient(max_retries=None)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        if api_base:
            self._client.api.base_url = api_base.rstrip("/")
        self._from = from_number
        self._service = messaging_service_sid
        self._voice_from = voice_from or from_number
        self._public_base_url = public_base_url

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioBackend:
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise ValueError("SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            from_number=settings.twilio_from,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            voice_from=settings.twilio_voice_from,
            api_base=settings.twilio_api_base,
            public_base_url=public_base_url(settings),
        )

    async def send(self, sms: OutgoingSms) -> SendResult:
        params: dict[str, object] = {
            "to": sms.to,
            "body": sms.body,
            "status_callback": _status_callback(self._public_base_url, sms),
        }
        if self._service:
            params["messaging_service_sid"] = self._service
        else:
            params["from_"] = self._from
        if sms.validity_seconds is not None:
            params["validity_period"] = max(1, min(MAX_VALIDITY_SECONDS, sms.validity_seconds))
        try:
            message = await self._client.messages.create_async(**params)
        except (TwilioRestException, aiohttp.ClientError, OSError) as error:
            return _refused(error)
        status = str(message.status or "queued")
        if status in ("failed", "undelivered"):
            code = str(message.error_code) if message.error_code else None
            return SendResult(Outcome.PERMANENT, provider_id=message.sid, provider_status=status,
                              error_code=code, error_message=message.error_message)
        return SendResult(Outcome.ACCEPTED, provider_id=message.sid, provider_status=status)

    async def lookup(self, sms: OutgoingSms) -> ProviderRecord | None:
        """Messages to that number created since the claim, matched by body."""
        since = sms.claimed_at - timedelta(minutes=1)
        records = await self._client.messages.list_async(to=sms.to, limit=50)
        for record in records:
            created = record.date_created
            if created is not None and created < since:
                continue
            if (record.body or "") == sms.body:
                return ProviderRecord(provider_id=record.sid,
                                      provider_status=str(record.status or "queued"),
                                      error_code=str(record.error_code) if record.error_code
                                      else None)
        return None

    async def call(self, call: OutgoingCall) -> SendResult:
        """Place an automated call. Twilio waits for a machine's greeting to end before it
        fetches the words (DetectMessageEnd), so a machine gets the whole message."""
        if not self._voice_from:
            return SendResult(Outcome.RETRY, error_code="NO_VOICE_FROM",
                              error_message="TWILIO_VOICE_FROM (or TWILIO_FROM) is not set",
                              configuration_error=True)
        words, progress = _voice_urls(self._public_base_url, call)
        try:
            record = await self._client.calls.create_async(
                to=call.to, from_=self._voice_from, url=words, method="POST",
                status_callback=progress, status_callback_method="POST",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                machine_detection="DetectMessageEnd", timeout=CALL_RING_SECONDS,
                time_limit=CALL_TIME_LIMIT_SECONDS)
        except (TwilioRestException, aiohttp.ClientError, OSError) as error:
            return _refused(error)
        return SendResult(Outcome.ACCEPTED, provider_id=record.sid,
                          provider_status=str(record.status or "queued"))

    async def lookup_call(self, call: OutgoingCall) -> ProviderRecord | None:
        """The call to that number created since the claim. A call has no body to match, so
        two calls there (a shared home phone) are ambiguous: LookupError, and the message
        waits for its status callback, which names it."""
        since = call.claimed_at - timedelta(minutes=1)
        found = [record for record in await self._client.calls.list_async(to=call.to, limit=20)
                 if record.date_created is None or record.date_created >= since]
        if len(found) > 1:
            raise LookupError("several calls to that number since the claim")
        if not found:
            return None
        return ProviderRecord(provider_id=found[0].sid,
                              provider_status=str(found[0].status or "queued"))

    async def close(self) -> None:
        await self._http.close()
