"""The staff's view of the outbox: the messages, who to phone instead, what SMS costs."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise import connections

from divide_support.core.actor import Actor, Role
from divide_support.core.permissions import require_role, require_staff
from divide_support.messaging.eligibility import SKIP_REASON_TEXT, skip_reason_for
from divide_support.messaging.models import Message, MessageKind, MessageStatus
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


async def reasons_to_phone(seats: Sequence[tuple[int, int]]) -> dict[int, str]:
    """For each (registration id, resident id) whose resident SMS will not reach: why (the
    skip reason, or the provider's failure for a message about that registration). Staff
    phone these people instead."""
    if not seats:
        return {}
    residents = {r.id: r for r in await Resident.filter(
        id__in=[resident_id for _, resident_id in seats])}
    failed = {}
    for message in await Message.filter(
        registration_id__in=[registration_id for registration_id, _ in seats],
        status__in=(MessageStatus.FAILED, MessageStatus.UNDELIVERED),
    ).order_by("id"):
        failed[message.registration_id] = message
    reasons: dict[int, str] = {}
    for registration_id, resident_id in seats:
        reason = skip_reason_for(residents[resident_id])
        if reason is not None:
            reasons[registration_id] = SKIP_REASON_TEXT[reason]
        elif registration_id in failed:
            message = failed[registration_id]
            reasons[registration_id] = f"SMSが届きませんでした（{message.error_code or '不明'}）"
    return reasons


SMS_USAGE_MAX_MONTHS = 60


async def sms_usage(*, actor: Actor, months: int = 12) -> list[dict[str, object]]:
    """Messages and segments handed to the provider per month (local time), newest first:
    the last `months` months, at least one and at most five years'."""
    require_role(actor, Role.ADMIN, Role.COORDINATOR, Role.PLANNER)
    months = max(1, min(months, SMS_USAGE_MAX_MONTHS))
    rows = await connections.get("default").execute_query_dict(
        """
        SELECT to_char(date_trunc('month', sent_at AT TIME ZONE $2), 'YYYY-MM') AS month,
               count(*) AS messages, coalesce(sum(segments), 0) AS segments
        FROM message
        WHERE municipality_id = $1 AND sent_at IS NOT NULL
          AND sent_at >= (date_trunc('month', now() AT TIME ZONE $2)
                          - make_interval(months => $3 - 1)) AT TIME ZONE $2
        GROUP BY 1 ORDER BY 1 DESC
        """,
        [actor.municipality_id, actor.timezone, months],
    )
    return [{"month": r["month"], "messages": int(r["messages"]),
             "segments": int(r["segments"])} for r in rows]
