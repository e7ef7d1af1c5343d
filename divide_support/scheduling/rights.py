"""Residents' rights: the places a resident still holds, and what erasure keeps of their
registrations and visits."""

from __future__ import annotations

from divide_support.core import timeutil
from divide_support.core.tokens import new_calendar_token
from divide_support.people.models import Resident
from divide_support.scheduling.models import ACTIVE_STATUSES, Registration, SessionStatus, Visit


async def upcoming_registrations(resident_id: int) -> int:
    """Seats and waitlist places the resident holds for sessions that have not ended."""
    return await Registration.filter(
        resident_id=resident_id, status__in=ACTIVE_STATUSES,
        session__status=SessionStatus.SCHEDULED, session__ends_at__gt=timeutil.now()).count()


async def erase_for_resident(resident: Resident, tz: str) -> None:
    """Before the resident's birth data goes: keep their age on each session day (the
    reports count them in the same band as before), drop free text that may name them and
    give their seats new invite links (the old ones stop working)."""
    registrations = await Registration.filter(resident_id=resident.id).select_related("session")
    for registration in registrations:
        day = timeutil.local_date(registration.session.starts_at, tz)
        if registration.age_at_session is None:
            registration.age_at_session = timeutil.age_on(resident.birth_date,
                                                           resident.birth_year, day)
        registration.cancel_reason = None
        registration.calendar_token = new_calendar_token()
        await registration.save(update_fields=["age_at_session", "cancel_reason",
                                               "calendar_token"])
    for visit in await Visit.filter(resident_id=resident.id).select_related("session"):
        if visit.age_at_visit is None:
            visit.age_at_visit = timeutil.age_on(
                resident.birth_date, resident.birth_year,
                timeutil.local_date(visit.session.starts_at, tz))
        visit.notes = None
        await visit.save(update_fields=["age_at_visit", "notes"])
