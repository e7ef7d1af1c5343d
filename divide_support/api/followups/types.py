from __future__ import annotations

from datetime import date, datetime

import strawberry

from divide_support.api import personal_data
from divide_support.api.accounts.types import User
from divide_support.api.context import Info
from divide_support.api.enums import (
    FollowUpChannel,
    FollowUpOutcome,
    FollowUpPurpose,
    FollowUpStatus,
    as_member,
)
from divide_support.api.loaders import (
    RegistrationLoader,
    ResidentLoader,
    UserLoader,
    VisitLoader,
    loader,
)
from divide_support.api.node import Node
from divide_support.api.people.types import Resident
from divide_support.api.permissions import actor_of, may_read_pii
from divide_support.api.scheduling.types import Registration, Visit
from divide_support.core.ids import to_global_id
from divide_support.followups import models


@strawberry.type
class FollowUp(Node):
    id: strawberry.ID
    due_on: date
    channel: FollowUpChannel
    status: FollowUpStatus
    purpose: FollowUpPurpose
    outcome: FollowUpOutcome | None
    _model: strawberry.Private[models.FollowUp]

    @classmethod
    def from_model(cls, m: models.FollowUp) -> FollowUp:
        return cls(id=strawberry.ID(to_global_id("FollowUp", m.id)), due_on=m.due_on,
                   channel=as_member(FollowUpChannel, m.channel), status=as_member(FollowUpStatus, m.status),
                   purpose=as_member(FollowUpPurpose, m.purpose),
                   outcome=as_member(FollowUpOutcome, m.outcome) if m.outcome else None, _model=m)

    @strawberry.field(description="Staff notes: ADMIN and COORDINATOR only; reading them is "
                      "written to the audit log.")
    def notes(self, info: Info) -> str | None:
        return personal_data.read(info, "FollowUp", self._model.id, "notes", self._model.notes,
                                  allowed=may_read_pii(actor_of(info)))

    @strawberry.field
    def completed_at(self, info: Info) -> datetime | None:
        return info.context.local(self._model.completed_at)

    @strawberry.field
    async def resident(self, info: Info) -> Resident:
        row = await loader(info.context, ResidentLoader).load(self._model.resident_id)
        return Resident.from_model(row)

    @strawberry.field
    async def registration(self, info: Info) -> Registration | None:
        if self._model.registration_id is None:
            return None
        row = await loader(info.context, RegistrationLoader).load(self._model.registration_id)
        return Registration.from_model(row) if row else None

    @strawberry.field
    async def visit(self, info: Info) -> Visit | None:
        if self._model.visit_id is None:
            return None
        row = await loader(info.context, VisitLoader).load(self._model.visit_id)
        return Visit.from_model(row) if row else None

    @strawberry.field
    async def assigned_to(self, info: Info) -> User | None:
        if self._model.assigned_to_id is None:
            return None
        row = await loader(info.context, UserLoader).load(self._model.assigned_to_id)
        return User.from_model(row) if row else None
