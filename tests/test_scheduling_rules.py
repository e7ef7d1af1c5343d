"""Scheduling rules, tested at the service level: seats and the FIFO waitlist, when a session is
open for registration and attendance, rescheduling and cancelling, supporters and staffing,
roles and tenancy (ARCHITECTURE.md "Product rules")."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import factories
import pytest
from factories import TOKYO, at
from helpers_scheduling import (
    assert_audited_once,
    audit_entries,
    confirmed_ids,
    counts,
    let_session_start,
    past_session,
    register_all,
    reload,
    residents,
    running_session,
    waitlist,
)

from divide_support.audit.models import AuditEntry
from divide_support.core.errors import DomainError
from divide_support.people import service as people
from divide_support.scheduling import service as scheduling
from divide_support.scheduling import staffing
from divide_support.scheduling.models import (
    Assignment,
    AssignmentRole,
    Attendance,
    Registration,
    RegistrationSource,
    RegistrationStatus,
    Session,
    SessionKind,
    SessionStatus,
    VenueKind,
)


async def _staffing(town, session_id: int) -> staffing.SessionStaffing:
    return (await staffing.staffing_for(town.municipality.id, [session_id]))[session_id]


# --- capacity and the FIFO waitlist ---------------------------------------------------------

async def test_registrations_beyond_capacity_are_waitlisted_in_arrival_order(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=3)
    people_ = await residents(town.coordinator, 7)
    regs = await register_all(town.coordinator, session.id, people_)

    assert [r.status for r in regs] == [RegistrationStatus.CONFIRMED] * 3 + [RegistrationStatus.WAITLISTED] * 4
    assert [r.waitlist_position for r in regs] == [None, None, None, 1, 2, 3, 4]
    assert await confirmed_ids(session.id) == sorted(p.id for p in people_[:3])
    assert await waitlist(session.id) == [(i + 1, p.id) for i, p in enumerate(people_[3:])]


async def test_a_session_without_capacity_seats_everyone(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=None,
                                      kind=SessionKind.HELP_SESSION)
    regs = await register_all(town.coordinator, session.id, await residents(town.coordinator, 12))
    assert {r.status for r in regs} == {RegistrationStatus.CONFIRMED}


async def test_cancelling_a_seat_promotes_the_first_waitlisted_resident_and_renumbers_the_rest(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=2)
    people_ = await residents(town.coordinator, 5)
    regs = await register_all(town.coordinator, session.id, people_)

    cancelled = await scheduling.cancel_registration(actor=town.coordinator, registration_id=regs[0].id,
                                                     reason="体調不良")

    assert cancelled.status == RegistrationStatus.CANCELLED
    assert cancelled.cancel_reason == "体調不良"
    first_waiting = await reload(regs[2])
    assert first_waiting.status == RegistrationStatus.CONFIRMED
    assert first_waiting.waitlist_position is None
    assert first_waiting.promoted_at is not None
    assert await confirmed_ids(session.id) == sorted([people_[1].id, people_[2].id])
    assert await waitlist(session.id) == [(1, people_[3].id), (2, people_[4].id)]
    [entry] = await audit_entries("registration.cancel", regs[0].id)
    assert entry.details["promotedRegistrations"] == [regs[2].id]


async def test_cancelling_a_waitlist_place_closes_the_gap(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=1)
    people_ = await residents(town.coordinator, 5)
    regs = await register_all(town.coordinator, session.id, people_)

    await scheduling.cancel_registration(actor=town.coordinator, registration_id=regs[2].id)

    assert await confirmed_ids(session.id) == [people_[0].id]
    assert await waitlist(session.id) == [(1, people_[1].id), (2, people_[3].id), (3, people_[4].id)]


async def test_a_new_registration_after_a_waitlist_cancellation_joins_the_end_of_the_queue(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=1)
    people_ = await residents(town.coordinator, 4)
    regs = await register_all(town.coordinator, session.id, people_[:3])
    await scheduling.cancel_registration(actor=town.coordinator, registration_id=regs[1].id)

    late = await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=people_[3].id)

    assert late.waitlist_position == 2
    assert await waitlist(session.id) == [(1, people_[2].id), (2, people_[3].id)]


async def test_a_cancelled_registration_cannot_be_cancelled_twice(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=1)
    [reg] = await register_all(town.coordinator, session.id, await residents(town.coordinator, 1))
    await scheduling.cancel_registration(actor=town.coordinator, registration_id=reg.id)
    with pytest.raises(DomainError) as e:
        await scheduling.cancel_registration(actor=town.coordinator, registration_id=reg.id)
    assert e.value.code == "ALREADY_CANCELLED"


@pytest.mark.parametrize("capacity", [1, 5], ids=["while waitlisted", "while confirmed"])
async def test_a_resident_holds_at_most_one_active_registration_per_session(town, capacity):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=capacity)
    other, resident = await residents(town.coordinator, 2)
    await register_all(town.coordinator, session.id, [other, resident])
    before = await counts(Registration, AuditEntry)

    with pytest.raises(DomainError) as e:
        await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id,
                                  source=RegistrationSource.COUNTER)

    assert e.value.code == "ALREADY_REGISTERED"
    assert e.value.field == "resident_id"
    assert await counts(Registration, AuditEntry) == before


async def test_a_resident_may_register_again_after_cancelling(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=5)
    resident = await factories.resident(town.coordinator)
    first = await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id)
    await scheduling.cancel_registration(actor=town.coordinator, registration_id=first.id)

    again = await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id)

    assert again.id != first.id
    assert again.status == RegistrationStatus.CONFIRMED
    assert await Registration.filter(session_id=session.id, resident_id=resident.id).count() == 2


async def test_capacity_cannot_be_lowered_below_the_confirmed_seats(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=5)
    await register_all(town.coordinator, session.id, await residents(town.coordinator, 4))
    before = await counts(Registration, AuditEntry)

    with pytest.raises(DomainError) as e:
        await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id, capacity=3,
                                            starts_at=at(days=4, hour=10))

    assert e.value.code == "CAPACITY_BELOW_CONFIRMED"
    assert e.value.field == "capacity"
    unchanged = await reload(session)
    assert (unchanged.capacity, unchanged.starts_at, unchanged.sequence) == (5, session.starts_at, 0)
    assert await counts(Registration, AuditEntry) == before
    # Down to exactly the confirmed count is fine.
    lowered = await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id, capacity=4)
    assert lowered.capacity == 4


async def test_raising_capacity_seats_people_from_the_waitlist_in_order(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=2)
    people_ = await residents(town.coordinator, 6)
    await register_all(town.coordinator, session.id, people_)

    await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id, capacity=4)

    assert await confirmed_ids(session.id) == sorted(p.id for p in people_[:4])
    assert await waitlist(session.id) == [(1, people_[4].id), (2, people_[5].id)]


# --- when a session is open ------------------------------------------------------------------

@pytest.mark.parametrize("source", list(RegistrationSource))
async def test_a_cancelled_session_takes_no_registrations(town, source):
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    await scheduling.cancel_session(actor=town.coordinator, session_id=session.id, reason="台風")
    resident = await factories.resident(town.coordinator)

    with pytest.raises(DomainError) as e:
        await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id,
                                  source=source)

    assert e.value.code == "SESSION_NOT_OPEN"
    assert await Registration.all().count() == 0


@pytest.mark.parametrize("source", [s for s in RegistrationSource if s != RegistrationSource.WALK_IN])
async def test_a_started_session_only_takes_walk_ins(town, source):
    session = await running_session(town.coordinator)
    resident = await factories.resident(town.coordinator)

    with pytest.raises(DomainError) as e:
        await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id,
                                  source=source)

    assert e.value.code == "SESSION_NOT_OPEN"
    assert await Registration.all().count() == 0


async def test_staff_register_walk_ins_at_the_door_of_a_running_session(town):
    session = await running_session(town.coordinator, capacity=5)
    resident = await factories.resident(town.coordinator)

    registration = await scheduling.register(actor=town.admin, session_id=session.id, resident_id=resident.id,
                                             source=RegistrationSource.WALK_IN)

    assert registration.status == RegistrationStatus.CONFIRMED
    assert registration.source == RegistrationSource.WALK_IN
    attended = await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                                  attendance=Attendance.ATTENDED)
    assert attended.attendance == Attendance.ATTENDED
    assert attended.checked_in_at is not None


async def test_a_paper_sign_in_sheet_of_a_past_session_can_be_entered_afterwards(town):
    session = await past_session(town.coordinator, days_ago=3, capacity=10)
    assert scheduling.effective_status(session) == SessionStatus.COMPLETED
    came, stayed_home = await residents(town.coordinator, 2)

    regs = await register_all(town.coordinator, session.id, [came, stayed_home], source=RegistrationSource.WALK_IN)
    await scheduling.record_attendance(actor=town.coordinator, registration_id=regs[0].id,
                                       attendance=Attendance.ATTENDED)
    await scheduling.record_attendance(actor=town.coordinator, registration_id=regs[1].id,
                                       attendance=Attendance.NO_SHOW)

    rows = await Registration.filter(session_id=session.id).order_by("id")
    assert [(r.status, r.attendance) for r in rows] == [
        (RegistrationStatus.CONFIRMED, Attendance.ATTENDED),
        (RegistrationStatus.CONFIRMED, Attendance.NO_SHOW),
    ]


async def test_a_past_session_refuses_ordinary_registrations(town):
    session = await past_session(town.coordinator)
    resident = await factories.resident(town.coordinator)
    with pytest.raises(DomainError) as e:
        await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id,
                                  source=RegistrationSource.PHONE)
    assert e.value.code == "SESSION_NOT_OPEN"


async def test_a_walk_in_to_a_full_running_session_is_refused(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=2)
    await register_all(town.coordinator, session.id, await residents(town.coordinator, 2))
    await let_session_start(session)
    walk_in = await factories.resident(town.coordinator)
    before = await counts(Registration)

    with pytest.raises(DomainError) as e:
        await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=walk_in.id,
                                  source=RegistrationSource.WALK_IN)

    assert e.value.code == "CAPACITY_FULL"
    assert await counts(Registration) == before
    assert await waitlist(session.id) == []


async def test_attendance_cannot_be_recorded_before_the_session_starts(town):
    session = await factories.session(town.coordinator, at(days=1, hour=10))
    [reg] = await register_all(town.coordinator, session.id, await residents(town.coordinator, 1))

    with pytest.raises(DomainError) as e:
        await scheduling.record_attendance(actor=town.coordinator, registration_id=reg.id,
                                           attendance=Attendance.ATTENDED)

    assert e.value.code == "SESSION_NOT_STARTED"
    assert (await reload(reg)).attendance is None


async def test_attendance_needs_a_confirmed_seat(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=1)
    _seated, waiting = await register_all(town.coordinator, session.id, await residents(town.coordinator, 2))
    await let_session_start(session)

    with pytest.raises(DomainError) as e:
        await scheduling.record_attendance(actor=town.coordinator, registration_id=waiting.id,
                                           attendance=Attendance.ATTENDED)

    assert e.value.code == "NOT_CONFIRMED"
    assert (await reload(waiting)).attendance is None
    assert (await reload(waiting)).status == RegistrationStatus.WAITLISTED


async def test_attendance_cannot_be_recorded_for_a_cancelled_session(town):
    session = await running_session(town.coordinator)
    [reg] = await register_all(town.coordinator, session.id, await residents(town.coordinator, 1),
                               source=RegistrationSource.WALK_IN)
    await scheduling.cancel_session(actor=town.coordinator, session_id=session.id, reason="停電")
    with pytest.raises(DomainError) as e:
        await scheduling.record_attendance(actor=town.coordinator, registration_id=reg.id,
                                           attendance=Attendance.ATTENDED)
    assert e.value.code == "SESSION_NOT_OPEN"
    assert (await reload(reg)).attendance is None


async def test_a_started_session_keeps_its_registrations(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=1)
    seated, waiting = await register_all(town.coordinator, session.id, await residents(town.coordinator, 2))
    await let_session_start(session)

    with pytest.raises(DomainError) as e:
        await scheduling.cancel_registration(actor=town.coordinator, registration_id=seated.id)

    assert e.value.code == "SESSION_NOT_OPEN"
    assert (await reload(seated)).status == RegistrationStatus.CONFIRMED
    assert (await reload(waiting)).status == RegistrationStatus.WAITLISTED


# --- scheduling, rescheduling, cancelling ---------------------------------------------------

@pytest.mark.parametrize("minutes", [0, -30, 12 * 60 + 1],
                         ids=["ends when it starts", "ends before it starts", "longer than 12 hours"])
async def test_a_session_must_end_after_it_starts(town, minutes):
    venue = await factories.venue(town.coordinator)
    course = await factories.course(town.coordinator)
    starts = at(days=3, hour=10)
    with pytest.raises(DomainError) as e:
        await scheduling.schedule_sessions(actor=town.coordinator, kind=SessionKind.CLASS, venue_id=venue.id,
                                           course_id=course.id, starts_at=starts,
                                           ends_at=starts + timedelta(minutes=minutes), capacity=10)
    assert e.value.code == "INVALID_TIME_RANGE"
    assert e.value.field == "ends_at"
    assert await Session.all().count() == 0


async def test_rescheduling_to_an_end_before_the_start_is_refused(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    with pytest.raises(DomainError) as e:
        await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id,
                                            starts_at=at(days=3, hour=14), ends_at=at(days=3, hour=13))
    assert e.value.code == "INVALID_TIME_RANGE"
    unchanged = await reload(session)
    assert (unchanged.starts_at, unchanged.ends_at, unchanged.sequence) == (session.starts_at, session.ends_at, 0)


async def test_a_weekly_series_keeps_the_local_wall_clock_time(town):
    venue = await factories.venue(town.coordinator)
    course = await factories.course(town.coordinator)
    starts = at(days=2, hour=13, minutes=30)

    sessions = await scheduling.schedule_sessions(
        actor=town.coordinator, kind=SessionKind.CLASS, venue_id=venue.id, course_id=course.id,
        starts_at=starts, ends_at=starts + timedelta(minutes=90), capacity=12, repeat_weekly=3,
        keep_closed_days=True)

    assert len(sessions) == 4
    stored = await Session.filter(id__in=[s.id for s in sessions]).order_by("starts_at")
    local_starts = [s.starts_at.astimezone(TOKYO) for s in stored]
    local_ends = [s.ends_at.astimezone(TOKYO) for s in stored]
    assert {(t.hour, t.minute) for t in local_starts} == {(13, 30)}
    assert {(t.hour, t.minute) for t in local_ends} == {(15, 0)}
    first_day = starts.astimezone(TOKYO).date()
    assert [t.date() for t in local_starts] == [first_day + timedelta(weeks=w) for w in range(4)]
    assert len({s.series_id for s in stored}) == 1 and stored[0].series_id is not None
    assert {s.capacity for s in stored} == {12}


async def test_a_weekly_series_keeps_the_wall_clock_time_across_a_daylight_saving_change(town):
    # Tokyo has no DST; a municipality zone that has one shows the series is not "start + 7 days".
    berlin = dataclasses.replace(town.coordinator, timezone="Europe/Berlin")
    venue = await factories.venue(berlin)
    course = await factories.course(berlin)
    zone = ZoneInfo("Europe/Berlin")
    starts = datetime(datetime.now(UTC).year + 1, 3, 17, 10, 0, tzinfo=zone)  # clocks go forward late March

    sessions = await scheduling.schedule_sessions(
        actor=berlin, kind=SessionKind.CLASS, venue_id=venue.id, course_id=course.id,
        starts_at=starts, ends_at=starts + timedelta(hours=2), repeat_weekly=3,
        keep_closed_days=True)

    local = [s.starts_at.astimezone(zone) for s in sessions]
    assert {(t.hour, t.minute) for t in local} == {(10, 0)}
    assert {t.utcoffset() for t in local} == {timedelta(hours=1), timedelta(hours=2)}


async def test_times_typed_without_a_zone_are_read_in_the_municipalitys_zone(town):
    venue = await factories.venue(town.coordinator)
    course = await factories.course(town.coordinator)
    day = (datetime.now(UTC) + timedelta(days=5)).date()
    naive = datetime(day.year, day.month, day.day, 10, 0)

    [session] = await scheduling.schedule_sessions(
        actor=town.coordinator, kind=SessionKind.CLASS, venue_id=venue.id, course_id=course.id,
        starts_at=naive, ends_at=naive + timedelta(hours=2))

    stored = await reload(session)
    assert stored.starts_at == datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC)
    assert stored.starts_at.astimezone(TOKYO).hour == 10


@pytest.mark.parametrize("repeat", [-1, 53])
async def test_a_weekly_series_has_at_most_a_year_of_repeats(town, repeat):
    venue = await factories.venue(town.coordinator)
    starts = at(days=3, hour=10)
    with pytest.raises(DomainError) as e:
        await scheduling.schedule_sessions(actor=town.coordinator, kind=SessionKind.HELP_SESSION, venue_id=venue.id,
                                           starts_at=starts, ends_at=starts + timedelta(hours=2),
                                           repeat_weekly=repeat)
    assert e.value.code == "BAD_USER_INPUT"
    assert await Session.all().count() == 0


async def test_moving_a_session_bumps_its_sequence_and_a_capacity_change_does_not(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=10)

    resized = await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id, capacity=12)
    assert (resized.capacity, resized.sequence) == (12, 0)

    moved = await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id,
                                                starts_at=at(days=4, hour=14))
    stored = await reload(moved)
    assert stored.sequence == 1
    assert stored.starts_at == at(days=4, hour=14)
    assert stored.ends_at - stored.starts_at == timedelta(hours=2), "moving the start keeps the length"

    same_time = await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id,
                                                    starts_at=stored.starts_at)
    assert same_time.sequence == 1, "no change, no new sequence"


async def test_changing_the_venue_bumps_the_sequence(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    other_venue = await factories.venue(town.coordinator)

    moved = await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id,
                                                venue_id=other_venue.id)

    stored = await reload(moved)
    assert (stored.venue_id, stored.sequence) == (other_venue.id, 1)


async def test_cancelling_a_session_bumps_its_sequence_and_marks_it_cancelled(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id,
                                        starts_at=at(days=3, hour=13))

    await scheduling.cancel_session(actor=town.coordinator, session_id=session.id, reason="講師の都合")

    stored = await reload(session)
    assert (stored.status, stored.sequence, stored.cancel_reason) == (SessionStatus.CANCELLED, 2, "講師の都合")
    with pytest.raises(DomainError) as e:
        await scheduling.cancel_session(actor=town.coordinator, session_id=session.id)
    assert e.value.code == "SESSION_NOT_OPEN"
    with pytest.raises(DomainError) as e:
        await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id, capacity=20)
    assert e.value.code == "SESSION_NOT_OPEN"
    assert (await reload(session)).sequence == 2


async def test_a_class_needs_a_course(town):
    venue = await factories.venue(town.coordinator)
    starts = at(days=3, hour=10)
    with pytest.raises(DomainError) as e:
        await scheduling.schedule_sessions(actor=town.coordinator, kind=SessionKind.CLASS, venue_id=venue.id,
                                           starts_at=starts, ends_at=starts + timedelta(hours=2))
    assert e.value.code == "COURSE_REQUIRED"
    assert await Session.all().count() == 0
    # A help session needs none.
    [help_session] = await scheduling.schedule_sessions(
        actor=town.coordinator, kind=SessionKind.HELP_SESSION, venue_id=venue.id,
        starts_at=starts, ends_at=starts + timedelta(hours=2))
    assert help_session.course_id is None


async def test_capacity_cannot_exceed_the_venue(town):
    venue = await factories.venue(town.coordinator, capacity=20)
    course = await factories.course(town.coordinator)
    starts = at(days=3, hour=10)
    with pytest.raises(DomainError) as e:
        await scheduling.schedule_sessions(actor=town.coordinator, kind=SessionKind.CLASS, venue_id=venue.id,
                                           course_id=course.id, starts_at=starts,
                                           ends_at=starts + timedelta(hours=2), capacity=21)
    assert e.value.code == "CAPACITY_EXCEEDS_VENUE"
    assert await Session.all().count() == 0

    session = await factories.session(town.coordinator, starts, capacity=20, venue_obj=venue)
    with pytest.raises(DomainError) as e:
        await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id, capacity=25)
    assert e.value.code == "CAPACITY_EXCEEDS_VENUE"
    assert (await reload(session)).capacity == 20


async def test_moving_a_class_to_a_smaller_venue_cannot_leave_more_seats_than_the_room_holds(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=30)
    small_room = await factories.venue(town.coordinator, capacity=12)

    with pytest.raises(DomainError) as e:
        await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id,
                                            venue_id=small_room.id)

    assert e.value.code == "CAPACITY_EXCEEDS_VENUE"
    stored = await reload(session)
    assert (stored.venue_id, stored.capacity, stored.sequence) == (session.venue_id, 30, 0)


# --- supporters and staffing ----------------------------------------------------------------

@pytest.mark.parametrize(("confirmed", "explicit", "required"), [
    (0, None, 1), (4, None, 1), (5, None, 2), (8, None, 2), (9, None, 3), (12, None, 3),
    (3, 2, 2), (9, 2, 3), (9, 5, 5),
])
async def test_required_supporters_is_one_per_four_confirmed_or_the_higher_explicit_number(
        town, confirmed, explicit, required):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=confirmed + 2,
                                      required_supporters=explicit)
    await register_all(town.coordinator, session.id, await residents(town.coordinator, confirmed))

    staff = await _staffing(town, session.id)

    assert staff.confirmed == confirmed
    assert staff.required == required


async def test_waitlisted_residents_do_not_raise_the_required_supporters(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=4)
    await register_all(town.coordinator, session.id, await residents(town.coordinator, 9))
    staff = await _staffing(town, session.id)
    assert (staff.confirmed, staff.waitlisted, staff.required, staff.seats_left) == (4, 5, 1, 0)


async def test_a_class_is_understaffed_until_enough_supporters_and_a_certified_lead(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=10)
    await register_all(town.coordinator, session.id, await residents(town.coordinator, 9))
    assert (await _staffing(town, session.id)).understaffed

    helpers = [await factories.supporter(town.coordinator, certified=False) for _ in range(3)]
    for helper in helpers:
        await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                          supporter_id=helper.id, role=AssignmentRole.ASSISTANT)
    staff = await _staffing(town, session.id)
    assert (staff.assigned, staff.required, staff.has_certified_lead) == (3, 3, False)
    assert staff.understaffed, "three helpers but nobody certified leads the class"

    lead = await factories.supporter(town.coordinator, certified=True)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id, supporter_id=lead.id,
                                      role=AssignmentRole.LEAD)
    staff = await _staffing(town, session.id)
    assert staff.has_certified_lead and not staff.understaffed


async def test_a_certified_supporter_assisting_does_not_count_as_the_lead(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    certified = await factories.supporter(town.coordinator, certified=True)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id, supporter_id=certified.id,
                                      role=AssignmentRole.ASSISTANT)
    assert (await _staffing(town, session.id)).understaffed


async def test_only_certified_supporters_can_lead(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    volunteer = await factories.supporter(town.coordinator, certified=False)

    with pytest.raises(DomainError) as e:
        await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                          supporter_id=volunteer.id, role=AssignmentRole.LEAD)

    assert e.value.code == "LEAD_NOT_CERTIFIED"
    assert e.value.field == "role"
    assert await Assignment.all().count() == 0


async def test_inactive_supporters_cannot_be_assigned(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    supporter = await factories.supporter(town.coordinator)
    await people.set_supporter_active(supporter_id=supporter.id, active=False, actor=town.coordinator)

    with pytest.raises(DomainError) as e:
        await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                          supporter_id=supporter.id, role=AssignmentRole.LEAD)
    assert e.value.code == "SUPPORTER_INACTIVE"
    assert await Assignment.all().count() == 0

    await people.set_supporter_active(supporter_id=supporter.id, active=True, actor=town.coordinator)
    assignment = await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                                   supporter_id=supporter.id, role=AssignmentRole.LEAD)
    assert assignment.role == AssignmentRole.LEAD


async def test_a_supporter_cannot_be_assigned_to_overlapping_sessions(town):
    supporter = await factories.supporter(town.coordinator)
    morning = await factories.session(town.coordinator, at(days=3, hour=10), hours=2)
    overlapping = await factories.session(town.coordinator, at(days=3, hour=11, minutes=30), hours=2)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=morning.id, supporter_id=supporter.id)

    with pytest.raises(DomainError) as e:
        await scheduling.assign_supporter(actor=town.coordinator, session_id=overlapping.id,
                                          supporter_id=supporter.id)

    assert e.value.code == "SUPPORTER_DOUBLE_BOOKED"
    assert await Assignment.filter(supporter_id=supporter.id).values_list("session_id", flat=True) == [morning.id]


async def test_a_supporter_cannot_be_assigned_twice_to_one_session(town):
    supporter = await factories.supporter(town.coordinator)
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id, supporter_id=supporter.id)
    with pytest.raises(DomainError) as e:
        await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id, supporter_id=supporter.id)
    assert e.value.code == "ALREADY_ASSIGNED"
    assert await Assignment.all().count() == 1


async def test_back_to_back_sessions_can_share_a_supporter(town):
    supporter = await factories.supporter(town.coordinator)
    morning = await factories.session(town.coordinator, at(days=3, hour=10), hours=2)
    afternoon = await factories.session(town.coordinator, at(days=3, hour=12), hours=2)
    assert morning.ends_at == afternoon.starts_at

    await scheduling.assign_supporter(actor=town.coordinator, session_id=morning.id, supporter_id=supporter.id)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=afternoon.id, supporter_id=supporter.id)

    assert await Assignment.filter(supporter_id=supporter.id).count() == 2


async def test_a_cancelled_sessions_assignment_does_not_block_the_supporter(town):
    supporter = await factories.supporter(town.coordinator)
    called_off = await factories.session(town.coordinator, at(days=3, hour=10))
    replacement = await factories.session(town.coordinator, at(days=3, hour=10))
    await scheduling.assign_supporter(actor=town.coordinator, session_id=called_off.id, supporter_id=supporter.id)
    await scheduling.cancel_session(actor=town.coordinator, session_id=called_off.id, reason="会場の都合")

    assignment = await scheduling.assign_supporter(actor=town.coordinator, session_id=replacement.id,
                                                   supporter_id=supporter.id)

    assert assignment.session_id == replacement.id


async def test_a_cancelled_session_cannot_be_staffed_upcoming_or_past(town):
    """A finished session can be staffed (back-filled from the paper sheet, see
    test_door_and_staffing.py); a cancelled one never, also once its time has passed."""
    supporter = await factories.supporter(town.coordinator)
    cancelled = await factories.session(town.coordinator, at(days=3, hour=10))
    await scheduling.cancel_session(actor=town.coordinator, session_id=cancelled.id)
    cancelled_long_ago = await factories.session(town.coordinator, at(days=4, hour=10))
    await scheduling.cancel_session(actor=town.coordinator, session_id=cancelled_long_ago.id)
    await Session.filter(id=cancelled_long_ago.id).update(starts_at=at(days=-3, hour=10),
                                                          ends_at=at(days=-3, hour=12))
    for session in (cancelled, cancelled_long_ago):
        with pytest.raises(DomainError) as e:
            await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                              supporter_id=supporter.id)
        assert e.value.code == "SESSION_NOT_OPEN"
    assert await Assignment.all().count() == 0


async def test_rescheduling_into_a_clash_for_an_assigned_supporter_is_refused(town):
    supporter = await factories.supporter(town.coordinator)
    morning = await factories.session(town.coordinator, at(days=3, hour=10))
    afternoon = await factories.session(town.coordinator, at(days=3, hour=14))
    for session in (morning, afternoon):
        await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id, supporter_id=supporter.id)
    before = await counts(AuditEntry)

    with pytest.raises(DomainError) as e:
        await scheduling.reschedule_session(actor=town.coordinator, session_id=afternoon.id,
                                            starts_at=at(days=3, hour=11))

    assert e.value.code == "SUPPORTER_DOUBLE_BOOKED"
    stored = await reload(afternoon)
    assert (stored.starts_at, stored.sequence) == (afternoon.starts_at, 0)
    assert await counts(AuditEntry) == before
    # Moving within its own slot (overlapping only itself) is fine.
    moved = await scheduling.reschedule_session(actor=town.coordinator, session_id=afternoon.id,
                                                starts_at=at(days=3, hour=13))
    assert moved.sequence == 1


async def test_understaffed_sessions_lists_exactly_the_understaffed_ones_in_range(town, other_town):
    lead = await factories.supporter(town.coordinator, certified=True)
    helper = await factories.supporter(town.coordinator, certified=False)
    staffed_class = await factories.session(town.coordinator, at(days=2, hour=10))
    await scheduling.assign_supporter(actor=town.coordinator, session_id=staffed_class.id, supporter_id=lead.id,
                                      role=AssignmentRole.LEAD)
    unstaffed_class = await factories.session(town.coordinator, at(days=3, hour=10))
    busy_class = await factories.session(town.coordinator, at(days=4, hour=10), capacity=10)
    await register_all(town.coordinator, busy_class.id, await residents(town.coordinator, 6))
    await scheduling.assign_supporter(actor=town.coordinator, session_id=busy_class.id, supporter_id=lead.id,
                                      role=AssignmentRole.LEAD)
    help_session = await factories.session(town.coordinator, at(days=5, hour=10), kind=SessionKind.HELP_SESSION)
    staffed_help = await factories.session(town.coordinator, at(days=6, hour=10), kind=SessionKind.HELP_SESSION)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=staffed_help.id, supporter_id=helper.id)
    cancelled = await factories.session(town.coordinator, at(days=7, hour=10))
    await scheduling.cancel_session(actor=town.coordinator, session_id=cancelled.id)
    out_of_range = await factories.session(town.coordinator, at(days=40, hour=10))
    await factories.session(other_town.coordinator, at(days=3, hour=10))  # foreign, understaffed

    found = await staffing.understaffed_session_ids(town.municipality.id, at(days=1), at(days=30))

    assert sorted(found) == sorted([unstaffed_class.id, busy_class.id, help_session.id])
    assert out_of_range.id in await staffing.understaffed_session_ids(town.municipality.id, at(days=1), None)


# --- roles and tenancy ----------------------------------------------------------------------

async def test_a_planner_cannot_change_anything(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    resident = await factories.resident(town.coordinator)
    supporter = await factories.supporter(town.coordinator)
    reg = await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id)
    venue = await factories.venue(town.coordinator)
    planner = town.planner
    starts = at(days=5, hour=10)
    attempts = {
        "create_venue": scheduling.create_venue(actor=planner, name="会場X", kind=VenueKind.LIBRARY),
        "schedule_sessions": scheduling.schedule_sessions(
            actor=planner, kind=SessionKind.HELP_SESSION, venue_id=venue.id, starts_at=starts,
            ends_at=starts + timedelta(hours=1)),
        "reschedule_session": scheduling.reschedule_session(actor=planner, session_id=session.id, capacity=12),
        "cancel_session": scheduling.cancel_session(actor=planner, session_id=session.id),
        "register": scheduling.register(actor=planner, session_id=session.id,
                                        resident_id=(await factories.resident(town.coordinator)).id),
        "cancel_registration": scheduling.cancel_registration(actor=planner, registration_id=reg.id),
        "record_attendance": scheduling.record_attendance(actor=planner, registration_id=reg.id,
                                                          attendance=Attendance.ATTENDED),
        "assign_supporter": scheduling.assign_supporter(actor=planner, session_id=session.id,
                                                        supporter_id=supporter.id),
    }
    before = await counts(Session, Registration, Assignment, AuditEntry)
    codes = {}
    for name, attempt in attempts.items():
        with pytest.raises(DomainError) as e:
            await attempt
        codes[name] = e.value.code

    assert codes == dict.fromkeys(attempts, "FORBIDDEN")
    assert await counts(Session, Registration, Assignment, AuditEntry) == before
    assert (await reload(session)).capacity == 10


async def test_another_municipalitys_ids_are_not_found(town, other_town):
    foreign_session = await factories.session(other_town.coordinator, at(days=3, hour=10))
    foreign_resident = await factories.resident(other_town.coordinator)
    foreign_supporter = await factories.supporter(other_town.coordinator)
    foreign_reg = await scheduling.register(actor=other_town.coordinator, session_id=foreign_session.id,
                                            resident_id=foreign_resident.id)
    foreign_venue = await factories.venue(other_town.coordinator)
    foreign_course = await factories.course(other_town.coordinator)
    own_session = await factories.session(town.coordinator, at(days=3, hour=14))
    own_resident = await factories.resident(town.coordinator)
    me = town.coordinator
    attempts = [
        scheduling.register(actor=me, session_id=foreign_session.id, resident_id=own_resident.id),
        scheduling.register(actor=me, session_id=own_session.id, resident_id=foreign_resident.id),
        scheduling.cancel_registration(actor=me, registration_id=foreign_reg.id),
        scheduling.record_attendance(actor=me, registration_id=foreign_reg.id, attendance=Attendance.NO_SHOW),
        scheduling.reschedule_session(actor=me, session_id=foreign_session.id, capacity=2),
        scheduling.cancel_session(actor=me, session_id=foreign_session.id),
        scheduling.assign_supporter(actor=me, session_id=foreign_session.id,
                                    supporter_id=(await factories.supporter(me)).id),
        scheduling.assign_supporter(actor=me, session_id=own_session.id, supporter_id=foreign_supporter.id),
        people.set_supporter_active(supporter_id=foreign_supporter.id, active=False, actor=me),
        scheduling.reschedule_session(actor=me, session_id=own_session.id, venue_id=foreign_venue.id),
        scheduling.schedule_sessions(actor=me, kind=SessionKind.CLASS, venue_id=foreign_venue.id,
                                     course_id=(await factories.course(me)).id, starts_at=at(days=9, hour=10),
                                     ends_at=at(days=9, hour=12)),
        scheduling.schedule_sessions(actor=me, kind=SessionKind.CLASS, venue_id=(await factories.venue(me)).id,
                                     course_id=foreign_course.id, starts_at=at(days=9, hour=10),
                                     ends_at=at(days=9, hour=12)),
    ]
    before = await counts(Session, Registration, Assignment)
    for attempt in attempts:
        with pytest.raises(DomainError) as e:
            await attempt
        assert e.value.code == "NOT_FOUND"

    assert await counts(Session, Registration, Assignment) == before
    assert (await reload(own_session)).venue_id == own_session.venue_id
    stored = await reload(foreign_session)
    assert (stored.status, stored.capacity) == (SessionStatus.SCHEDULED, 10)
    assert (await reload(foreign_reg)).status == RegistrationStatus.CONFIRMED
    assert (await reload(foreign_supporter)).active
    assert foreign_session.id not in [s.id for s in await scheduling.sessions_query(me)]
    assert await scheduling.registrations_query(me) == []


async def test_scheduling_changes_are_audited_with_the_actor_and_object(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=1)
    first, second = await register_all(town.coordinator, session.id, await residents(town.coordinator, 2))
    supporter = await factories.supporter(town.coordinator)
    assignment = await scheduling.assign_supporter(actor=town.admin, session_id=session.id,
                                                   supporter_id=supporter.id)
    await scheduling.cancel_registration(actor=town.admin, registration_id=first.id)
    await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id, starts_at=at(days=4, hour=10))
    await scheduling.cancel_session(actor=town.admin, session_id=session.id)

    expected = [
        ("session.schedule", session.id, town.coordinator.email),
        ("registration.create", first.id, town.coordinator.email),
        ("registration.create", second.id, town.coordinator.email),
        ("assignment.create", assignment.id, town.admin.email),
        ("registration.cancel", first.id, town.admin.email),
        ("session.reschedule", session.id, town.coordinator.email),
        ("session.cancel", session.id, town.admin.email),
    ]
    for action, object_id, email in expected:
        await assert_audited_once(action, object_id, email, town.municipality.id)
