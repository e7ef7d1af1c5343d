"""Situations at the door and in the staffing list that staff meet every week."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import factories
import pytest
from factories import at
from helpers_scheduling import let_session_start, past_session, register_all, residents, waitlist

from divide_support.audit.models import AuditEntry
from divide_support.core.errors import DomainError
from divide_support.core.ids import to_global_id
from divide_support.followups.models import FollowUp, FollowUpPurpose
from divide_support.messaging.models import Message
from divide_support.people import service as people
from divide_support.reports import service as reports
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    AssignmentRole,
    Attendance,
    RegistrationSource,
    RegistrationStatus,
    Session,
    Venue,
)
from divide_support.scheduling.staffing import staffing_for, understaffed_session_ids


async def test_a_waitlisted_resident_at_the_door_of_a_full_class_is_seated_by_raising_capacity(town):
    actor = town.coordinator
    session = await factories.session(actor, at(days=2, hour=10), capacity=1)
    seated, waiting = await residents(actor, 2)  # neither can get SMS
    await register_all(actor, session.id, [seated, waiting])
    await let_session_start(session)
    with pytest.raises(DomainError) as refused:
        await scheduling.register(actor=actor, session_id=session.id, resident_id=waiting.id,
                                  source=RegistrationSource.WALK_IN)
    assert refused.value.code == "ALREADY_REGISTERED"
    await scheduling.reschedule_session(actor=actor, session_id=session.id, capacity=2)
    rows = await scheduling.registrations_query(actor, session_id=session.id)
    assert [r.status for r in rows] == [RegistrationStatus.CONFIRMED] * 2
    assert await waitlist(session.id) == []
    # they are standing at the door: no "call to tell them they have a seat" task
    assert await FollowUp.filter(purpose=FollowUpPurpose.SEAT_AVAILABLE).count() == 0


async def test_finished_sessions_are_never_listed_as_understaffed(town):
    actor = town.coordinator
    done = await past_session(actor)
    upcoming = await factories.session(actor, at(days=5, hour=10))
    ids = await understaffed_session_ids(actor.municipality_id, None, None)
    assert ids == [upcoming.id]
    staffing = await staffing_for(actor.municipality_id, [done.id])
    assert staffing[done.id].understaffed is False


async def test_a_supporter_who_left_no_longer_counts_towards_staffing(town):
    actor = town.coordinator
    session = await factories.session(actor, at(days=5, hour=10))
    lead = await factories.supporter(actor, certified=True)
    await scheduling.assign_supporter(actor=actor, session_id=session.id, supporter_id=lead.id,
                                      role=AssignmentRole.LEAD)
    assert (await staffing_for(actor.municipality_id, [session.id]))[session.id].understaffed is False
    await people.set_supporter_active(supporter_id=lead.id, active=False, actor=actor)
    after = (await staffing_for(actor.municipality_id, [session.id]))[session.id]
    assert (after.assigned, after.has_certified_lead, after.understaffed) == (0, False, True)


async def test_two_colleagues_creating_the_same_venue_at_once_get_one_venue_and_a_clear_error(town):
    async def create():
        return await scheduling.create_venue(actor=town.coordinator, name="南公民館",
                                             kind=scheduling.VenueKind.COMMUNITY_CENTRE)

    results = await asyncio.gather(*(create() for _ in range(5)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(e, DomainError) and e.code == "DUPLICATE" for e in errors), errors
    assert len(errors) == 4
    assert await Venue.filter(name="南公民館").count() == 1


async def test_control_characters_in_text_are_refused_with_the_field(town):
    with pytest.raises(DomainError) as refused:
        await factories.resident(town.coordinator, family="山\x00田")
    assert refused.value.code == "INVALID_CHARACTERS"
    assert refused.value.field == "family_name"


# --- back-office entry of a past session from the paper sign-in sheet ------------------------

ASSIGN = """mutation ($s: ID!, $p: ID!, $role: AssignmentRole) {
  assignSupporter(input: {sessionId: $s, supporterId: $p, role: $role}) {
    assignment { id role supporter { displayName } } errors { code message field } } }"""


async def test_staff_record_who_helped_at_a_past_session_and_nobody_is_messaged(town, gql, client):
    """The sign-in sheet of a class held two days ago: the people who came and the supporters
    who helped. Entering the supporters is a record of what happened, not a request: no SMS, no
    invite anybody is told of; the activity report counts them."""
    actor = town.coordinator
    session = await past_session(actor)
    lead = await factories.supporter(actor, certified=True, name="認定 支援員")
    helper = await factories.supporter(actor, certified=False, name="補助 支援員")
    for person in await residents(actor, 2, sms=True):
        seat = await scheduling.register(actor=actor, session_id=session.id,
                                         resident_id=person.id, source=RegistrationSource.WALK_IN)
        await scheduling.record_attendance(actor=actor, registration_id=seat.id,
                                           attendance=Attendance.ATTENDED)
    messages_before = await Message.all().count()

    for supporter, role in ((lead, "LEAD"), (helper, "ASSISTANT")):
        response = await gql().post(ASSIGN, {"s": to_global_id("Session", session.id),
                                             "p": to_global_id("Supporter", supporter.id),
                                             "role": role})
        payload = response.json()["data"]["assignSupporter"]
        assert payload["errors"] == [], payload
        assert payload["assignment"]["role"] == role
        [entry] = await AuditEntry.filter(request_id=response.headers["x-request-id"])
        assert entry.action == "assignment.create" and entry.details["backfilled"] is True

    assert await Message.all().count() == messages_before  # nobody is sent anything
    day = factories.at(days=-2).date()
    [row], _ = await reports.activity_report(actor=actor, date_from=day - timedelta(days=1),
                                             date_to=day + timedelta(days=1))
    assert (row.sessions, row.supporters, row.certified_supporters) == (1, 2, 1)
    assert row.supporters_per_session == 2.0


async def test_a_back_filled_duty_still_may_not_overlap_another_and_a_cancelled_session_stays_shut(town):
    actor = town.coordinator
    supporter = await factories.supporter(actor)
    morning = await past_session(actor)
    overlapping = await factories.session(actor, morning.starts_at + timedelta(hours=1))
    await scheduling.assign_supporter(actor=actor, session_id=morning.id, supporter_id=supporter.id)
    with pytest.raises(DomainError) as clash:
        await scheduling.assign_supporter(actor=actor, session_id=overlapping.id,
                                          supporter_id=supporter.id)
    assert clash.value.code == "SUPPORTER_DOUBLE_BOOKED"

    called_off = await factories.session(actor, at(days=3, hour=10))
    await scheduling.cancel_session(actor=actor, session_id=called_off.id)
    await Session.filter(id=called_off.id).update(starts_at=at(days=-4, hour=10),
                                                  ends_at=at(days=-4, hour=12))
    with pytest.raises(DomainError) as shut:
        await scheduling.assign_supporter(actor=actor, session_id=called_off.id,
                                          supporter_id=supporter.id)
    assert shut.value.code == "SESSION_NOT_OPEN"
