"""The dispatcher: each due message goes out once, crashes lose nothing and send nothing
twice, eligibility and timing are checked again at send time, the send rate holds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import factories
from sms_helpers import RecordingBackend, no_quiet_hours, quiet_hours_around_now
from tortoise import connections

from divide_support.core.settings import Settings
from divide_support.messaging import service as messaging
from divide_support.messaging.backends import Outcome, ProviderRecord
from divide_support.messaging.backends.console import ConsoleBackend
from divide_support.messaging.dispatcher import Dispatcher
from divide_support.messaging.models import Message, MessageKind, MessageStatus, SkipReason
from divide_support.scheduling import service as scheduling


def _settings(**overrides) -> Settings:
    values = {"sms_batch_size": 50, "sms_lease_seconds": 60, "sms_unknown_grace_seconds": 0,
              "sms_max_retries": 2}
    values.update(overrides)
    return Settings(**values)


async def _registered(town, count: int = 1, *, starts: datetime | None = None) -> list[int]:
    """`count` residents registered for one class; returns their confirmation message ids."""
    session = await factories.session(town.coordinator, starts or factories.at(days=5, hour=14),
                                      capacity=max(10, count))
    ids = []
    for _ in range(count):
        resident = await factories.resident(town.coordinator, sms=True)
        registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                                 resident_id=resident.id)
        message = await Message.get(registration_id=registration.id, kind=MessageKind.CONFIRMATION)
        ids.append(message.id)
    return ids


async def test_due_messages_are_sent_once_and_future_ones_wait(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    backend = RecordingBackend()
    dispatcher = Dispatcher(backend, _settings())
    stats = await dispatcher.run_once()
    await dispatcher.run_once()
    assert backend.ids() == [confirmation]
    assert stats.sent == 1
    message = await Message.get(id=confirmation)
    assert message.status == MessageStatus.SENT
    assert message.provider_id and message.sent_at and message.attempts == 1
    reminders = await Message.filter(kind__in=messaging.REMINDER_KINDS)
    assert {m.status for m in reminders} == {MessageStatus.PENDING}


async def test_the_console_backend_marks_sent(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    await Dispatcher(ConsoleBackend(), _settings()).run_once()
    assert (await Message.get(id=confirmation)).status == MessageStatus.SENT


async def test_racing_dispatchers_send_every_message_exactly_once(town):
    await no_quiet_hours(town.municipality.id)
    ids = await _registered(town, 40)
    backend = RecordingBackend()
    dispatchers = [Dispatcher(backend, _settings(sms_batch_size=7), worker_id=f"w{i}")
                   for i in range(5)]
    for _ in range(4):
        await asyncio.gather(*(d.run_once() for d in dispatchers))
    sent = backend.ids()
    assert sorted(sent) == sorted(ids)  # every one, none twice
    statuses = await Message.filter(id__in=ids).values_list("status", flat=True)
    assert set(statuses) == {MessageStatus.SENT}


async def _expire_claims() -> None:
    await connections.get("default").execute_script(
        "UPDATE message SET lease_until = now() - interval '1 second' WHERE status = 'SENDING'")


async def test_a_worker_killed_after_claiming_but_before_sending_loses_nothing(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    crashed = Dispatcher(RecordingBackend(), _settings(), worker_id="crashed")
    claimed = await crashed.claim()  # ... and the process dies here
    assert [m.id for m in claimed] == [confirmation]
    assert (await Message.get(id=confirmation)).status == MessageStatus.SENDING
    await _expire_claims()
    survivor_backend = RecordingBackend()
    survivor = Dispatcher(survivor_backend, _settings(), worker_id="survivor")
    await survivor.run_once()
    assert survivor_backend.ids() == [confirmation]
    assert (await Message.get(id=confirmation)).status == MessageStatus.SENT


async def test_a_worker_killed_mid_send_leaves_unknown_and_the_provider_record_settles_it(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    crashed = Dispatcher(RecordingBackend(), _settings(), worker_id="crashed")
    await crashed.claim()
    # The request left (send_started_at written), then the process died.
    await connections.get("default").execute_script(
        f"UPDATE message SET send_started_at = now(), attempts = 1 WHERE id = {confirmation}")
    await _expire_claims()
    provider = RecordingBackend(records={confirmation: ProviderRecord("SMabc", "delivered")})
    survivor = Dispatcher(provider, _settings(sms_unknown_grace_seconds=3600))
    await survivor.run_once()
    message = await Message.get(id=confirmation)
    assert message.status == MessageStatus.UNKNOWN  # never resent blindly
    assert provider.sent == []
    await Message.filter(id=confirmation).update(next_attempt_at=datetime.now(UTC))
    await survivor.run_once()
    message = await Message.get(id=confirmation)
    assert (message.status, message.provider_id) == (MessageStatus.DELIVERED, "SMabc")
    assert provider.sent == []


async def test_an_unknown_message_the_provider_never_saw_is_sent_again_once(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    first = Dispatcher(RecordingBackend(Outcome.UNKNOWN), _settings())
    await first.run_once()
    assert (await Message.get(id=confirmation)).status == MessageStatus.UNKNOWN
    provider = RecordingBackend()  # has no record of it
    second = Dispatcher(provider, _settings())
    await second.run_once()  # look-up: no record -> PENDING again
    await second.run_once()  # sent
    await second.run_once()
    assert provider.lookups == [confirmation]
    assert provider.ids() == [confirmation]
    message = await Message.get(id=confirmation)
    assert message.status == MessageStatus.SENT and message.attempts == 2


async def test_retries_back_off_and_then_fail(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    busy = RecordingBackend(Outcome.RETRY)
    dispatcher = Dispatcher(busy, _settings(sms_max_retries=2))
    await dispatcher.run_once()
    message = await Message.get(id=confirmation)
    assert message.status == MessageStatus.PENDING and message.retries == 1
    assert message.next_attempt_at > datetime.now(UTC)
    await dispatcher.run_once()  # not due yet: nothing sent
    assert len(busy.sent) == 1
    for _ in range(2):
        await Message.filter(id=confirmation).update(next_attempt_at=datetime.now(UTC))
        await dispatcher.run_once()
    message = await Message.get(id=confirmation)
    assert message.status == MessageStatus.FAILED
    assert len(busy.sent) == 3


async def test_opted_out_after_planning_is_skipped_at_send_time(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    message = await Message.get(id=confirmation)
    await messaging.set_opt_out(actor=town.coordinator, resident_id=message.resident_id,
                                opted_out=True)
    backend = RecordingBackend()
    await Dispatcher(backend, _settings()).run_once()
    message = await Message.get(id=confirmation)
    assert (message.status, message.skip_reason) == (MessageStatus.SKIPPED, SkipReason.OPTED_OUT)
    assert backend.sent == []


async def test_a_message_whose_moment_passed_is_skipped_as_too_late(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    await Message.filter(id=confirmation).update(
        expires_at=datetime.now(UTC) - timedelta(minutes=1))
    backend = RecordingBackend()
    await Dispatcher(backend, _settings()).run_once()
    message = await Message.get(id=confirmation)
    assert (message.status, message.skip_reason) == (MessageStatus.SKIPPED, SkipReason.TOO_LATE)
    assert backend.sent == []


async def test_nothing_goes_out_in_quiet_hours(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    ends = await quiet_hours_around_now(town.municipality.id)
    backend = RecordingBackend()
    stats = await Dispatcher(backend, _settings()).run_once()
    assert backend.sent == [] and stats.deferred == 1
    message = await Message.get(id=confirmation)
    assert message.status == MessageStatus.PENDING
    local = message.send_after.astimezone(ends.tzinfo)
    assert (local.hour, local.minute) == (ends.hour, ends.minute)


async def test_the_send_rate_holds_across_workers(town):
    await no_quiet_hours(town.municipality.id, per_second=10)
    ids = await _registered(town, 6)
    backend = RecordingBackend()
    dispatchers = [Dispatcher(backend, _settings(sms_batch_size=3), worker_id=f"w{i}")
                   for i in range(2)]
    await asyncio.gather(*(d.run_once() for d in dispatchers))
    assert sorted(backend.ids()) == sorted(ids)
    times = sorted(at for _, at in backend.sent)
    gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
    assert min(gaps) >= 0.09, gaps  # 10 per second, shared by both workers


async def test_resending_a_failed_message_makes_a_new_attempt(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    await Dispatcher(RecordingBackend(Outcome.PERMANENT), _settings()).run_once()
    assert (await Message.get(id=confirmation)).status == MessageStatus.FAILED
    message = await messaging.resend(actor=town.coordinator, message_id=confirmation)
    assert message.status == MessageStatus.PENDING
    backend = RecordingBackend()
    await Dispatcher(backend, _settings()).run_once()
    message = await Message.get(id=confirmation)
    assert message.status == MessageStatus.SENT and message.attempts == 2
    assert backend.ids() == [confirmation]


async def test_only_failed_messages_can_be_resent(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    await Dispatcher(RecordingBackend(), _settings()).run_once()
    try:
        await messaging.resend(actor=town.coordinator, message_id=confirmation)
    except Exception as error:
        assert getattr(error, "code", None) == "NOT_RESENDABLE"
    else:
        raise AssertionError("a SENT message was queued again")
    assert (await Message.get(id=confirmation)).status == MessageStatus.SENT


async def test_monthly_usage_counts_messages_and_segments_sent(town, other_town):
    for place in (town, other_town):
        await no_quiet_hours(place.municipality.id)
        await _registered(place, 2)
    await Dispatcher(RecordingBackend(), _settings()).run_once()
    usage = await messaging.sms_usage(actor=town.planner)
    this_month = datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")
    segments = sum(await Message.filter(municipality_id=town.municipality.id,
                                        status=MessageStatus.SENT).values_list("segments",
                                                                               flat=True))
    assert usage == [{"month": this_month, "messages": 2, "segments": segments}]


async def test_a_worker_waiting_for_its_send_slots_keeps_its_claims(town):
    """At 1 message per second, the fourth message of a batch waits 3 s, longer than the
    2 s lease: the worker renews it while waiting, so another worker does not take it."""
    await no_quiet_hours(town.municipality.id, per_second=1)
    ids = await _registered(town, 4)
    backend = RecordingBackend()
    slow = Dispatcher(backend, _settings(sms_lease_seconds=2, sms_batch_size=4), worker_id="slow")
    other = Dispatcher(RecordingBackend(), _settings(sms_lease_seconds=2), worker_id="other")
    released = 0

    async def watch() -> None:
        nonlocal released
        while not done.is_set():
            released += await other.release_expired_claims()
            await asyncio.sleep(0.3)

    done = asyncio.Event()
    watcher = asyncio.create_task(watch())
    await slow.run_once()
    done.set()
    await watcher
    assert released == 0
    assert sorted(backend.ids()) == sorted(ids)
    assert set(await Message.filter(id__in=ids).values_list("status", flat=True)) == {
        MessageStatus.SENT}


async def test_stopping_hands_back_claims_that_were_not_sent(town):
    await no_quiet_hours(town.municipality.id, per_second=0.5)
    ids = await _registered(town, 3)
    backend = RecordingBackend()
    dispatcher = Dispatcher(backend, _settings(sms_batch_size=3))
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run_forever(stop))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(task, timeout=5)  # not the 4 s the last slot would take
    sent = set(backend.ids())
    assert len(sent) == 1
    for message in await Message.filter(id__in=ids):
        if message.id in sent:
            assert message.status == MessageStatus.SENT
        else:
            assert (message.status, message.claimed_by) == (MessageStatus.PENDING, None)


async def test_a_seat_given_up_while_its_message_waits_for_a_slot_is_not_texted(town):
    """Two confirmations claimed at one message per two seconds; both seats are given up
    while the second waits for its slot: it must not go out."""
    await no_quiet_hours(town.municipality.id, per_second=0.5)
    ids = await _registered(town, 2)
    backend = RecordingBackend()
    run = asyncio.create_task(Dispatcher(backend, _settings()).run_once())
    await asyncio.sleep(0.7)
    for message in await Message.filter(id__in=ids):
        await scheduling.cancel_registration(actor=town.coordinator,
                                             registration_id=message.registration_id)
    await run
    assert len(backend.sent) == 1  # the first had already gone
    statuses = sorted(await Message.filter(id__in=ids).values_list("status", flat=True))
    assert statuses == sorted([MessageStatus.SENT, MessageStatus.CANCELLED])


async def test_a_message_brought_back_for_a_cancelled_seat_is_withdrawn_at_claim(town):
    await no_quiet_hours(town.municipality.id)
    [confirmation] = await _registered(town)
    message = await Message.get(id=confirmation)
    await scheduling.cancel_registration(actor=town.coordinator,
                                         registration_id=message.registration_id)
    # e.g. an UNKNOWN the provider had no record of, going back to PENDING
    await Message.filter(id=confirmation).update(status=MessageStatus.PENDING)
    backend = RecordingBackend()
    await Dispatcher(backend, _settings()).run_once()
    assert backend.sent == []
    assert (await Message.get(id=confirmation)).status == MessageStatus.CANCELLED
