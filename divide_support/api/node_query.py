"""node(id:): any object by global ID, only within the caller's municipality and role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import strawberry

from divide_support.api import loaders as L
from divide_support.api.accounts.types import Municipality, User
from divide_support.api.context import Info
from divide_support.api.followups.types import FollowUp
from divide_support.api.messaging.types import Message
from divide_support.api.node import Node
from divide_support.api.people.types import Resident, Supporter
from divide_support.api.permissions import actor_of
from divide_support.api.scheduling.types import (
    Assignment,
    Course,
    Registration,
    Session,
    Venue,
    Visit,
)
from divide_support.core.actor import Actor, Role
from divide_support.core.ids import parse_global_id
from divide_support.core.permissions import may_read_supporters
from divide_support.scheduling import service as scheduling


async def _anyone(actor: Actor, row: Any) -> bool:
    return True


async def _staff(actor: Actor, row: Any) -> bool:
    return actor.is_staff


async def _staff_or_helper(actor: Actor, row: Any) -> bool:
    return await scheduling.may_see_attendees(actor, row.session_id)


async def _supporter_reader(actor: Actor, row: Any) -> bool:
    return may_read_supporters(actor)


async def _admin_or_self(actor: Actor, row: Any) -> bool:
    return actor.role == Role.ADMIN or actor.user_id == row.id


@dataclass(frozen=True)
class _NodeKind:
    loader: type
    convert: Callable[[Any], Any]
    allowed: Callable[[Actor, Any], Awaitable[bool]]


_KINDS = {
    "Municipality": _NodeKind(L.MunicipalityLoader, Municipality.from_model, _anyone),
    "User": _NodeKind(L.UserLoader, User.from_model, _admin_or_self),
    "Venue": _NodeKind(L.VenueLoader, Venue.from_model, _anyone),
    "Course": _NodeKind(L.CourseLoader, Course.from_model, _anyone),
    "Session": _NodeKind(L.SessionLoader, Session.from_model, _anyone),
    "Supporter": _NodeKind(L.SupporterLoader, Supporter.from_model, _supporter_reader),
    "Assignment": _NodeKind(L.AssignmentLoader, Assignment.from_model, _anyone),
    "Resident": _NodeKind(L.ResidentLoader, Resident.from_model, _staff),
    "Registration": _NodeKind(L.RegistrationLoader, Registration.from_model, _staff_or_helper),
    "Visit": _NodeKind(L.VisitLoader, Visit.from_model, _staff_or_helper),
    "FollowUp": _NodeKind(L.FollowUpLoader, FollowUp.from_model, _staff),
    "Message": _NodeKind(L.MessageLoader, Message.from_model, _staff),
}


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by ID; null when it does not exist, belongs to "
                      "another municipality, or the caller may not see it.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        actor = actor_of(info)
        parsed = parse_global_id(id)
        if parsed is None or parsed[0] not in _KINDS or parsed[1] > 2**31 - 1:
            return None
        kind = _KINDS[parsed[0]]
        row = await L.loader(info.context, kind.loader).load(parsed[1])
        if row is None or not await kind.allowed(actor, row):
            return None
        return kind.convert(row)
