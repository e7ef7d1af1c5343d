from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from operator import attrgetter
from typing import Annotated, Any

import strawberry
from strawberry.types.nodes import SelectedField

from divide_support.api import personal_data
from divide_support.api.context import Info
from divide_support.api.enums import (
    AssignmentRole,
    Attendance,
    CourseLevel,
    CourseTopic,
    Device,
    RegistrationSource,
    RegistrationStatus,
    SessionKind,
    SessionStatus,
    VenueKind,
    VisitOutcome,
    as_member,
)
from divide_support.api.errors import forbidden, raise_as_graphql
from divide_support.api.loaders import (
    AssignmentsBySessionLoader,
    CourseLoader,
    RegistrationsBySessionLoader,
    ResidentLoader,
    SessionLoader,
    StaffingLoader,
    SupporterLoader,
    VenueLoader,
    VisitsBySessionLoader,
    loader,
)
from divide_support.api.node import Node
from divide_support.api.pagination import (
    Connection,
    build_connection,
    page_window,
    paginate_list,
)
from divide_support.api.people.types import Resident, Supporter
from divide_support.api.permissions import actor_of, may_read_pii, staff_of
from divide_support.calendar import service as calendar
from divide_support.core.ids import to_global_id
from divide_support.core.permissions import may_read_session_counts, may_read_supporters
from divide_support.paper import http as paper_http
from divide_support.paper import service as paper
from divide_support.scheduling import models, notices
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.pages import SessionQuery, SessionRelations
from divide_support.scheduling.staffing import SessionStaffing

_STAFFING_FIELDS = frozenset({"seatsTaken", "seatsLeft", "waitlistLength", "requiredSupporters",
                              "understaffed", "hasCertifiedLead"})
_RELATED_FIELDS = _STAFFING_FIELDS | {"course", "venue", "assignments"}


def _names(selections: list[Any]) -> Iterator[tuple[str, list[Any]]]:
    """(field name, its selections) of a selection set, through fragments."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection.name, selection.selections
        else:  # FragmentSpread, InlineFragment
            yield from _names(selection.selections)


# by the ids of the field nodes (of the parser cache's documents; the entry holds the nodes,
# so their ids are not reused while it lives): info.selected_fields rebuilds the whole
# selection per request
_NODE_FIELDS: dict[tuple[int, ...], tuple[Any, frozenset[str]]] = {}


def _node_fields(info: Info) -> frozenset[str]:
    """The fields a connection's query selects on edges { node { ... } }."""
    nodes = info._raw_info.field_nodes
    key = tuple(map(id, nodes))
    cached = _NODE_FIELDS.get(key)
    if cached is not None:
        return cached[1]
    wanted: set[str] = set()
    for field in info.selected_fields:
        for name, edges in _names(field.selections):
            if name == "edges":
                for inner, node in _names(edges):
                    if inner == "node":
                        wanted.update(name for name, _ in _names(node))
    if len(_NODE_FIELDS) > 1024:
        _NODE_FIELDS.clear()
    _NODE_FIELDS[key] = (nodes, frozenset(wanted))
    return _NODE_FIELDS[key][1]


def converted(row: Any, convert: Callable[[Any], Any]) -> Any:
    """`convert(row)` once per row of a page (pages.py reads a recurring venue, course or
    supporter once, and the sessions share it): its GraphQL object is made once, not once per
    session."""
    cached = row.__dict__.get("_graphql_object")
    if cached is None:
        cached = row._graphql_object = convert(row)
    return cached


@strawberry.type
class Venue(Node):
    id: strawberry.ID
    name: str
    kind: VenueKind
    address: str | None
    capacity: int | None
    has_wifi: bool
    loaner_devices: int
    accessibility_notes: str | None
    _pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: models.Venue) -> Venue:
        return cls(id=strawberry.ID(to_global_id("Venue", m.id)), name=m.name,
                   kind=as_member(VenueKind, m.kind), address=m.address, capacity=m.capacity,
                   has_wifi=m.has_wifi, loaner_devices=m.loaner_devices,
                   accessibility_notes=m.accessibility_notes, _pk=m.id)

    @strawberry.field
    async def sessions(
        self, info: Info,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None, first: int | None = None, after: str | None = None,
    ) -> Connection[Session]:
        actor = actor_of(info)
        query = scheduling.sessions_query(actor, starts_from=from_, starts_before=to,
                                          venue_id=self._pk)
        return await Session.page_of(info, query, first, after)

    @strawberry.field(description="Public schedule feed (METHOD:PUBLISH) for this venue.")
    def calendar_url(self) -> str:
        return calendar.venue_feed_url_for(self._pk)

    @strawberry.field(description="The venue's schedule for one month (month: \"2027-04\") as "
                      "an A4 large-print PDF for the counter and the neighbourhood circular "
                      "(回覧板): date and weekday, time, title, what to bring, seats left when "
                      "printed, the centre's phone number. Fetch it with the staff bearer token "
                      "(ADMIN, COORDINATOR).")
    async def monthly_schedule_url(self, month: str) -> str:
        parsed = await raise_as_graphql(lambda: paper.parse_month(month))
        return paper_http.schedule_url(self._pk, parsed)


@strawberry.type
class Course(Node):
    id: strawberry.ID
    title: str
    topic: CourseTopic
    level: CourseLevel
    description: str | None
    target_device: Device | None
    duration_minutes: int

    @classmethod
    def from_model(cls, m: models.Course) -> Course:
        return cls(id=strawberry.ID(to_global_id("Course", m.id)), title=m.title,
                   topic=as_member(CourseTopic, m.topic), level=as_member(CourseLevel, m.level),
                   description=m.description,
                   target_device=as_member(Device, m.target_device) if m.target_device else None,
                   duration_minutes=m.duration_minutes)


@strawberry.type(description="How many residents a change to a session would tell.")
class NoticePreview:
    by_sms: int = strawberry.field(description="Told by SMS.")
    by_phone: int = strawberry.field(
        description="SMS will not reach them (residentsToPhone's rule): staff phone them.")


@strawberry.type
class Session(Node):
    id: strawberry.ID
    kind: SessionKind
    title: str
    capacity: int | None
    sequence: int = strawberry.field(
        description="Increments on every change attendees must hear about (time, venue, "
        "cancellation); used as the iCalendar SEQUENCE.")
    cancel_reason: str | None
    _model: strawberry.Private[models.Session]
    _related: strawberry.Private[SessionRelations | None] = None

    @classmethod
    def from_model(cls, m: models.Session) -> Session:
        return cls(id=strawberry.ID(to_global_id("Session", m.id)), kind=as_member(SessionKind, m.kind),
                   title=m.title, capacity=m.capacity,
                   sequence=m.sequence, cancel_reason=m.cancel_reason, _model=m)

    @strawberry.field
    def starts_at(self, info: Info) -> datetime:
        return info.context.local(self._model.starts_at)

    @strawberry.field
    def ends_at(self, info: Info) -> datetime:
        return info.context.local(self._model.ends_at)

    @strawberry.field
    def status(self) -> SessionStatus:
        return scheduling.effective_status(self._model)

    # The resolvers below answer from _related when the list read it (Session.page_of), without
    # awaiting anything, and fall back to the request's DataLoaders otherwise: a plain function
    # may return an awaitable, which graphql-core then awaits.

    @strawberry.field
    def course(self, info: Info) -> Course | None:
        if self._related is not None:
            row = self._related.course
            return converted(row, Course.from_model) if row else None
        return self._load_course(info)

    async def _load_course(self, info: Info) -> Course | None:
        if self._model.course_id is None:
            return None
        row = await loader(info.context, CourseLoader).load(self._model.course_id)
        return Course.from_model(row) if row else None

    @strawberry.field
    def venue(self, info: Info) -> Venue:
        if self._related is not None and self._related.venue is not None:
            return converted(self._related.venue, Venue.from_model)
        return self._load_venue(info)

    async def _load_venue(self, info: Info) -> Venue:
        row = await loader(info.context, VenueLoader).load(self._model.venue_id)
        return Venue.from_model(row)

    def _staffing(self, info: Info, pick: Callable[[SessionStaffing], Any]) -> Any:
        if self._related is not None and self._related.staffing is not None:
            return pick(self._related.staffing)
        return self._load_staffing(info, pick)

    async def _load_staffing(self, info: Info, pick: Callable[[SessionStaffing], Any]) -> Any:
        return pick(await loader(info.context, StaffingLoader).load(self._model.id))

    @strawberry.field(description="Staff needed: at least 1 certified LEAD, and 1 per 4 "
                      "confirmed attendees, or more if set explicitly.")
    def required_supporters(self, info: Info) -> int:
        return self._staffing(info, attrgetter("required"))

    @strawberry.field
    def understaffed(self, info: Info) -> bool:
        return self._staffing(info, attrgetter("understaffed"))

    @strawberry.field(description="True when a certified supporter is assigned as LEAD.")
    def has_certified_lead(self, info: Info) -> bool:
        return self._staffing(info, attrgetter("has_certified_lead"))

    def _counts(self, info: Info, pick: Callable[[SessionStaffing], Any]) -> Any:
        if not may_read_session_counts(actor_of(info)):
            raise forbidden()
        return self._staffing(info, pick)

    @strawberry.field(description="Not for PLANNER (a count of a few people).")
    def seats_taken(self, info: Info) -> int:
        return self._counts(info, attrgetter("confirmed"))

    @strawberry.field(description="Not for PLANNER.")
    def seats_left(self, info: Info) -> int | None:
        return self._counts(info, attrgetter("seats_left"))

    @strawberry.field(description="Not for PLANNER.")
    def waitlist_length(self, info: Info) -> int:
        return self._counts(info, attrgetter("waitlisted"))

    @strawberry.field(description="ADMIN, COORDINATOR: before a change is confirmed, whom it "
                      "tells. Without capacity: a new time or venue, or the cancellation "
                      "(everyone holding a seat or waitlist place). With capacity: only the "
                      "waitlisted residents that capacity would seat. Nobody once it has started.")
    async def notice_preview(self, info: Info, capacity: int | None = None) -> NoticePreview:
        actor = staff_of(info)
        preview = await raise_as_graphql(lambda: notices.notice_preview(
            actor=actor, session_id=self._model.id, capacity=capacity))
        return NoticePreview(by_sms=preview.by_sms, by_phone=preview.by_phone)

    @strawberry.field
    def assignments(self, info: Info) -> list[Assignment]:
        if self._related is not None and self._related.assignments is not None:
            return [Assignment.from_model(row, supporter=row.supporter)
                    for row in self._related.assignments]
        return self._load_assignments(info)

    async def _load_assignments(self, info: Info) -> list[Assignment]:
        rows = await loader(info.context, AssignmentsBySessionLoader).load(self._model.id)
        return [Assignment.from_model(row) for row in rows]

    @classmethod
    async def page_of(cls, info: Info, query: SessionQuery, first: int | None,
                      after: str | None) -> Connection[Session]:
        """A page of `query`, with what the selection names of each session's relations read
        in the same statement (scheduling/pages.py), instead of one DataLoader batch per
        relation."""
        wanted = _node_fields(info)
        offset, limit = page_window(first, after)
        rows, total, related = await query.page(
            offset, limit, relations=bool(wanted & _RELATED_FIELDS),
            staffing=bool(wanted & _STAFFING_FIELDS), assignments="assignments" in wanted)
        page = build_connection(rows, offset, total, cls.from_model)
        for edge in page.edges:
            edge.node._related = related.get(edge.node._model.id)
        return page

    @strawberry.field
    async def registrations(
        self, info: Info, status: RegistrationStatus | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[Registration]:
        actor = actor_of(info)
        if not await scheduling.may_see_attendees(actor, self._model.id):
            raise forbidden()
        rows = await loader(info.context, RegistrationsBySessionLoader).load(self._model.id)
        return paginate_list(scheduling.registrations_in_order(rows, status), first, after,
                             Registration.from_model)

    @strawberry.field
    async def visits(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Visit]:
        actor = actor_of(info)
        if not await scheduling.may_see_attendees(actor, self._model.id):
            raise forbidden()
        rows = await loader(info.context, VisitsBySessionLoader).load(self._model.id)
        return paginate_list(rows, first, after, Visit.from_model)


@strawberry.type
class Assignment(Node):
    id: strawberry.ID
    role: AssignmentRole
    _model: strawberry.Private[models.Assignment]
    # the supporter's row when the list read it with the assignment (Session.page_of)
    _supporter: strawberry.Private[Any] = None

    @classmethod
    def from_model(cls, m: models.Assignment, supporter: Any = None) -> Assignment:
        return cls(id=strawberry.ID(to_global_id("Assignment", m.id)),
                   role=as_member(AssignmentRole, m.role), _model=m, _supporter=supporter)

    @strawberry.field(description="Not for PLANNER (aggregates only).")
    def supporter(self, info: Info) -> Supporter:
        if not may_read_supporters(actor_of(info)):
            raise forbidden()
        if self._supporter is not None:
            return converted(self._supporter, Supporter.from_model)
        return self._load_supporter(info)

    async def _load_supporter(self, info: Info) -> Supporter:
        row = await loader(info.context, SupporterLoader).load(self._model.supporter_id)
        return Supporter.from_model(row)

    @strawberry.field
    async def session(self, info: Info) -> Session:
        row = await loader(info.context, SessionLoader).load(self._model.session_id)
        return Session.from_model(row)

    @strawberry.field(description="iCalendar invite for this duty (METHOD:REQUEST, or "
                      "METHOD:CANCEL once the session is cancelled); the supporter and staff only.")
    def invite_url(self, info: Info) -> str | None:
        actor = actor_of(info)
        if actor.is_staff or actor.supporter_id == self._model.supporter_id:
            return calendar.duty_url(self._model)
        return None


@strawberry.type
class Registration(Node):
    id: strawberry.ID
    status: RegistrationStatus
    waitlist_position: int | None
    source: RegistrationSource
    attendance: Attendance | None
    _model: strawberry.Private[models.Registration]

    @classmethod
    def from_model(cls, m: models.Registration) -> Registration:
        return cls(id=strawberry.ID(to_global_id("Registration", m.id)),
                   status=as_member(RegistrationStatus, m.status), waitlist_position=m.waitlist_position,
                   source=as_member(RegistrationSource, m.source),
                   attendance=as_member(Attendance, m.attendance) if m.attendance else None, _model=m)

    @strawberry.field
    def checked_in_at(self, info: Info) -> datetime | None:
        return info.context.local(self._model.checked_in_at)

    @strawberry.field
    def created_at(self, info: Info) -> datetime:
        return info.context.local(self._model.created_at)

    @strawberry.field
    async def resident(self, info: Info) -> Resident:
        row = await loader(info.context, ResidentLoader).load(self._model.resident_id)
        return Resident.from_model(row)

    @strawberry.field
    async def session(self, info: Info) -> Session:
        row = await loader(info.context, SessionLoader).load(self._model.session_id)
        return Session.from_model(row)

    @strawberry.field(description="iCalendar invite for this seat (METHOD:REQUEST, or "
                      "METHOD:CANCEL once cancelled). Staff hand it to the resident or family; "
                      "empty for other roles (it opens the seat's details without a login).")
    def invite_url(self, info: Info) -> str:
        if actor_of(info).is_staff:
            return calendar.invite_url(self._model)
        return ""

    @strawberry.field(description="A confirmation slip for the resident (A5 PDF: name, date, "
                      "time, venue, what to bring, the centre's number, and a QR code of the "
                      "invite). Fetch it with the staff bearer token (ADMIN, COORDINATOR); "
                      "each print is audited.")
    def confirmation_slip_url(self) -> str:
        return paper_http.slip_url(self._model.id)


@strawberry.type(description="A drop-in help visit at a HELP_SESSION. Anonymous visits keep "
                 "only an age and what was asked.")
class Visit(Node):
    id: strawberry.ID
    age_at_visit: int | None
    topic: CourseTopic
    outcome: VisitOutcome
    _model: strawberry.Private[models.Visit]

    @classmethod
    def from_model(cls, m: models.Visit) -> Visit:
        return cls(id=strawberry.ID(to_global_id("Visit", m.id)), age_at_visit=m.age_at_visit,
                   topic=as_member(CourseTopic, m.topic), outcome=as_member(VisitOutcome, m.outcome), _model=m)

    @strawberry.field(description="Staff notes: ADMIN and COORDINATOR only; reading them is "
                      "written to the audit log.")
    def notes(self, info: Info) -> str | None:
        return personal_data.read(info, "Visit", self._model.id, "notes", self._model.notes,
                                  allowed=may_read_pii(actor_of(info)))

    @strawberry.field
    async def session(self, info: Info) -> Session:
        row = await loader(info.context, SessionLoader).load(self._model.session_id)
        return Session.from_model(row)

    @strawberry.field(description="Staff, and supporters helping at the visit's session.")
    async def resident(self, info: Info) -> Resident | None:
        if self._model.resident_id is None or not await scheduling.may_see_attendees(
                actor_of(info), self._model.session_id):
            return None
        row = await loader(info.context, ResidentLoader).load(self._model.resident_id)
        return Resident.from_model(row) if row else None

    @strawberry.field
    async def helped_by(self, info: Info) -> Supporter | None:
        if self._model.helped_by_id is None or not may_read_supporters(actor_of(info)):
            return None
        row = await loader(info.context, SupporterLoader).load(self._model.helped_by_id)
        return Supporter.from_model(row) if row else None
