"""Scheduling's service functions, in one place for their callers (the API, the console, the
CLI, the worker, privacy and the tests): `from divide_support.scheduling import service as
scheduling`. The rules live beside it, one module a noun:

- venues.py: venues and courses
- sessions.py: scheduling, moving and cancelling sessions; the session lists
- assignments.py: supporters on duty, the overlap rule
- registrations.py: seats, the FIFO waitlist, attendance
- visits.py: drop-in visits at help sessions
- rights.py: what residents' rights need of scheduling (places held, erasure)
- _common.py: what several of them share: the session lock (how capacity and the waitlist
  hold under concurrent requests), the status rule, the refusals

The modules never import this one; callers look names up here when they call (so a test
that replaces a function here replaces it for the API too).
"""

from __future__ import annotations

from divide_support.scheduling._common import MAX_SESSION_HOURS, effective_status
from divide_support.scheduling.assignments import assign_supporter, is_assigned, unassign_supporter
from divide_support.scheduling.models import CourseLevel, RegistrationSource, SessionKind, VenueKind
from divide_support.scheduling.registrations import (
    cancel_registration,
    cancel_registration_promoting,
    may_see_attendees,
    record_attendance,
    register,
    registrations_in_order,
    registrations_query,
)
from divide_support.scheduling.rights import erase_for_resident, upcoming_registrations
from divide_support.scheduling.sessions import (
    MAX_UNDERSTAFFED_WEEKS,
    MAX_WEEKLY_REPEATS,
    ScheduledSeries,
    SkippedDate,
    cancel_session,
    find_sessions,
    reschedule_session,
    schedule_series,
    schedule_sessions,
    sessions_query,
    understaffed_sessions,
)
from divide_support.scheduling.venues import courses_query, create_course, create_venue, update_venue, venues_query
from divide_support.scheduling.visits import VisitInput, record_visit

__all__ = [
    "MAX_SESSION_HOURS",
    "MAX_UNDERSTAFFED_WEEKS",
    "MAX_WEEKLY_REPEATS",
    "CourseLevel",
    "RegistrationSource",
    "ScheduledSeries",
    "SessionKind",
    "SkippedDate",
    "VenueKind",
    "VisitInput",
    "assign_supporter",
    "cancel_registration",
    "cancel_registration_promoting",
    "cancel_session",
    "courses_query",
    "create_course",
    "create_venue",
    "effective_status",
    "erase_for_resident",
    "find_sessions",
    "is_assigned",
    "may_see_attendees",
    "record_attendance",
    "record_visit",
    "register",
    "registrations_in_order",
    "registrations_query",
    "reschedule_session",
    "schedule_series",
    "schedule_sessions",
    "sessions_query",
    "unassign_supporter",
    "understaffed_sessions",
    "upcoming_registrations",
    "update_venue",
    "venues_query",
]
