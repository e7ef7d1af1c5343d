"""Development backend: writes each message to the log and reports it sent."""

from __future__ import annotations

import logging
import uuid

from divide_support.messaging.backends import Outcome, OutgoingSms, ProviderRecord, SendResult

log = logging.getLogger("divide_support.sms")


class ConsoleBackend:
    name = "console"

    async def send(self, sms: OutgoingSms) -> SendResult:
        # The number is masked even here: logs travel further than the database.
        log.info("SMS to %s…%s (message %s): %s", sms.to[:5], sms.to[-2:], sms.message_id,
                 sms.body)
        return SendResult(Outcome.ACCEPTED, provider_id=f"console-{uuid.uuid4().hex}",
                          provider_status="sent")

    async def lookup(self, sms: OutgoingSms) -> ProviderRecord | None:
        return None  # nothing left the machine

    async def close(self) -> None:
        return None
