"""Follow-ups, tested at the service level: the phone call for a promoted resident who gets no
SMS, the check-in after a class or an unresolved visit, completing tasks, and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factories
import pytest
from factories import TOKYO, at
from helpers_scheduling import (
    assert_audited_once,
    audit_entries,
    counts,
    let_session_start,
    past_session,
    register_all,
    reload,
    residents,
    running_session,
)

from divide_support.accounts.models import Municipality
from divide_support.audit.models import AuditEntry
from divide_support.core.errors import DomainError
from divide_support.core.ids import to_global_id
from divide_support.followups import service as followups
from divide_support.followups.models import (
    FollowUp,
    FollowUpChannel,
    FollowUpOutcome,
    FollowUpPurpose,
    FollowUpStatus,
)
from divide_support.people import service as people
from divide_support.people.models import ContactPreference, Resident
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    Attendance,
    CourseTopic,
    RegistrationSource,
    RegistrationStatus,
    SessionKind,
    Visit,
    VisitOutcome,
)


def tokyo_today():
    return datetime.now(UTC).astimezone(TOKYO).date()


def session_day(session):
    return session.starts_at.astimezone(TOKYO).date()


async def _sms_resident(actor, **changes) -> Resident:
    """A resident who can get SMS, then (optionally) one thing changed."""
    resident = await factories.resident(actor, sms=True)
    assert people.can_receive_sms(resident)
    if changes:
        await Resident.filter(id=resident.id).update(**changes)
        resident = await Resident.get(id=resident.id)
    return resident


async def _attending(town, *, kind=SessionKind.CLASS, resident=None, session=None):
    """A WALK_IN registration at a session that took place two days ago."""
    session = session or await past_session(town.coordinator, kind=kind)
    resident = resident or await factories.resident(town.coordinator)
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id, source=RegistrationSource.WALK_IN)
    return session, resident, registration


async def _fill_and_wait(town, waiting_resident):
    """A full session (capacity 1) with `waiting_resident` first on the waitlist."""
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=1)
    [seated] = await residents(town.coordinator, 1, sms=True)
    seat, place = await register_all(town.coordinator, session.id, [seated, waiting_resident])
    assert place.status == RegistrationStatus.WAITLISTED
    return session, seat, place


# --- a seat became free -----------------------------------------------------------------------

@pytest.mark.parametrize("changes", [
    {"phone": None, "contact_preference": ContactPreference.PHONE_CALL, "sms_consent": False},
    {"sms_consent": False},
    {"contact_preference": ContactPreference.PHONE_CALL},
    {"contact_preference": ContactPreference.POST},
    {"sms_opted_out": True},
], ids=["no mobile", "no consent", "prefers phone calls", "prefers post", "opted out"])
async def test_a_promoted_resident_who_cannot_get_sms_gets_a_phone_call_the_same_day(town, changes):
    waiting_resident = await _sms_resident(town.coordinator, **changes)
    _session, seat, place = await _fill_and_wait(town, waiting_resident)

    await scheduling.cancel_registration(actor=town.coordinator, registration_id=seat.id)

    assert (await reload(place)).status == RegistrationStatus.CONFIRMED
    [task] = await FollowUp.all()
    assert task.resident_id == waiting_resident.id
    assert task.registration_id == place.id
    assert task.purpose == FollowUpPurpose.SEAT_AVAILABLE
    assert task.channel == FollowUpChannel.PHONE_CALL
    assert task.status == FollowUpStatus.OPEN
    assert task.due_on == tokyo_today()
    assert task.municipality_id == town.municipality.id


async def test_a_promoted_resident_who_gets_sms_gets_no_phone_call_task(town):
    waiting_resident = await _sms_resident(town.coordinator)
    _session, seat, place = await _fill_and_wait(town, waiting_resident)

    await scheduling.cancel_registration(actor=town.coordinator, registration_id=seat.id)

    assert (await reload(place)).status == RegistrationStatus.CONFIRMED
    assert await FollowUp.all().count() == 0


async def test_raising_capacity_also_phones_promoted_residents_without_sms(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=1)
    seated = await factories.resident(town.coordinator, sms=True)
    by_phone = await factories.resident(town.coordinator)  # prefers phone calls, no mobile
    by_sms = await factories.resident(town.coordinator, sms=True)
    _, phone_place, sms_place = await register_all(town.coordinator, session.id, [seated, by_phone, by_sms])

    await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id, capacity=3)

    tasks = await FollowUp.all()
    assert [(t.resident_id, t.registration_id, t.purpose, t.channel) for t in tasks] == [
        (by_phone.id, phone_place.id, FollowUpPurpose.SEAT_AVAILABLE, FollowUpChannel.PHONE_CALL)]
    assert (await reload(sms_place)).status == RegistrationStatus.CONFIRMED


async def test_cancelling_a_waitlist_place_creates_no_follow_up(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=1)
    _, first_waiting, second_waiting = await register_all(town.coordinator, session.id,
                                                          await residents(town.coordinator, 3))
    await scheduling.cancel_registration(actor=town.coordinator, registration_id=first_waiting.id)
    assert await FollowUp.all().count() == 0
    assert (await reload(second_waiting)).waitlist_position == 1


# --- after a class ----------------------------------------------------------------------------

async def test_attending_a_class_plans_a_follow_up_fourteen_days_after_the_session_date(town):
    session, resident, registration = await _attending(town)

    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=Attendance.ATTENDED)

    [task] = await FollowUp.all()
    assert task.purpose == FollowUpPurpose.AFTER_CLASS
    assert task.status == FollowUpStatus.OPEN
    assert task.resident_id == resident.id
    assert task.registration_id == registration.id
    assert task.due_on == session_day(session) + timedelta(days=14)
    assert task.channel == FollowUpChannel.PHONE_CALL, "the resident prefers phone calls"


async def test_the_after_class_follow_up_uses_the_local_session_date(town):
    # 00:30 Tokyo time is still the previous day in UTC: the local date counts.
    starts = at(days=-3, hour=0, minutes=30)
    assert starts.date() != starts.astimezone(TOKYO).date()
    session = await factories.session(town.coordinator, starts, hours=1)
    _, _, registration = await _attending(town, session=session)

    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=Attendance.ATTENDED)

    [task] = await FollowUp.all()
    assert task.due_on == starts.astimezone(TOKYO).date() + timedelta(days=14)


async def test_the_follow_up_delay_is_a_municipality_setting(town, other_town):
    await Municipality.filter(id=town.municipality.id).update(follow_up_days=30)
    session, _, registration = await _attending(town)

    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=Attendance.ATTENDED)

    [task] = await FollowUp.all()
    assert task.due_on == session_day(session) + timedelta(days=30)
    # The other town keeps its default.
    foreign_session, _, foreign_reg = await _attending(other_town)
    await scheduling.record_attendance(actor=other_town.coordinator, registration_id=foreign_reg.id,
                                       attendance=Attendance.ATTENDED)
    foreign_task = await FollowUp.get(registration_id=foreign_reg.id)
    assert foreign_task.due_on == session_day(foreign_session) + timedelta(days=14)


async def test_the_after_class_follow_up_uses_the_residents_preferred_channel(town):
    session = await past_session(town.coordinator, capacity=None)
    by_sms = await factories.resident(town.coordinator, sms=True)
    by_post = await people.create_resident(actor=town.coordinator, fields=people.ResidentFields(
        family_name="佐藤", given_name="一郎", contact_preference=ContactPreference.POST))
    channels = {}
    for resident in (by_sms, by_post):
        _, _, registration = await _attending(town, session=session, resident=resident)
        await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                           attendance=Attendance.ATTENDED)
        channels[resident.id] = (await FollowUp.get(registration_id=registration.id)).channel
    assert channels == {by_sms.id: FollowUpChannel.SMS, by_post.id: FollowUpChannel.POST}


async def test_changing_attended_to_no_show_cancels_the_follow_up(town):
    _, _, registration = await _attending(town)
    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=Attendance.ATTENDED)

    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=Attendance.NO_SHOW)

    [task] = await FollowUp.all()
    assert task.status == FollowUpStatus.CANCELLED
    assert (await reload(registration)).checked_in_at is None


async def test_correcting_no_show_back_to_attended_plans_a_fresh_follow_up(town):
    _, _, registration = await _attending(town)
    for attendance in (Attendance.ATTENDED, Attendance.NO_SHOW, Attendance.ATTENDED):
        await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                           attendance=attendance)
    statuses = sorted(str(t.status) for t in await FollowUp.filter(registration_id=registration.id))
    assert statuses == ["CANCELLED", "OPEN"]


async def test_recording_attended_twice_does_not_duplicate_the_follow_up(town):
    _, _, registration = await _attending(town)
    for _ in range(3):
        await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                           attendance=Attendance.ATTENDED)
    assert await FollowUp.filter(registration_id=registration.id).count() == 1


async def test_a_no_show_plans_no_follow_up(town):
    _, _, registration = await _attending(town)
    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=Attendance.NO_SHOW)
    assert await FollowUp.all().count() == 0


async def test_attending_a_help_session_plans_no_follow_up(town):
    _, _, registration = await _attending(town, kind=SessionKind.HELP_SESSION)
    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=Attendance.ATTENDED)
    assert (await reload(registration)).attendance == Attendance.ATTENDED
    assert await FollowUp.all().count() == 0


# --- after a visit ----------------------------------------------------------------------------

async def test_a_visit_needing_follow_up_plans_one_in_seven_days(town):
    session = await running_session(town.coordinator, kind=SessionKind.HELP_SESSION, capacity=None)
    resident = await factories.resident(town.coordinator)

    visit = await scheduling.record_visit(actor=town.coordinator, data=scheduling.VisitInput(
        session_id=session.id, resident_id=resident.id, topic=CourseTopic.MY_NUMBER_CARD,
        outcome=VisitOutcome.NEEDS_FOLLOW_UP, notes="マイナポータルのログインで止まった"))

    [task] = await FollowUp.all()
    assert task.visit_id == visit.id
    assert task.resident_id == resident.id
    assert task.purpose == FollowUpPurpose.AFTER_VISIT
    assert task.status == FollowUpStatus.OPEN
    assert task.due_on == session_day(session) + timedelta(days=7)


@pytest.mark.parametrize("outcome", [VisitOutcome.RESOLVED, VisitOutcome.PARTLY_RESOLVED])
async def test_a_resolved_visit_plans_no_follow_up(town, outcome):
    session = await running_session(town.coordinator, kind=SessionKind.HELP_SESSION, capacity=None)
    resident = await factories.resident(town.coordinator)
    await scheduling.record_visit(actor=town.coordinator, data=scheduling.VisitInput(
        session_id=session.id, resident_id=resident.id, topic=CourseTopic.DEVICE_BASICS, outcome=outcome))
    assert await Visit.all().count() == 1
    assert await FollowUp.all().count() == 0


async def test_an_anonymous_visit_keeps_only_the_age(town):
    session = await running_session(town.coordinator, kind=SessionKind.HELP_SESSION, capacity=None)
    visit = await scheduling.record_visit(actor=town.coordinator, data=scheduling.VisitInput(
        session_id=session.id, topic=CourseTopic.SECURITY, outcome=VisitOutcome.RESOLVED, age_at_visit=78))
    stored = await reload(visit)
    assert (stored.resident_id, stored.age_at_visit) == (None, 78)


async def test_an_anonymous_visit_cannot_need_a_follow_up(town):
    session = await running_session(town.coordinator, kind=SessionKind.HELP_SESSION, capacity=None)
    before = await counts(Visit, FollowUp, AuditEntry)

    with pytest.raises(DomainError) as e:
        await scheduling.record_visit(actor=town.coordinator, data=scheduling.VisitInput(
            session_id=session.id, topic=CourseTopic.CASHLESS, outcome=VisitOutcome.NEEDS_FOLLOW_UP,
            age_at_visit=81))

    assert e.value.code == "RESIDENT_REQUIRED"
    assert e.value.field == "resident_id"
    assert await counts(Visit, FollowUp, AuditEntry) == before


async def test_visits_belong_to_help_sessions(town):
    session = await running_session(town.coordinator, kind=SessionKind.CLASS)
    resident = await factories.resident(town.coordinator)
    with pytest.raises(DomainError) as e:
        await scheduling.record_visit(actor=town.coordinator, data=scheduling.VisitInput(
            session_id=session.id, resident_id=resident.id, topic=CourseTopic.DEVICE_BASICS,
            outcome=VisitOutcome.NEEDS_FOLLOW_UP))
    assert e.value.code == "WRONG_SESSION_KIND"
    assert await counts(Visit, FollowUp) == {"Visit": 0, "FollowUp": 0}


async def test_a_visit_cannot_be_recorded_before_the_help_session_starts(town):
    session = await factories.session(town.coordinator, at(days=2, hour=10), kind=SessionKind.HELP_SESSION)
    with pytest.raises(DomainError) as e:
        await scheduling.record_visit(actor=town.coordinator, data=scheduling.VisitInput(
            session_id=session.id, topic=CourseTopic.DEVICE_BASICS, outcome=VisitOutcome.RESOLVED,
            age_at_visit=70))
    assert e.value.code == "SESSION_NOT_STARTED"
    await let_session_start(session)
    await scheduling.record_visit(actor=town.coordinator, data=scheduling.VisitInput(
        session_id=session.id, topic=CourseTopic.DEVICE_BASICS, outcome=VisitOutcome.RESOLVED, age_at_visit=70))
    assert await Visit.all().count() == 1


# --- completing follow-ups --------------------------------------------------------------------

async def _open_task(town) -> FollowUp:
    _, _, registration = await _attending(town)
    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=Attendance.ATTENDED)
    return await FollowUp.get(registration_id=registration.id)


async def test_completing_a_follow_up_records_the_outcome_and_closes_it(town):
    task = await _open_task(town)

    done = await followups.complete_follow_up(follow_up_id=task.id, outcome=FollowUpOutcome.USES_INDEPENDENTLY,
                                              actor=town.coordinator, notes="LINEで家族と連絡できている")

    stored = await reload(done)
    assert stored.status == FollowUpStatus.DONE
    assert stored.outcome == FollowUpOutcome.USES_INDEPENDENTLY
    assert stored.completed_at is not None
    assert abs(stored.completed_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert "LINEで家族と連絡できている" in stored.notes


async def test_a_follow_up_can_be_completed_only_once(town):
    task = await _open_task(town)
    await followups.complete_follow_up(follow_up_id=task.id, outcome=FollowUpOutcome.NOT_REACHED,
                                       actor=town.coordinator)
    first = await reload(task)
    before = await counts(AuditEntry)

    with pytest.raises(DomainError) as e:
        await followups.complete_follow_up(follow_up_id=task.id, outcome=FollowUpOutcome.USES_INDEPENDENTLY,
                                           actor=town.admin)

    assert e.value.code == "FOLLOW_UP_CLOSED"
    again = await reload(task)
    assert (again.outcome, again.completed_at) == (FollowUpOutcome.NOT_REACHED, first.completed_at)
    assert await counts(AuditEntry) == before


async def test_a_cancelled_follow_up_cannot_be_completed(town):
    _, _, registration = await _attending(town)
    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=Attendance.ATTENDED)
    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=Attendance.NO_SHOW)
    task = await FollowUp.get(registration_id=registration.id)
    with pytest.raises(DomainError) as e:
        await followups.complete_follow_up(follow_up_id=task.id, outcome=FollowUpOutcome.DECLINED,
                                           actor=town.coordinator)
    assert e.value.code == "FOLLOW_UP_CLOSED"
    assert (await reload(task)).status == FollowUpStatus.CANCELLED


async def test_a_manual_follow_up_must_concern_the_residents_own_registration(town):
    _, _, registration = await _attending(town)
    someone_else = await factories.resident(town.coordinator)
    with pytest.raises(DomainError) as e:
        await followups.schedule_follow_up(resident_id=someone_else.id, due_on=tokyo_today(),
                                           channel=FollowUpChannel.PHONE_CALL, actor=town.coordinator,
                                           registration_id=registration.id)
    assert e.value.code == "MISMATCH"
    assert await FollowUp.all().count() == 0


async def test_a_planner_can_neither_see_nor_complete_follow_ups(town):
    task = await _open_task(town)
    with pytest.raises(DomainError) as e:
        await followups.complete_follow_up(follow_up_id=task.id, outcome=FollowUpOutcome.DECLINED,
                                           actor=town.planner)
    assert e.value.code == "FORBIDDEN"
    with pytest.raises(DomainError) as e:
        followups.follow_ups_query(town.planner)
    assert e.value.code == "FORBIDDEN"
    assert (await reload(task)).status == FollowUpStatus.OPEN


async def test_another_municipalitys_follow_ups_are_not_found(town, other_town):
    foreign_task = await _open_task(other_town)
    with pytest.raises(DomainError) as e:
        await followups.complete_follow_up(follow_up_id=foreign_task.id, outcome=FollowUpOutcome.DECLINED,
                                           actor=town.coordinator)
    assert e.value.code == "NOT_FOUND"
    assert (await reload(foreign_task)).status == FollowUpStatus.OPEN
    assert await followups.follow_ups_query(town.coordinator) == []


# --- audit --------------------------------------------------------------------------------------

async def test_follow_up_changes_are_audited_with_the_actor_and_object(town):
    _session, resident, registration = await _attending(town)
    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=Attendance.ATTENDED)
    task = await FollowUp.get(registration_id=registration.id)
    await followups.complete_follow_up(follow_up_id=task.id, outcome=FollowUpOutcome.NEEDS_MORE_HELP,
                                       actor=town.admin)
    manual = await followups.schedule_follow_up(resident_id=resident.id, due_on=tokyo_today() + timedelta(days=3),
                                                channel=FollowUpChannel.VISIT, actor=town.admin)
    help_session = await running_session(town.coordinator, kind=SessionKind.HELP_SESSION, capacity=None)
    visit = await scheduling.record_visit(actor=town.coordinator, data=scheduling.VisitInput(
        session_id=help_session.id, resident_id=resident.id, topic=CourseTopic.CITY_ONLINE_SERVICES,
        outcome=VisitOutcome.NEEDS_FOLLOW_UP))
    visit_task = await FollowUp.get(visit_id=visit.id)

    expected = [
        ("registration.attendance", registration.id, town.coordinator.email),
        ("followup.create", task.id, town.coordinator.email),
        ("followup.complete", task.id, town.admin.email),
        ("followup.create", manual.id, town.admin.email),
        ("visit.create", visit.id, town.coordinator.email),
        ("followup.create", visit_task.id, town.coordinator.email),
    ]
    for action, object_id, email in expected:
        await assert_audited_once(action, object_id, email, town.municipality.id)
    [complete] = await audit_entries("followup.complete", task.id)
    assert complete.details == {"outcome": "NEEDS_MORE_HELP"}
    assert complete.actor_role == "ADMIN"


# --- the outcome and the next step in one go ----------------------------------------------------

COMPLETE = """mutation ($input: CompleteFollowUpInput!) { completeFollowUp(input: $input) {
  followUp { id status outcome } errors { code message field } } }"""


async def test_the_outcome_and_the_next_check_are_recorded_together(town, gql):
    task = await _open_task(town)
    next_week = tokyo_today() + timedelta(days=7)
    data = await gql().data(COMPLETE, {"input": {
        "followUpId": to_global_id("FollowUp", task.id), "outcome": "NEEDS_MORE_HELP",
        "nextDueOn": next_week.isoformat(), "nextChannel": "PHONE_CALL"}})
    assert data["completeFollowUp"]["errors"] == []
    assert data["completeFollowUp"]["followUp"]["status"] == "DONE"
    [following] = await FollowUp.filter(status=FollowUpStatus.OPEN)
    assert (following.resident_id, following.due_on, following.channel, following.purpose) == (
        task.resident_id, next_week, FollowUpChannel.PHONE_CALL, FollowUpPurpose.MANUAL)
    assert following.registration_id == task.registration_id
    [created] = await AuditEntry.filter(action="followup.create", object_ids=[following.id])
    assert created.details == {"purpose": "MANUAL", "after": task.id}


@pytest.mark.parametrize(("next_step", "field", "words"), [
    ({"nextDueOn": "2000-01-01", "nextChannel": "PHONE_CALL"}, "nextDueOn", "今日以降"),
    ({"nextChannel": "PHONE_CALL"}, "nextDueOn", "両方"),
    ({"nextDueOn": "TODAY"}, "nextChannel", "両方"),
])
async def test_a_refused_next_step_records_no_outcome_either(town, gql, next_step, field, words):
    task = await _open_task(town)
    if next_step.get("nextDueOn") == "TODAY":
        next_step = {**next_step, "nextDueOn": tokyo_today().isoformat()}
    data = await gql().data(COMPLETE, {"input": {
        "followUpId": to_global_id("FollowUp", task.id), "outcome": "NOT_REACHED", **next_step}})
    [error] = data["completeFollowUp"]["errors"]
    assert error["field"] == ["input", field] and words in error["message"]
    assert (await reload(task)).status == FollowUpStatus.OPEN
    assert await FollowUp.all().count() == 1
