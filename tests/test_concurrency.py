"""Real concurrency: many service calls at once, each in its own transaction on its own pooled
connection (asyncio.gather; calls beyond the pool size queue for a connection). The rules must
hold exactly as they do one call at a time."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from itertools import pairwise

import factories
from factories import at
from helpers_scheduling import register_all, residents, waitlist

from divide_support.core.errors import DomainError
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    Assignment,
    Registration,
    RegistrationStatus,
    Session,
)


def _outcomes(results: list) -> Counter:
    """'ok' for each success, the error code for each DomainError; anything else fails the test."""
    counter: Counter = Counter()
    for result in results:
        if isinstance(result, DomainError):
            counter[result.code] += 1
        elif isinstance(result, BaseException):
            raise result
        else:
            counter["ok"] += 1
    return counter


class SeatWatcher:
    """Polls the committed seat count while the storm runs, to catch any moment of overbooking."""

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.max_confirmed = 0
        self.samples = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            confirmed = await Registration.filter(session_id=self.session_id,
                                                  status=RegistrationStatus.CONFIRMED).count()
            self.max_confirmed = max(self.max_confirmed, confirmed)
            self.samples += 1
            await asyncio.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()


async def _storm(session_id: int, calls) -> tuple[list, SeatWatcher]:
    watcher = SeatWatcher(session_id)
    watching = asyncio.create_task(watcher.run())
    try:
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        watcher.stop()
        await watching
    assert watcher.samples > 0
    return results, watcher


async def _assert_waitlist_is_1_to_n(session_id: int, n: int) -> list[int]:
    rows = await waitlist(session_id)
    assert [position for position, _ in rows] == list(range(1, n + 1))
    assert len({resident_id for _, resident_id in rows}) == n
    return [resident_id for _, resident_id in rows]


async def test_fifty_simultaneous_registrations_fill_ten_seats_and_queue_forty(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=10)
    people_ = await residents(town.coordinator, 50)

    results, watcher = await _storm(session.id, [
        scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=p.id) for p in people_])

    assert _outcomes(results) == {"ok": 50}
    assert Counter(r.status for r in results) == {RegistrationStatus.CONFIRMED: 10,
                                                  RegistrationStatus.WAITLISTED: 40}
    assert await Registration.filter(session_id=session.id, status=RegistrationStatus.CONFIRMED).count() == 10
    assert watcher.max_confirmed <= 10
    queued = await _assert_waitlist_is_1_to_n(session.id, 40)
    # Every resident is in exactly one place.
    seated = await Registration.filter(session_id=session.id, status=RegistrationStatus.CONFIRMED
                                       ).values_list("resident_id", flat=True)
    assert sorted([*seated, *queued]) == sorted(p.id for p in people_)
    # FIFO: positions follow the order the registrations were committed (their ids).
    waiting = await Registration.filter(session_id=session.id, status=RegistrationStatus.WAITLISTED
                                        ).order_by("waitlist_position")
    assert [r.id for r in waiting] == sorted(r.id for r in waiting)
    assert max(r.id for r in results if r.status == RegistrationStatus.CONFIRMED) < waiting[0].id


async def test_ten_simultaneous_assignments_of_one_supporter_to_overlapping_sessions_allow_exactly_one(town):
    supporter = await factories.supporter(town.coordinator)
    starts = at(days=3, hour=10)
    sessions = [await factories.session(town.coordinator, starts + timedelta(minutes=10 * i), hours=2)
                for i in range(10)]

    results = await asyncio.gather(*[
        scheduling.assign_supporter(actor=town.coordinator, session_id=s.id, supporter_id=supporter.id)
        for s in sessions], return_exceptions=True)

    assert _outcomes(results) == {"ok": 1, "SUPPORTER_DOUBLE_BOOKED": 9}
    assert await Assignment.filter(supporter_id=supporter.id).count() == 1


async def test_simultaneous_assignments_to_separate_slots_all_succeed(town):
    supporter = await factories.supporter(town.coordinator)
    sessions = [await factories.session(town.coordinator, at(days=3 + i, hour=10), hours=2) for i in range(8)]

    results = await asyncio.gather(*[
        scheduling.assign_supporter(actor=town.coordinator, session_id=s.id, supporter_id=supporter.id)
        for s in sessions], return_exceptions=True)

    assert _outcomes(results) == {"ok": 8}


async def test_a_reschedule_and_an_assignment_racing_into_the_same_slot_cannot_both_win(town):
    for _ in range(5):
        supporter = await factories.supporter(town.coordinator)
        morning = await factories.session(town.coordinator, at(days=3, hour=10))
        afternoon = await factories.session(town.coordinator, at(days=3, hour=14))
        await scheduling.assign_supporter(actor=town.coordinator, session_id=morning.id, supporter_id=supporter.id)

        results = await asyncio.gather(
            scheduling.reschedule_session(actor=town.coordinator, session_id=morning.id,
                                          starts_at=at(days=3, hour=14)),
            scheduling.assign_supporter(actor=town.coordinator, session_id=afternoon.id, supporter_id=supporter.id),
            return_exceptions=True)

        assert _outcomes(results) == {"ok": 1, "SUPPORTER_DOUBLE_BOOKED": 1}
        booked = await Session.filter(assignments__supporter_id=supporter.id).order_by("starts_at")
        for earlier, later in pairwise(booked):
            assert earlier.ends_at <= later.starts_at, "the supporter ended up double booked"


async def test_twenty_simultaneous_cancellations_promote_the_waitlist_in_order(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=20)
    people_ = await residents(town.coordinator, 50)
    regs = await register_all(town.coordinator, session.id, people_)
    seats, queue = regs[:20], regs[20:]

    results, watcher = await _storm(session.id, [
        scheduling.cancel_registration(actor=town.coordinator, registration_id=r.id) for r in seats])

    assert _outcomes(results) == {"ok": 20}
    assert watcher.max_confirmed <= 20
    confirmed = await Registration.filter(session_id=session.id, status=RegistrationStatus.CONFIRMED
                                          ).values_list("id", flat=True)
    assert sorted(confirmed) == sorted(r.id for r in queue[:20]), "the first twenty waiting got the seats"
    remaining = await _assert_waitlist_is_1_to_n(session.id, 10)
    assert remaining == [r.resident_id for r in queue[20:]], "the rest keep their order"


async def test_simultaneous_cancellations_of_seats_and_waitlist_places_keep_the_queue_contiguous(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=10)
    people_ = await residents(town.coordinator, 40)
    regs = await register_all(town.coordinator, session.id, people_)
    seats, queue = regs[:10], regs[10:]
    leaving = seats[:6] + queue[::3]  # 6 seats and 10 waitlist places, all at once
    staying_queue = [r for r in queue if r not in leaving]

    results, watcher = await _storm(session.id, [
        scheduling.cancel_registration(actor=town.coordinator, registration_id=r.id) for r in leaving])

    assert _outcomes(results) == {"ok": len(leaving)}
    assert watcher.max_confirmed <= 10
    assert await Registration.filter(session_id=session.id, status=RegistrationStatus.CONFIRMED).count() == 10
    remaining = await _assert_waitlist_is_1_to_n(session.id, len(staying_queue) - 6)
    # The six promoted were the six earliest of those still waiting; the others keep their order.
    assert remaining == [r.resident_id for r in staying_queue[6:]]


async def test_the_same_resident_registering_ten_times_at_once_gets_one_registration(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=10)
    resident = await factories.resident(town.coordinator)

    results = await asyncio.gather(*[
        scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id)
        for _ in range(10)], return_exceptions=True)

    assert _outcomes(results) == {"ok": 1, "ALREADY_REGISTERED": 9}
    assert await Registration.filter(session_id=session.id, resident_id=resident.id).count() == 1


async def test_registrations_racing_a_capacity_increase_never_overbook(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=5)
    people_ = await residents(town.coordinator, 30)
    calls = [scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=p.id)
             for p in people_]
    calls.insert(15, scheduling.reschedule_session(actor=town.coordinator, session_id=session.id, capacity=12))

    results, watcher = await _storm(session.id, calls)

    assert _outcomes(results) == {"ok": 31}
    assert watcher.max_confirmed <= 12
    assert await Registration.filter(session_id=session.id, status=RegistrationStatus.CONFIRMED).count() == 12
    await _assert_waitlist_is_1_to_n(session.id, 18)


async def test_simultaneous_registrations_across_sessions_respect_each_capacity(town):
    starts = at(days=3, hour=10)
    sessions = [await factories.session(town.coordinator, starts + timedelta(hours=3 * i), capacity=3)
                for i in range(4)]
    people_ = await residents(town.coordinator, 6)

    results = await asyncio.gather(*[
        scheduling.register(actor=town.coordinator, session_id=s.id, resident_id=p.id)
        for s in sessions for p in people_], return_exceptions=True)

    assert _outcomes(results) == {"ok": 24}
    for s in sessions:
        assert await Registration.filter(session_id=s.id, status=RegistrationStatus.CONFIRMED).count() == 3
        await _assert_waitlist_is_1_to_n(s.id, 3)
