from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import strawberry

from divide_support.api.context import Info
from divide_support.api.enums import (
    AssignmentRole,
    Attendance,
    CourseLevel,
    CourseTopic,
    Device,
    RegistrationSource,
    SessionKind,
    SessionStatus,
    VenueKind,
    VisitOutcome,
)
from divide_support.api.errors import UserError, attempt, mutate, raise_as_graphql
from divide_support.api.pagination import MAX_PAGE_SIZE, Connection
from divide_support.api.permissions import actor_of
from divide_support.api.scheduling.types import (
    Assignment,
    Course,
    Registration,
    Session,
    Venue,
    Visit,
)
from divide_support.core.ids import decode_filter_id, decode_id, decode_optional
from divide_support.scheduling import service as scheduling


@strawberry.input
class CreateVenueInput:
    name: str
    kind: VenueKind
    address: str | None = None
    capacity: int | None = None
    has_wifi: bool | None = None
    loaner_devices: int | None = None
    accessibility_notes: str | None = None


@strawberry.input(description="Only the fields sent change; null clears an optional one.")
class UpdateVenueInput:
    venue_id: strawberry.ID
    name: str | None = strawberry.UNSET
    kind: VenueKind | None = strawberry.UNSET
    address: str | None = strawberry.UNSET
    capacity: int | None = strawberry.UNSET
    has_wifi: bool | None = strawberry.UNSET
    loaner_devices: int | None = strawberry.UNSET
    accessibility_notes: str | None = strawberry.UNSET


_VENUE_FIELDS = ("name", "kind", "address", "capacity", "has_wifi", "loaner_devices",
                 "accessibility_notes")


@strawberry.type
class VenuePayload:
    venue: Venue | None = None
    errors: list[UserError]


@strawberry.input
class CreateCourseInput:
    title: str
    topic: CourseTopic
    duration_minutes: int
    description: str | None = None
    target_device: Device | None = None
    level: CourseLevel | None = None


@strawberry.type
class CoursePayload:
    course: Course | None = None
    errors: list[UserError]


@strawberry.input
class ScheduleSessionInput:
    kind: SessionKind
    venue_id: strawberry.ID
    starts_at: datetime
    ends_at: datetime
    course_id: strawberry.ID | None = None
    title: str | None = None
    capacity: int | None = None
    required_supporters: int | None = None
    repeat_weekly: int | None = strawberry.field(
        default=None, description="Repeat weekly this many more times (0 = single session).")
    keep_closed_days: bool | None = strawberry.field(
        default=None, description="A weekly series leaves out national holidays (祝日, "
        "substitute holidays included) and the year-end closure (12/29-1/3) unless this is "
        "true. A single session is scheduled on the day given, whatever day it is.")


@strawberry.type(description="A date a weekly series left out.")
class SkippedDate:
    date: date
    reason: str = strawberry.field(description="The holiday's name (元日, 振替休日, ...) or "
                                   "年末年始 (the year-end closure).")


@strawberry.type
class SchedulePayload:
    sessions: list[Session]
    errors: list[UserError]
    skipped_dates: list[SkippedDate] = strawberry.field(
        default_factory=list, description="The dates of the series left out, soonest first.")


@strawberry.input
class RescheduleSessionInput:
    session_id: strawberry.ID
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    venue_id: strawberry.ID | None = None
    capacity: int | None = None


@strawberry.input
class CancelSessionInput:
    session_id: strawberry.ID
    reason: str | None = None


@strawberry.type
class SessionPayload:
    session: Session | None = None
    errors: list[UserError]


@strawberry.input
class AssignSupporterInput:
    session_id: strawberry.ID
    supporter_id: strawberry.ID
    role: AssignmentRole | None = None


@strawberry.input
class UnassignSupporterInput:
    assignment_id: strawberry.ID


@strawberry.type
class AssignmentPayload:
    assignment: Assignment | None = None
    errors: list[UserError]


@strawberry.input
class RegisterInput:
    session_id: strawberry.ID
    resident_id: strawberry.ID
    source: RegistrationSource | None = None


@strawberry.input
class CancelRegistrationInput:
    registration_id: strawberry.ID
    reason: str | None = None


@strawberry.input
class RecordAttendanceInput:
    registration_id: strawberry.ID
    attendance: Attendance


@strawberry.type
class RegistrationPayload:
    registration: Registration | None = None
    errors: list[UserError]
    promoted: list[Registration] = strawberry.field(
        default_factory=list,
        description="cancelRegistration: the waitlisted registrations the freed seat went to "
        "(繰り上げで参加確定), in waitlist order; residentsToPhone says whom SMS will not reach.")


@strawberry.input
class RecordVisitInput:
    session_id: strawberry.ID
    topic: CourseTopic
    outcome: VisitOutcome
    resident_id: strawberry.ID | None = None
    age_at_visit: int | None = None
    helped_by_id: strawberry.ID | None = None
    notes: str | None = None


@strawberry.type
class VisitPayload:
    visit: Visit | None = None
    errors: list[UserError]


def _session_id(value: str, field: str = "sessionId") -> int:
    return decode_id(value, "Session", field, "開催回")


def _registration_id(value: str) -> int:
    return decode_id(value, "Registration", "registration_id", "申込")


@strawberry.type
class SchedulingQuery:
    @strawberry.field
    async def venues(self, info: Info) -> list[Venue]:
        actor = actor_of(info)
        return [Venue.from_model(v) for v in await scheduling.venues_query(actor)]

    @strawberry.field
    async def courses(self, info: Info) -> list[Course]:
        actor = actor_of(info)
        return [Course.from_model(c) for c in await scheduling.courses_query(actor)]

    @strawberry.field
    async def sessions(
        self, info: Info,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None, venue_id: strawberry.ID | None = None,
        kind: SessionKind | None = None, status: SessionStatus | None = None,
        understaffed: bool | None = None, first: int | None = None, after: str | None = None,
    ) -> Connection[Session]:
        actor = actor_of(info)
        query = await scheduling.find_sessions(
            actor, starts_from=from_, starts_before=to, venue_id=decode_filter_id(venue_id, "Venue"),
            kind=kind, status=status, understaffed=understaffed)
        return await Session.page_of(info, query, first, after)

    @strawberry.field(description="Scheduled sessions of the coming weeks that lack supporters "
                      "(or a certified LEAD), soonest first, so staff can recruit in time; at "
                      "one venue, and only the `first` soonest, when asked.")
    async def understaffed_sessions(self, info: Info, weeks: int = 4,
                                    venue_id: strawberry.ID | None = None,
                                    first: int | None = None) -> list[Session]:
        actor = actor_of(info)
        rows = await raise_as_graphql(lambda: scheduling.understaffed_sessions(
            actor=actor, weeks=weeks, venue_id=decode_filter_id(venue_id, "Venue"), limit=first,
            max_limit=MAX_PAGE_SIZE))
        return [Session.from_model(row) for row in rows]


@strawberry.type
class SchedulingMutation:
    @strawberry.mutation
    async def create_venue(self, info: Info, input: CreateVenueInput) -> VenuePayload:
        actor = actor_of(info)
        return await mutate(info, VenuePayload, lambda: scheduling.create_venue(
            actor=actor, name=input.name, kind=input.kind, address=input.address,
            capacity=input.capacity, has_wifi=bool(input.has_wifi),
            loaner_devices=input.loaner_devices,
            accessibility_notes=input.accessibility_notes), venue=Venue.from_model)

    @strawberry.mutation(description="Staff: change a venue's details. Its capacity (収容人数) "
                         "cannot go below that of a coming session there.")
    async def update_venue(self, info: Info, input: UpdateVenueInput) -> VenuePayload:
        actor = actor_of(info)
        given = {name: getattr(input, name) for name in _VENUE_FIELDS
                 if getattr(input, name) is not strawberry.UNSET}

        async def run():
            return await scheduling.update_venue(
                actor=actor, venue_id=decode_id(input.venue_id, "Venue", "venue_id",
                                                "会場"), **given)

        return await mutate(info, VenuePayload, run, venue=Venue.from_model)

    @strawberry.mutation
    async def create_course(self, info: Info, input: CreateCourseInput) -> CoursePayload:
        actor = actor_of(info)
        return await mutate(info, CoursePayload, lambda: scheduling.create_course(
            actor=actor, title=input.title, topic=input.topic,
            duration_minutes=input.duration_minutes, description=input.description,
            target_device=input.target_device,
            level=input.level), course=Course.from_model)

    @strawberry.mutation
    async def schedule_session(self, info: Info, input: ScheduleSessionInput) -> SchedulePayload:
        actor = actor_of(info)

        async def run():
            return await scheduling.schedule_series(
                actor=actor, kind=input.kind,
                venue_id=decode_id(input.venue_id, "Venue", "venue_id", "会場"),
                course_id=decode_optional(input.course_id, "Course", "course_id",
                                          "講座"),
                starts_at=input.starts_at, ends_at=input.ends_at, title=input.title,
                capacity=input.capacity, required_supporters=input.required_supporters,
                repeat_weekly=input.repeat_weekly,
                keep_closed_days=bool(input.keep_closed_days))

        series, errors = await attempt(info, run)
        if series is None:
            return SchedulePayload(sessions=[], errors=errors)
        return SchedulePayload(
            sessions=[Session.from_model(r) for r in series.sessions], errors=errors,
            skipped_dates=[SkippedDate(date=item.day, reason=item.reason)
                           for item in series.skipped])

    @strawberry.mutation
    async def reschedule_session(self, info: Info,
                                 input: RescheduleSessionInput) -> SessionPayload:
        actor = actor_of(info)

        async def run():
            return await scheduling.reschedule_session(
                actor=actor, session_id=_session_id(input.session_id),
                starts_at=input.starts_at, ends_at=input.ends_at,
                venue_id=decode_optional(input.venue_id, "Venue", "venue_id", "会場"),
                capacity=input.capacity)

        return await mutate(info, SessionPayload, run, session=Session.from_model)

    @strawberry.mutation
    async def cancel_session(self, info: Info, input: CancelSessionInput) -> SessionPayload:
        actor = actor_of(info)

        async def run():
            return await scheduling.cancel_session(
                actor=actor, session_id=_session_id(input.session_id), reason=input.reason)

        return await mutate(info, SessionPayload, run, session=Session.from_model)

    @strawberry.mutation
    async def assign_supporter(self, info: Info, input: AssignSupporterInput
                               ) -> AssignmentPayload:
        actor = actor_of(info)

        async def run():
            return await scheduling.assign_supporter(
                actor=actor, session_id=_session_id(input.session_id),
                supporter_id=decode_id(input.supporter_id, "Supporter",
                                       "supporter_id", "支援員"),
                role=input.role)

        return await mutate(info, AssignmentPayload, run, assignment=Assignment.from_model)

    @strawberry.mutation
    async def unassign_supporter(self, info: Info, input: UnassignSupporterInput
                                 ) -> AssignmentPayload:
        actor = actor_of(info)

        async def run():
            return await scheduling.unassign_supporter(
                actor=actor, assignment_id=decode_id(input.assignment_id, "Assignment",
                                                     "assignment_id", "担当"))

        return await mutate(info, AssignmentPayload, run, assignment=Assignment.from_model)

    @strawberry.mutation
    async def register(self, info: Info, input: RegisterInput) -> RegistrationPayload:
        actor = actor_of(info)

        async def run():
            return await scheduling.register(
                actor=actor, session_id=_session_id(input.session_id),
                resident_id=decode_id(input.resident_id, "Resident", "resident_id",
                                      "住民"),
                source=input.source)

        return await mutate(info, RegistrationPayload, run, registration=Registration.from_model)

    @strawberry.mutation
    async def cancel_registration(self, info: Info, input: CancelRegistrationInput
                                  ) -> RegistrationPayload:
        actor = actor_of(info)

        async def run():
            return await scheduling.cancel_registration_promoting(
                actor=actor, registration_id=_registration_id(input.registration_id),
                reason=input.reason)

        result, errors = await attempt(info, run)
        row, promoted = result or (None, [])
        return RegistrationPayload(registration=Registration.from_model(row) if row else None,
                                   errors=errors,
                                   promoted=[Registration.from_model(r) for r in promoted])

    @strawberry.mutation
    async def record_attendance(self, info: Info, input: RecordAttendanceInput
                                ) -> RegistrationPayload:
        actor = actor_of(info)

        async def run():
            return await scheduling.record_attendance(
                actor=actor, registration_id=_registration_id(input.registration_id),
                attendance=input.attendance)

        return await mutate(info, RegistrationPayload, run, registration=Registration.from_model)

    @strawberry.mutation
    async def record_visit(self, info: Info, input: RecordVisitInput) -> VisitPayload:
        actor = actor_of(info)

        async def run():
            data = scheduling.VisitInput(
                session_id=_session_id(input.session_id), topic=input.topic,
                outcome=input.outcome,
                resident_id=decode_optional(input.resident_id, "Resident",
                                            "resident_id", "住民"),
                age_at_visit=input.age_at_visit,
                helped_by_id=decode_optional(input.helped_by_id, "Supporter",
                                             "helped_by_id", "支援員"),
                notes=input.notes)
            return await scheduling.record_visit(actor=actor, data=data)

        return await mutate(info, VisitPayload, run, visit=Visit.from_model)
