"""The staff's view of the outbox: the messages, who to phone instead, what SMS and
automated calls cost."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise import connections
from tortoise.expressions import Q

from divide_support.core.actor import Actor, Role
from divide_support.core.permissions import require_role, require_staff
from divide_support.messaging.channels import route
from divide_support.messaging.eligibility import SKIP_REASON_TEXT
from divide_support.messaging.models import CallOutcome, Channel, Message, MessageKind, MessageStatus
from divide_support.people.models import Resident


def messages_query(
    actor: Actor,
    *,
    status: MessageStatus | None = None,
    kind: MessageKind | None = None,
    resident_id: int | None = None,
    session_id: int | None = None,
):
    require_staff(actor)
    query = Message.filter(municipality_id=actor.municipality_id)
    if status is not None:
        query = query.filter(status=status)
    if kind is not None:
        query = query.filter(kind=kind)
    if resident_id is not None:
        query = query.filter(resident_id=resident_id)
    if session_id is not None:
        query = query.filter(session_id=session_id)
    return query.order_by("-send_after", "-id")


CALL_OUTCOME_TEXT = {
    CallOutcome.CONFIRMED: "電話に出て、参加すると答えました（1）",
    CallOutcome.GAVE_UP_SEAT: "電話に出て、参加を取りやめました（2）",
    CallOutcome.ANSWERED: "電話に出て、最後まで聞きました",
    CallOutcome.MACHINE: "留守番電話に伝言を残しました",
    CallOutcome.NO_ANSWER: "電話に出ませんでした",
    CallOutcome.BUSY: "話し中でした",
    CallOutcome.FAILED: "電話がかかりませんでした",
}

CALL_FAILURE_TEXT = {
    CallOutcome.NO_ANSWER: "自動音声の電話に出ませんでした",
    CallOutcome.BUSY: "自動音声の電話が話し中でした",
    CallOutcome.FAILED: "自動音声の電話がかかりませんでした",
}


async def reasons_to_phone(seats: Sequence[tuple[int, int]], *,
                           about: MessageKind = MessageKind.REMINDER_DAY_BEFORE
                           ) -> dict[int, str]:
    """For each (registration id, resident id) whom a message `about` this (the reminder,
    by default; a change or a cancellation) will not reach, by SMS or by an automated call:
    why (the skip reason, the provider's failure for an SMS about that registration, or the
    last call that found nobody). Staff phone these people instead."""
    if not seats:
        return {}
    residents = {r.id: r for r in await Resident.filter(
        id__in=[resident_id for _, resident_id in seats])}
    failed: dict[int, Message] = {}
    last_call: dict[int, Message] = {}
    for message in await Message.filter(
        Q(status__in=(MessageStatus.FAILED, MessageStatus.UNDELIVERED))
        | Q(channel=Channel.VOICE, call_outcome__isnull=False),
        registration_id__in=[registration_id for registration_id, _ in seats],
    ).order_by("id"):
        if message.channel == Channel.VOICE:
            last_call[message.registration_id] = message  # a later call that got through wins
        else:
            failed[message.registration_id] = message
    reasons: dict[int, str] = {}
    for registration_id, resident_id in seats:
        # The confirmation and the day-before reminder go by call to those who take calls;
        # changes and cancellations by SMS only.
        way = route(residents[resident_id], about)
        outcome = last_call[registration_id].call_outcome if registration_id in last_call \
            else None
        if way.skip_reason is not None:
            reasons[registration_id] = SKIP_REASON_TEXT[way.skip_reason]
        elif way.channel == Channel.VOICE and outcome in CALL_FAILURE_TEXT:
            reasons[registration_id] = CALL_FAILURE_TEXT[CallOutcome(outcome)]
        elif registration_id in failed:
            message = failed[registration_id]
            reasons[registration_id] = f"SMSが届きませんでした（{message.error_code or '不明'}）"
    return reasons


SMS_USAGE_MAX_MONTHS = 60


async def _per_month(actor: Actor, months: int, channel: Channel, counts: str
                     ) -> list[dict[str, object]]:
    """Messages of `channel` handed to the provider, per month (local time), newest first:
    the last `months` months, at least one and at most five years', with `counts` (SQL
    aggregates named as the answer's keys) beside the month."""
    require_role(actor, Role.ADMIN, Role.COORDINATOR, Role.PLANNER)
    months = max(1, min(months, SMS_USAGE_MAX_MONTHS))
    rows = await connections.get("default").execute_query_dict(
        f"""
        SELECT to_char(date_trunc('month', sent_at AT TIME ZONE $2), 'YYYY-MM') AS month,
               {counts}
        FROM message
        WHERE municipality_id = $1 AND sent_at IS NOT NULL AND channel = $4
          AND sent_at >= (date_trunc('month', now() AT TIME ZONE $2)
                          - make_interval(months => $3 - 1)) AT TIME ZONE $2
        GROUP BY 1 ORDER BY 1 DESC
        """,
        [actor.municipality_id, actor.timezone, months, channel.value],
    )
    return [{key: value if key == "month" else int(value) for key, value in row.items()}
            for row in rows]


async def sms_usage(*, actor: Actor, months: int = 12) -> list[dict[str, object]]:
    """SMS and their segments per month, for the budget (billed per segment)."""
    return await _per_month(actor, months, Channel.SMS,
                            "count(*) AS messages, coalesce(sum(segments), 0) AS segments")


async def call_usage(*, actor: Actor, months: int = 12) -> list[dict[str, object]]:
    """Automated calls placed per month, with the minutes Twilio bills (each call's length
    rounded up to a whole minute): the budget's other line."""
    return await _per_month(actor, months, Channel.VOICE, """
        count(*) AS calls,
        count(*) FILTER (WHERE call_outcome IN ('CONFIRMED', 'GAVE_UP_SEAT', 'ANSWERED'))
            AS answered,
        count(*) FILTER (WHERE call_outcome = 'MACHINE') AS machine,
        coalesce(sum(ceil(coalesce(call_seconds, 0) / 60.0)), 0) AS minutes""")
