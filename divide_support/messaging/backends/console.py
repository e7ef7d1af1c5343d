"""Development backend: logs that each message was sent and reports it sent.

Only the message id, its segment count and the last digits of the number reach the log,
never the body (it names the resident and the venue): developers read bodies through the
API (`messages { body to }`, staff)."""

from __future__ import annotations

import logging
import uuid

from divide_support.messaging.backends import (
    Outcome,
    OutgoingCall,
    OutgoingSms,
    ProviderRecord,
    SendResult,
)
from divide_support.messaging.segments import count_segments

log = logging.getLogger("divide_support.sms")


def masked_number(number: str) -> str:
    """`…78`: enough to tell two test phones apart, too little to call anyone."""
    return "…" + number[-2:] if len(number) > 4 else "…"


class ConsoleBackend:
    name = "console"

    async def send(self, sms: OutgoingSms) -> SendResult:
        log.info("SMS sent (console backend, nothing left the machine): message %s, "
                 "%d segment(s), to %s", sms.message_id, count_segments(sms.body).segments,
                 masked_number(sms.to))
        return SendResult(Outcome.ACCEPTED, provider_id=f"console-{uuid.uuid4().hex}",
                          provider_status="sent")

    async def lookup(self, sms: OutgoingSms) -> ProviderRecord | None:
        return None  # nothing left the machine

    async def call(self, call: OutgoingCall) -> SendResult:
        log.info("Call placed (console backend, nothing left the machine): message %s, to %s",
                 call.message_id, masked_number(call.to))
        return SendResult(Outcome.ACCEPTED, provider_id=f"console-{uuid.uuid4().hex}",
                          provider_status="completed")

    async def lookup_call(self, call: OutgoingCall) -> ProviderRecord | None:
        return None

    async def close(self) -> None:
        return None
