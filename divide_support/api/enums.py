"""The contract's enums, backed by the domain's own Python enums."""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

import strawberry

from divide_support.core.actor import Role as _Role
from divide_support.followups import models as f
from divide_support.messaging import models as m
from divide_support.people import models as p
from divide_support.scheduling import models as s

Role = strawberry.enum(_Role, name="Role")
SessionKind = strawberry.enum(s.SessionKind, name="SessionKind")
SessionStatus = strawberry.enum(s.SessionStatus, name="SessionStatus")
VenueKind = strawberry.enum(s.VenueKind, name="VenueKind")
CourseTopic = strawberry.enum(s.CourseTopic, name="CourseTopic")
CourseLevel = strawberry.enum(
    s.CourseLevel, name="CourseLevel",
    description="National programme menu: BASIC (基本的な講座) or APPLIED (応用的な講座).",
)
Device = strawberry.enum(p.Device, name="Device")
ContactPreference = strawberry.enum(p.ContactPreference, name="ContactPreference")
SupporterAffiliation = strawberry.enum(p.SupporterAffiliation, name="SupporterAffiliation")
AssignmentRole = strawberry.enum(s.AssignmentRole, name="AssignmentRole")
RegistrationStatus = strawberry.enum(s.RegistrationStatus, name="RegistrationStatus")
RegistrationSource = strawberry.enum(s.RegistrationSource, name="RegistrationSource")
Attendance = strawberry.enum(s.Attendance, name="Attendance")
VisitOutcome = strawberry.enum(s.VisitOutcome, name="VisitOutcome")
FollowUpChannel = strawberry.enum(f.FollowUpChannel, name="FollowUpChannel")
FollowUpStatus = strawberry.enum(f.FollowUpStatus, name="FollowUpStatus")
FollowUpOutcome = strawberry.enum(f.FollowUpOutcome, name="FollowUpOutcome")
FollowUpPurpose = strawberry.enum(
    f.FollowUpPurpose, name="FollowUpPurpose",
    description="Why the task exists: after a class, after a visit, a seat became free, manual.",
)
MessageKind = strawberry.enum(m.MessageKind, name="MessageKind")
MessageStatus = strawberry.enum(
    m.MessageStatus, name="MessageStatus",
    description="UNKNOWN: the provider may have accepted it (timeout, 5xx, crash after claim); "
                "never resent blindly.",
)
SkipReason = strawberry.enum(m.SkipReason, name="SkipReason",
                             description="Why a message was not sent (status SKIPPED).")
InboundAction = strawberry.enum(m.InboundAction, name="InboundAction")
MessageChannel = strawberry.enum(
    m.Channel, name="MessageChannel",
    description="SMS, or an automated voice call (residents who consented to calls and "
                "prefer them, or have a landline and no mobile).")
CallOutcome = strawberry.enum(
    m.CallOutcome, name="CallOutcome",
    description="What became of an automated call: CONFIRMED (pressed 1), GAVE_UP_SEAT "
                "(pressed 2: the seat was cancelled), ANSWERED (no key), MACHINE (the message "
                "was left on an answering machine), NO_ANSWER, BUSY, FAILED.")

_E = TypeVar("_E", bound=Enum)
_MEMBERS: dict[type[Enum], dict[Any, Enum]] = {}


def as_member(enum_type: type[_E], value: Any) -> _E:
    """`enum_type(value)` in one dict lookup: a row's stored string (or the member itself) to
    the member. EnumType.__call__ costs ten times as much, and one page of the day view
    converts a few hundred values (issue 12). Anything else goes through enum_type(value),
    with its ValueError."""
    table = _MEMBERS.get(enum_type)
    if table is None:
        table = _MEMBERS[enum_type] = {member.value: member for member in enum_type}
    member = table.get(value)
    return member if member is not None else enum_type(value)  # type: ignore[return-value]
