"""Situations at the door and in the staffing list that staff meet every week."""

from __future__ import annotations

import asyncio

import factories
import pytest
from factories import at
from helpers_scheduling import let_session_start, past_session, register_all, residents, waitlist

from divide_support.core.errors import DomainError
from divide_support.followups.models import FollowUp, FollowUpPurpose
from divide_support.people import service as people
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    AssignmentRole,
    RegistrationSource,
    RegistrationStatus,
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
    assert refused.value.field == ["input", "familyName"]
