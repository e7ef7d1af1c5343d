"""Helpers for the SMS tests: quiet hours under the test's control, a recording backend
(the network edge), and quick looks at the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from factories import TOKYO

from divide_support.accounts.models import Municipality
from divide_support.messaging.backends import Outcome, OutgoingSms, ProviderRecord, SendResult
from divide_support.messaging.models import Message, MessageKind


async def no_quiet_hours(municipality_id: int, per_second: float = 0) -> None:
    """Quiet hours off and no pacing, so a test does not depend on the time it runs."""
    await Municipality.filter(id=municipality_id).update(
        sms_quiet_from_minute=0, sms_quiet_until_minute=0, sms_per_second=per_second)


async def quiet_hours_around_now(municipality_id: int) -> datetime:
    """Quiet hours from an hour ago until two hours from now; returns when they end."""
    local = datetime.now(TOKYO)
    start = (local.hour * 60 + local.minute - 60) % 1440
    end = (local.hour * 60 + local.minute + 120) % 1440
    await Municipality.filter(id=municipality_id).update(
        sms_quiet_from_minute=start, sms_quiet_until_minute=end, sms_per_second=0)
    return local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)


async def outbox(**filters: object) -> dict[MessageKind, Message]:
    rows = await Message.filter(**filters).order_by("id")
    return {MessageKind(m.kind): m for m in rows}


def local(moment: datetime) -> datetime:
    return moment.astimezone(TOKYO)


class RecordingBackend:
    """Stands in for the provider: records what it was asked to send."""

    name = "recording"

    def __init__(self, outcome: Outcome = Outcome.ACCEPTED,
                 records: dict[int, ProviderRecord] | None = None) -> None:
        self.outcome = outcome
        self.sent: list[tuple[OutgoingSms, datetime]] = []
        self.records = records or {}
        self.lookups: list[int] = []

    async def send(self, sms: OutgoingSms) -> SendResult:
        self.sent.append((sms, datetime.now(UTC)))
        if self.outcome == Outcome.ACCEPTED:
            return SendResult(Outcome.ACCEPTED, provider_id=f"SM{uuid.uuid4().hex}",
                              provider_status="queued")
        return SendResult(self.outcome, error_code="X", error_message="test")

    async def lookup(self, sms: OutgoingSms) -> ProviderRecord | None:
        self.lookups.append(sms.message_id)
        return self.records.get(sms.message_id)

    async def close(self) -> None:
        return None

    def ids(self) -> list[int]:
        return [sms.message_id for sms, _ in self.sent]
