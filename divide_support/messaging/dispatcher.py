"""The dispatcher: claims due messages, sends them, settles what happened.

A message moves PENDING -> SENDING (claimed, with a lease) -> SENT -> DELIVERED /
UNDELIVERED / FAILED, or SKIPPED (not eligible, too late) or UNKNOWN (the provider may
have it). Guarantees:

- Exactly one worker holds a claim (SELECT ... FOR UPDATE SKIP LOCKED), whatever the
  number of worker processes.
- `send_started_at` is written (and the lease renewed) just before the request leaves. A
  claim whose lease ran out without it provably never reached the provider: PENDING again.
  With it, the provider may have the message: UNKNOWN, never resent blindly. UNKNOWN is
  settled by the signed status callback or by looking the message up at the provider;
  only when the provider has no record is it sent again.
- Retries only for what the provider provably did not take (429, refused connection),
  with exponential backoff and jitter, up to a limit; then FAILED.
- Status only moves forward (queued < sending < sent < delivered/undelivered/failed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise import connections
from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.core import timeutil
from divide_support.core.logging import log_scope
from divide_support.core.metrics import Metric, OutboxState, outbox_families
from divide_support.core.settings import Settings, get_settings
from divide_support.messaging import channels, consent, occasions, timing
from divide_support.messaging.backends import (
    Outcome,
    OutgoingCall,
    OutgoingSms,
    ProviderRecord,
    SendResult,
    SmsBackend,
)
from divide_support.messaging.models import (
    CallOutcome,
    Channel,
    Message,
    MessageKind,
    MessageStatus,
    SkipReason,
)
from divide_support.messaging.voice import is_fax, is_machine
from divide_support.people.models import Resident

log = logging.getLogger(__name__)

UNSUBSCRIBED = "21610"
CONFIGURATION_RETRY = timedelta(minutes=5)
# Twilio's message states in the order they happen; callbacks may arrive out of order.
PROVIDER_RANK = {"accepted": 1, "scheduled": 1, "queued": 1, "sending": 2, "sent": 3,
                 "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "read": 5}
STATUS_FOR_PROVIDER = {
    "accepted": MessageStatus.SENT, "scheduled": MessageStatus.SENT,
    "queued": MessageStatus.SENT, "sending": MessageStatus.SENT, "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED, "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED, "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
# A call's states (Twilio's CallStatus), and what each means for the outbox and for staff.
CALL_RANK = {"queued": 1, "initiated": 2, "ringing": 2, "in-progress": 3, "completed": 4,
             "busy": 4, "no-answer": 4, "failed": 4, "canceled": 4}
STATUS_FOR_CALL = {
    "queued": MessageStatus.SENT, "initiated": MessageStatus.SENT,
    "ringing": MessageStatus.SENT, "in-progress": MessageStatus.SENT,
    "completed": MessageStatus.DELIVERED, "busy": MessageStatus.UNDELIVERED,
    "no-answer": MessageStatus.UNDELIVERED, "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
OUTCOME_FOR_CALL = {"busy": CallOutcome.BUSY, "no-answer": CallOutcome.NO_ANSWER,
                    "failed": CallOutcome.FAILED, "canceled": CallOutcome.FAILED}
STATUS_RANK = {MessageStatus.PENDING: 0, MessageStatus.SENDING: 0, MessageStatus.UNKNOWN: 1,
               MessageStatus.SENT: 2, MessageStatus.DELIVERED: 3,
               MessageStatus.UNDELIVERED: 3, MessageStatus.FAILED: 3}

# The send may still go: the resident has not opted out of SMS / still consents to calls.
STILL_TEXTABLE = ("AND NOT EXISTS (SELECT 1 FROM resident WHERE resident.id = message.resident_id "
                  "AND resident.sms_opted_out)")
STILL_CALLABLE = ("AND EXISTS (SELECT 1 FROM resident WHERE resident.id = message.resident_id "
                  "AND resident.call_consent)")

# A message is due: what the dispatcher claims, and what its lag is measured against.
DUE = ("status = 'PENDING' AND send_after <= now() "
       "AND (next_attempt_at IS NULL OR next_attempt_at <= now())")

CLAIM_SQL = f"""
WITH due AS (
    SELECT id FROM message
    WHERE {DUE}
    ORDER BY send_after, id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE message AS m
SET status = 'SENDING', claimed_by = $2, claimed_at = now(),
    lease_until = now() + make_interval(secs => $3), send_started_at = NULL, updated_at = now()
FROM due WHERE m.id = due.id
RETURNING m.id
"""

RELEASE_SQL = """
UPDATE message
SET status = CASE WHEN send_started_at IS NULL THEN 'PENDING' ELSE 'UNKNOWN' END,
    next_attempt_at = CASE WHEN send_started_at IS NULL THEN NULL
                           ELSE now() + make_interval(secs => $1) END,
    last_error = CASE WHEN send_started_at IS NULL THEN last_error
                      ELSE 'worker stopped during the send; waiting for the provider' END,
    claimed_by = NULL, lease_until = NULL, updated_at = now()
WHERE status = 'SENDING' AND lease_until < now()
RETURNING id, status
"""

# One sender's pace per municipality and channel (sms_rate, call_rate), shared by workers.
SLOT_SQL = """
INSERT INTO {table} (municipality_id, next_slot_at)
VALUES ($1, clock_timestamp() + make_interval(secs => $2))
ON CONFLICT (municipality_id) DO UPDATE
SET next_slot_at = GREATEST({table}.next_slot_at, clock_timestamp()) + make_interval(secs => $2)
RETURNING EXTRACT(EPOCH FROM (next_slot_at - make_interval(secs => $2) - clock_timestamp()))
          AS wait_seconds
"""
SLOT_SQL_FOR = {Channel.SMS: SLOT_SQL.format(table="sms_rate"),
                Channel.VOICE: SLOT_SQL.format(table="call_rate")}


# One pass over the outbox (the index on municipality, status, kind) for /metrics: messages
# per municipality and status, and of those due and not yet sent (claimed ones included: a
# worker holding a claim has not sent it either) how many and since when the oldest is due.
OUTBOX_STATE_SQL = f"""
WITH counts AS (
    SELECT municipality_id, status, count(*) AS messages,
           count(*) FILTER (WHERE {DUE} OR status = 'SENDING') AS due,
           min(GREATEST(send_after, COALESCE(next_attempt_at, send_after)))
               FILTER (WHERE {DUE} OR status = 'SENDING') AS oldest_due
    FROM message
    GROUP BY municipality_id, status
)
SELECT municipality.code, counts.status, counts.messages, counts.due,
       EXTRACT(EPOCH FROM now() - counts.oldest_due)::float8 AS lag_seconds
FROM municipality LEFT JOIN counts ON counts.municipality_id = municipality.id
"""


async def outbox_state() -> OutboxState:
    """The outbox for /metrics, database-wide (every replica reads the same numbers)."""
    rows = await connections.get("default").execute_query_dict(OUTBOX_STATE_SQL)
    messages: dict[tuple[str, str], int] = {}
    due: dict[str, int] = {}
    lag: dict[str, float] = {}
    for row in rows:
        code = row["code"]
        for status in MessageStatus:
            messages.setdefault((code, status.value), 0)
        due.setdefault(code, 0)
        lag.setdefault(code, 0.0)
        if row["status"] is not None:
            messages[(code, row["status"])] = row["messages"]
            due[code] += row["due"]
            lag[code] = max(lag[code], row["lag_seconds"] or 0.0)
    return OutboxState(messages=messages, due=due, lag_seconds=lag)


async def outbox_metrics() -> list[Metric]:
    return outbox_families(await outbox_state())


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    deferred: int = 0
    released: int = 0
    resolved: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def _clear_claim(message: Message) -> None:
    message.claimed_by = None
    message.lease_until = None


def _backoff(retries: int) -> timedelta:
    """Exponential backoff with jitter: about 2 s, 4 s, 8 s, ... up to 5 minutes."""
    delay = min(300.0, 2.0 * 2 ** max(0, retries - 1))
    return timedelta(seconds=delay * random.uniform(0.5, 1.0))


async def _advance(message: Message, provider_status: str | None, *,
                   provider_id: str | None = None, error_code: str | None = None,
                   call_seconds: int | None = None, answered_by: str | None = None) -> bool:
    """Apply a provider status if it moves the message forward. Caller holds the row lock."""
    if provider_id and not message.provider_id:
        message.provider_id = provider_id
    is_call = message.channel == Channel.VOICE
    ranks, statuses = (CALL_RANK, STATUS_FOR_CALL) if is_call else (PROVIDER_RANK,
                                                                     STATUS_FOR_PROVIDER)
    status = statuses.get(provider_status or "")
    if status is None:
        return False
    old_rank = ranks.get(message.provider_status or "", 0)
    new_rank = ranks[provider_status or ""]
    if new_rank <= old_rank and message.status not in (MessageStatus.SENDING,
                                                        MessageStatus.UNKNOWN):
        return False
    now = timeutil.now()
    message.provider_status = provider_status
    if STATUS_RANK.get(status, 0) >= STATUS_RANK.get(MessageStatus(message.status), 0):
        message.status = status
    if status != MessageStatus.FAILED:
        message.sent_at = message.sent_at or now  # the provider took it (and may bill it)
    if status == MessageStatus.DELIVERED:
        message.delivered_at = message.delivered_at or now
    if error_code:
        message.error_code = error_code
    if is_call:
        _settle_call(message, provider_status or "", call_seconds, answered_by)
    message.next_attempt_at = None
    _clear_claim(message)
    await message.save()
    if error_code == UNSUBSCRIBED and message.to and not is_call:
        await consent.opt_out_by_phone(message.municipality_id, message.to, True,
                                       "provider-21610")
    return True


def _settle_call(message: Message, call_status: str, call_seconds: int | None,
                 answered_by: str | None) -> None:
    """A call's length and outcome: a key pressed (1, 2) stands; otherwise a completed call
    was answered by a person or a machine, and the rest did not reach anyone."""
    if answered_by:
        message.answered_by = answered_by[:32]
    if call_seconds is not None:
        message.call_seconds = call_seconds
    if call_status == "completed":
        if is_fax(message.answered_by):
            message.call_outcome = CallOutcome.FAILED  # a fax line keeps no message
        elif message.call_outcome in (None, CallOutcome.ANSWERED, CallOutcome.MACHINE):
            message.call_outcome = (CallOutcome.MACHINE if is_machine(message.answered_by)
                                    else CallOutcome.ANSWERED)
    elif call_status in OUTCOME_FOR_CALL:
        message.call_outcome = OUTCOME_FOR_CALL[call_status]


async def apply_call_status(*, provider_id: str, call_status: str, message_id: int | None,
                            attempt: int | None, call_seconds: int | None = None,
                            answered_by: str | None = None) -> bool:
    """A signed call status callback (initiated, ringing, answered, completed, busy, ...).
    Like an SMS callback, it may settle a call whose placing ended ambiguously."""
    call_status = call_status.lower()
    async with in_transaction():
        message = await _called_back(Channel.VOICE, provider_id, message_id, attempt)
        if message is None:
            return False
        return await _advance(message, call_status, provider_id=provider_id,
                              call_seconds=call_seconds, answered_by=answered_by)


async def apply_status_callback(*, provider_id: str, provider_status: str,
                                error_code: str | None = None, message_id: int | None = None,
                                attempt: int | None = None) -> bool:
    """A signed status callback. Unknown sids are acknowledged and ignored; a callback for
    an earlier attempt of a resent message is ignored too. Returns whether it applied."""
    provider_status = provider_status.lower()
    async with in_transaction():
        message = await _called_back(Channel.SMS, provider_id, message_id, attempt)
        if message is None:
            return False
        return await _advance(message, provider_status, provider_id=provider_id,
                              error_code=error_code or None)


async def _called_back(channel: Channel, provider_id: str, message_id: int | None,
                       attempt: int | None) -> Message | None:
    """The message a status callback is about, locked: by the provider's sid, or by our id
    and attempt from the callback URL, adopting the sid only while that attempt is in flight
    or unsettled (a callback for an earlier attempt of a resent message is ignored)."""
    message = await Message.filter(provider_id=provider_id,
                                   channel=channel).select_for_update().first()
    if message is None and message_id is not None:
        candidate = await Message.filter(id=message_id,
                                         channel=channel).select_for_update().first()
        if (candidate is not None and candidate.provider_id is None
                and attempt == candidate.attempts
                and candidate.status in (MessageStatus.SENDING, MessageStatus.UNKNOWN)):
            message = candidate
    return message


class Dispatcher:
    def __init__(self, backend: SmsBackend, settings: Settings | None = None,
                 worker_id: str | None = None) -> None:
        self.backend = backend
        self.settings = settings or get_settings()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop: asyncio.Event | None = None

    # --- one round ---------------------------------------------------------------------

    async def run_once(self) -> DispatchStats:
        stats = DispatchStats()
        stats.released = await self.release_expired_claims()
        stats.resolved = await self.resolve_unknown()
        messages = await self.claim(stats)
        if messages:
            municipalities = {m.id: m for m in await Municipality.filter(
                id__in={message.municipality_id for message in messages})}
            results = await asyncio.gather(*(
                self._send_one(message, municipalities[message.municipality_id])
                for message in messages))
            for outcome in results:
                if outcome is None:
                    continue
                stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
            stats.sent = stats.outcomes.get(Outcome.ACCEPTED, 0)
            stats.retried = stats.outcomes.get(Outcome.RETRY, 0)
            stats.failed = stats.outcomes.get(Outcome.PERMANENT, 0)
            stats.unknown = stats.outcomes.get(Outcome.UNKNOWN, 0)
        return stats

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("SMS dispatcher %s started (backend: %s)", self.worker_id, self.backend.name)
        self._stop = stop
        while not stop.is_set():
            try:
                stats = await self.run_once()
                busy = stats.claimed >= self.settings.sms_batch_size
            except Exception:  # a database hiccup must not end the worker
                log.exception("SMS dispatch round failed")
                busy = False
            if not busy:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.sms_poll_seconds)
                except TimeoutError:
                    pass
        log.info("SMS dispatcher %s stopped", self.worker_id)

    # --- steps -------------------------------------------------------------------------

    async def claim(self, stats: DispatchStats | None = None) -> list[Message]:
        """Claim due messages and weed out, in the same transaction, what must not go out
        now: not eligible any more (read fresh), too late, or quiet hours."""
        stats = stats or DispatchStats()
        now = timeutil.now()
        async with in_transaction() as conn:
            rows = await conn.execute_query_dict(
                CLAIM_SQL, [self.settings.sms_batch_size, self.worker_id,
                            self.settings.sms_lease_seconds])
            if not rows:
                return []
            messages = await Message.filter(id__in=[r["id"] for r in rows]).using_db(
                conn).order_by("send_after", "id")
            residents = {r.id: r for r in await Resident.filter(
                id__in={m.resident_id for m in messages}).using_db(conn)}
            municipalities = {m.id: m for m in await Municipality.filter(
                id__in={m.municipality_id for m in messages}).using_db(conn)}
            gone = await occasions.unwanted(list(messages))
            sendable = []
            for message in messages:
                resident = residents[message.resident_id]
                municipality = municipalities[message.municipality_id]
                if message.id in gone:  # the seat, session or follow-up changed meanwhile
                    message.status = MessageStatus.CANCELLED
                    message.last_error = gone[message.id]
                    _clear_claim(message)
                    await message.save(using_db=conn)
                    stats.skipped += 1
                    continue
                way = channels.route_for(message, resident)
                changed = (message.channel, message.to) != (way.channel, way.to)
                message.channel = way.channel  # consent may have changed since planning
                reason = way.skip_reason
                if reason is None and message.expires_at is not None and message.expires_at <= now:
                    reason = SkipReason.TOO_LATE
                if reason is not None:
                    message.status, message.skip_reason = MessageStatus.SKIPPED, reason
                    _clear_claim(message)
                    await message.save(using_db=conn)
                    stats.skipped += 1
                    continue
                later = timing.earliest_send(way.channel, MessageKind(message.kind), now, now,
                                             municipality)
                if later > now:  # quiet hours, or outside the call window
                    message.status = MessageStatus.PENDING
                    message.send_after = later
                    _clear_claim(message)
                    await message.save(using_db=conn)
                    stats.deferred += 1
                    continue
                if changed:  # the way and the number as they are now
                    message.to = way.to
                    await message.save(using_db=conn, update_fields=["to", "channel"])
                sendable.append(message)
        stats.claimed = len(sendable)
        return sendable

    async def release_expired_claims(self) -> int:
        rows = await connections.get("default").execute_query_dict(
            RELEASE_SQL, [self.settings.sms_unknown_grace_seconds])
        for row in rows:
            with log_scope(message=row["id"]):
                log.warning("SMS message %s: claim expired, now %s", row["id"], row["status"])
        return len(rows)

    async def _renew(self, message_id: int) -> bool:
        """Extend our claim; False when it is no longer ours."""
        rows = await connections.get("default").execute_query_dict(
            "UPDATE message SET lease_until = now() + make_interval(secs => $1) "
            "WHERE id = $2 AND status = 'SENDING' AND claimed_by = $3 RETURNING id",
            [self.settings.sms_lease_seconds, message_id, self.worker_id])
        return bool(rows)

    async def _release(self, message_id: int, send_after: datetime | None = None) -> None:
        """Give an unsent claim back (we are stopping; or for `send_after`, when the call
        window closed meanwhile): provably never reached the provider."""
        await connections.get("default").execute_query_dict(
            "UPDATE message SET status = 'PENDING', send_after = COALESCE($3, send_after), "
            "claimed_by = NULL, lease_until = NULL, updated_at = now() WHERE id = $1 "
            "AND status = 'SENDING' AND claimed_by = $2 AND send_started_at IS NULL "
            "RETURNING id", [message_id, self.worker_id, send_after])

    async def _wait_for_slot(self, message_id: int, municipality: Municipality,
                             channel: Channel = Channel.SMS) -> bool:
        """Wait for one send slot of the municipality's sender (SMS, or calls at their own
        pace), shared by every worker, keeping our claim alive meanwhile. False when the
        claim was lost or we are stopping."""
        rate = (municipality.sms_per_second if channel == Channel.SMS
                else municipality.calls_per_minute / 60)
        if not rate or rate <= 0:
            return True
        rows = await connections.get("default").execute_query_dict(
            SLOT_SQL_FOR[channel], [municipality.id, 1.0 / rate])
        wait = float(rows[0]["wait_seconds"] or 0)
        # A long wait must not look like a dead worker: renew the lease as we go.
        step = max(1.0, self.settings.sms_lease_seconds / 3)
        while wait > 0:
            chunk = min(wait, step)
            if await self._stopped_within(chunk):
                await self._release(message_id)
                return False
            wait -= chunk
            if wait > 0 and not await self._renew(message_id):
                return False
        return True

    async def _stopped_within(self, seconds: float) -> bool:
        if self._stop is None:
            await asyncio.sleep(seconds)
            return False
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    async def _send_one(self, message: Message, municipality: Municipality) -> Outcome | None:
        # Every line about this send (ours, the backend's) names the message, never the
        # number or the body.
        with log_scope(message=message.id):
            return await self._send_one_logged(message, municipality)

    async def _send_one_logged(self, message: Message, municipality: Municipality
                               ) -> Outcome | None:
        channel = Channel(message.channel)
        if not await self._wait_for_slot(message.id, municipality, channel):
            return None
        now = timeutil.now()
        if channel == Channel.VOICE and not timing.may_call_at(now, municipality):
            # The window closed while we waited for a call slot: not at 19:03.
            await self._release(message.id, timing.next_call_moment(now, municipality))
            return None
        lease = timedelta(seconds=self.settings.sms_lease_seconds)
        conn = connections.get("default")
        rows = await conn.execute_query_dict(
            # Still ours, and the resident has not opted out (or withdrawn call consent)
            # while we waited for the slot.
            "UPDATE message SET send_started_at = $1, lease_until = $2, attempts = attempts + 1, "
            "updated_at = $1 WHERE id = $3 AND status = 'SENDING' AND claimed_by = $4 "
            + (STILL_CALLABLE if channel == Channel.VOICE else STILL_TEXTABLE)
            + " RETURNING attempts",
            [now, now + lease, message.id, self.worker_id])
        if not rows:
            return None  # the claim was lost (lease ran out); whoever holds it settles it
        if channel == Channel.VOICE:
            call = OutgoingCall(message_id=message.id, attempt=rows[0]["attempts"],
                                to=message.to or "", claimed_at=message.claimed_at or now)
            result = await self._provider(self.backend.call(call), message.id)
            await self._settle(message.id, result)
            return result.outcome
        validity = None
        if message.expires_at is not None:
            validity = int((message.expires_at - now).total_seconds())
            if validity < 1:
                validity = 1
        sms = OutgoingSms(message_id=message.id, attempt=rows[0]["attempts"], to=message.to or "",
                          body=message.body, claimed_at=message.claimed_at or now,
                          validity_seconds=validity)
        result = await self._provider(self.backend.send(sms), message.id)
        await self._settle(message.id, result)
        return result.outcome

    async def _provider(self, request: Awaitable[SendResult], message_id: int) -> SendResult:
        """The provider's answer to a send or a call, bounded in time; after the request
        left, no answer in time or anything unexpected is ambiguous: UNKNOWN."""
        try:
            async with asyncio.timeout(self.settings.sms_send_timeout_seconds):
                return await request
        except TimeoutError:
            return SendResult(Outcome.UNKNOWN, error_code="TIMEOUT",
                              error_message="no answer from the provider in time")
        except Exception as error:  # anything else after the request left: ambiguous
            log.exception("message %s: send failed", message_id)
            return SendResult(Outcome.UNKNOWN, error_code="ERROR",
                              error_message=type(error).__name__)

    async def _settle(self, message_id: int, result: SendResult) -> None:
        now = timeutil.now()
        async with in_transaction():
            message = await Message.filter(id=message_id).select_for_update().first()
            if message is None:
                return
            ours = message.status == MessageStatus.SENDING and message.claimed_by == self.worker_id
            if result.outcome == Outcome.ACCEPTED:
                await _advance(message, result.provider_status or "queued",
                               provider_id=result.provider_id)
                return
            if not ours:
                # A status callback settled it meanwhile, or the claim was lost.
                return
            message.error_code = result.error_code
            message.last_error = result.error_message
            if result.outcome == Outcome.RETRY and result.configuration_error:
                log.error("SMS provider refused our configuration (%s): check TWILIO_* settings",
                          result.error_code)
                message.status = MessageStatus.PENDING
                message.next_attempt_at = now + CONFIGURATION_RETRY
                message.send_started_at = None
            elif result.outcome == Outcome.RETRY:
                message.retries += 1
                if message.retries > self.settings.sms_max_retries:
                    message.status = MessageStatus.FAILED
                    message.last_error = f"gave up after {message.retries} tries: {result.error_message}"
                else:
                    message.status = MessageStatus.PENDING
                    message.next_attempt_at = now + _backoff(message.retries)
                    message.send_started_at = None
            elif result.outcome == Outcome.PERMANENT:
                message.status = MessageStatus.FAILED
                if result.provider_id:
                    message.provider_id = result.provider_id
                    message.provider_status = result.provider_status
            else:
                message.status = MessageStatus.UNKNOWN
                message.next_attempt_at = now + timedelta(
                    seconds=self.settings.sms_unknown_grace_seconds)
            _clear_claim(message)
            await message.save()
            if result.outcome == Outcome.PERMANENT and message.channel == Channel.VOICE:
                message.call_outcome = CallOutcome.FAILED
                await message.save(update_fields=["call_outcome", "updated_at"])
            elif result.outcome == Outcome.PERMANENT and result.error_code == UNSUBSCRIBED \
                    and message.to:
                await consent.opt_out_by_phone(message.municipality_id, message.to, True,
                                               "provider-21610")

    async def resolve_unknown(self, limit: int = 20) -> int:
        """Settle UNKNOWN messages the status callback has not settled: ask the provider.
        Found: adopt its record. Provably absent: send again. No answer: ask later.
        No row stays locked while the provider is asked (callbacks must not wait)."""
        now = timeutil.now()
        retry_at = now + timedelta(seconds=max(30.0, self.settings.sms_unknown_grace_seconds))
        async with in_transaction():
            # Take them for this round: pushing next_attempt_at keeps other workers off.
            messages = await Message.filter(
                status=MessageStatus.UNKNOWN, next_attempt_at__lte=now,
            ).order_by("next_attempt_at", "id").limit(limit).select_for_update(skip_locked=True)
            for message in messages:
                message.next_attempt_at = retry_at
                await message.save(update_fields=["next_attempt_at", "updated_at"])
        resolved = 0
        for message in messages:
            claimed_at = message.claimed_at or message.created_at
            if message.channel == Channel.VOICE:
                looking = self.backend.lookup_call(OutgoingCall(
                    message_id=message.id, attempt=message.attempts, to=message.to or "",
                    claimed_at=claimed_at))
            else:
                looking = self.backend.lookup(OutgoingSms(
                    message_id=message.id, attempt=message.attempts, to=message.to or "",
                    body=message.body, claimed_at=claimed_at))
            try:
                with log_scope(message=message.id):
                    async with asyncio.timeout(self.settings.sms_send_timeout_seconds):
                        record: ProviderRecord | None = await looking
            except Exception as error:  # the provider did not answer: next round
                with log_scope(message=message.id):
                    log.warning("SMS message %s: look-up failed (%s)", message.id,
                                type(error).__name__)
                continue
            async with in_transaction():
                current = await Message.filter(id=message.id).select_for_update().first()
                if current is None or current.status != MessageStatus.UNKNOWN:
                    continue  # a status callback settled it meanwhile
                if record is not None and await Message.filter(
                        provider_id=record.provider_id).exclude(id=current.id).exists():
                    continue  # another message's: wait for this one's own callback
                if record is not None:
                    await _advance(current, record.provider_status,
                                   provider_id=record.provider_id, error_code=record.error_code)
                elif current.expires_at is not None and current.expires_at <= timeutil.now():
                    current.status, current.skip_reason = MessageStatus.SKIPPED, SkipReason.TOO_LATE
                    current.next_attempt_at = None
                    await current.save()
                else:
                    current.status = MessageStatus.PENDING
                    current.next_attempt_at = None
                    current.send_started_at = None
                    current.last_error = "the provider has no record of it; sending again"
                    await current.save()
                resolved += 1
        return resolved
