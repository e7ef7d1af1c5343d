"""SMS and call providers behind one small protocol. The dispatcher decides what an outcome means
for the outbox; a backend only reports what happened at the provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from divide_support.core.settings import Settings


class Outcome(StrEnum):
    ACCEPTED = "ACCEPTED"  # the provider took it
    RETRY = "RETRY"  # provably not taken (429, connection refused): safe to try again
    PERMANENT = "PERMANENT"  # refused for good (invalid number, unsubscribed, ...)
    UNKNOWN = "UNKNOWN"  # may have been taken (timeout, 5xx, connection lost mid-request)


@dataclass(frozen=True)
class OutgoingSms:
    message_id: int
    attempt: int
    to: str
    body: str
    claimed_at: datetime
    # Seconds after which the provider should drop it undelivered (the class has started).
    validity_seconds: int | None = None


@dataclass(frozen=True)
class OutgoingCall:
    """An automated call: the provider fetches its words from our voice webhook."""

    message_id: int
    attempt: int
    to: str
    claimed_at: datetime


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_id: str | None = None
    provider_status: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    # Our setup is wrong (credentials, account): not the message's fault, so it waits for
    # the fix instead of using up its retries.
    configuration_error: bool = False


@dataclass(frozen=True)
class ProviderRecord:
    provider_id: str
    provider_status: str
    error_code: str | None = None


class SmsBackend(Protocol):
    name: str

    async def send(self, sms: OutgoingSms) -> SendResult: ...

    async def lookup(self, sms: OutgoingSms) -> ProviderRecord | None:
        """The provider's record of this message, or None when it provably has none."""
        ...

    async def call(self, call: OutgoingCall) -> SendResult: ...

    async def lookup_call(self, call: OutgoingCall) -> ProviderRecord | None:
        """The provider's record of this call, or None when it provably has none."""
        ...

    async def close(self) -> None: ...


def backend_from_settings(settings: Settings) -> SmsBackend:
    if settings.sms_backend == "twilio":
        from divide_support.messaging.backends.twilio import TwilioBackend

        return TwilioBackend.from_settings(settings)
    from divide_support.messaging.backends.console import ConsoleBackend

    return ConsoleBackend()
