from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from divide_support.api import personal_data
from divide_support.api.context import Info
from divide_support.api.enums import (
    ContactPreference,
    Device,
    FollowUpStatus,
    SupporterAffiliation,
    as_member,
)
from divide_support.api.loaders import (
    AssignmentsBySupporterLoader,
    FollowUpsByResidentLoader,
    MessagesByResidentLoader,
    RegistrationsByResidentLoader,
    SessionLoader,
    UserLoader,
    loader,
)
from divide_support.api.node import Node
from divide_support.api.pagination import Connection, paginate_list
from divide_support.api.permissions import actor_of, may_read_pii
from divide_support.core.ids import to_global_id
from divide_support.people import models
from divide_support.people.phones import format_national

if TYPE_CHECKING:
    from divide_support.api.followups.types import FollowUp
    from divide_support.api.messaging.types import Message
    from divide_support.api.scheduling.types import Assignment, Registration

_SCHEDULING = "divide_support.api.scheduling.types"
_FOLLOWUPS = "divide_support.api.followups.types"
_MESSAGING = "divide_support.api.messaging.types"


@strawberry.type
class Supporter(Node):
    id: strawberry.ID
    display_name: str
    kana: str | None
    affiliation: SupporterAffiliation
    organisation: str | None
    skills: list[str]
    certified: bool
    active: bool
    _model: strawberry.Private[models.Supporter]

    @classmethod
    def from_model(cls, m: models.Supporter) -> Supporter:
        return cls(id=strawberry.ID(to_global_id("Supporter", m.id)), display_name=m.display_name,
                   kana=m.kana, affiliation=as_member(SupporterAffiliation, m.affiliation),
                   organisation=m.organisation, skills=list(m.skills or []),
                   certified=m.certified, active=m.active, _model=m)

    @strawberry.field(description="Visible to ADMIN and COORDINATOR, and to the supporter "
                      "themself; reading it is written to the audit log.")
    def phone(self, info: Info) -> str | None:
        actor = actor_of(info)
        value = format_national(self._model.phone) if self._model.phone else None
        return personal_data.read(info, "Supporter", self._model.id, "phone", value,
                                  allowed=actor.is_staff or actor.supporter_id == self._model.id)

    @strawberry.field(description="Personal subscription feed with an unguessable token (only "
                      "for the supporter themself and staff). Subscribe with the webcal:// form.")
    def calendar_feed_url(self, info: Info) -> str | None:
        actor = actor_of(info)
        if actor.is_staff or actor.supporter_id == self._model.id:
            from divide_support.calendar.service import supporter_feed_url

            return supporter_feed_url(self._model)
        return None

    @strawberry.field
    async def assignments(
        self, info: Info, from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> list[Annotated[Assignment, strawberry.lazy(_SCHEDULING)]]:
        from divide_support.api.scheduling.types import Assignment

        rows = await loader(info.context, AssignmentsBySupporterLoader).load(self._model.id)
        sessions = await loader(info.context, SessionLoader).load_many(
            [row.session_id for row in rows])
        picked = [
            (session.starts_at, row) for row, session in zip(rows, sessions, strict=True)
            if session is not None
            and (from_ is None or session.starts_at >= from_)
            and (to is None or session.starts_at < to)
        ]
        picked.sort(key=lambda pair: (pair[0], pair[1].id))
        return [Assignment.from_model(row) for _, row in picked]


@strawberry.type
class Resident(Node):
    id: strawberry.ID
    family_name: str
    given_name: str
    kana: str | None
    contact_preference: ContactPreference
    sms_consent: bool
    sms_opted_out: bool
    call_consent: bool = strawberry.field(
        description="Agreed to automated voice calls (confirmation, day-before reminder).")
    device: Device | None
    district: str | None
    _model: strawberry.Private[models.Resident]

    @classmethod
    def from_model(cls, m: models.Resident) -> Resident:
        return cls(
            id=strawberry.ID(to_global_id("Resident", m.id)), family_name=m.family_name,
            given_name=m.given_name, kana=m.kana,
            contact_preference=as_member(ContactPreference, m.contact_preference),
            sms_consent=m.sms_consent, sms_opted_out=m.sms_opted_out, call_consent=m.call_consent,
            device=as_member(Device, m.device) if m.device else None, district=m.district, _model=m,
        )

    @strawberry.field(description="When the call consent was last recorded (given or withdrawn).")
    def call_consent_recorded_at(self, info: Info) -> datetime | None:
        at = self._model.call_consent_at
        return info.context.local(at) if at else None

    @strawberry.field(description="Who recorded the call consent (the staff member's name).")
    async def call_consent_recorded_by(self, info: Info) -> str | None:
        if self._model.call_consent_by_id is None:
            return None
        user = await loader(info.context, UserLoader).load(self._model.call_consent_by_id)
        return user.display_name if user else None

    def _pii(self, info: Info, field_name: str, value: object) -> object:
        """PII for ADMIN/COORDINATOR only; each read goes to the audit log."""
        return personal_data.read(info, "Resident", self._model.id, field_name, value,
                                  allowed=may_read_pii(actor_of(info)))

    @strawberry.field(description="PII: visible to ADMIN and COORDINATOR only; reading it is "
                      "written to the audit log.")
    def phone(self, info: Info) -> str | None:
        value = format_national(self._model.phone) if self._model.phone else None
        return self._pii(info, "phone", value)  # type: ignore[return-value]

    @strawberry.field
    def landline(self, info: Info) -> str | None:
        value = format_national(self._model.landline) if self._model.landline else None
        return self._pii(info, "landline", value)  # type: ignore[return-value]

    @strawberry.field
    def birth_date(self, info: Info) -> date | None:
        return self._pii(info, "birthDate", self._model.birth_date)  # type: ignore[return-value]

    @strawberry.field
    def birth_year(self, info: Info) -> int | None:
        return self._pii(info, "birthYear", self._model.birth_year)  # type: ignore[return-value]

    @strawberry.field
    def notes(self, info: Info) -> str | None:
        return self._pii(info, "notes", self._model.notes)  # type: ignore[return-value]

    @strawberry.field(description="What the resident asked the supporters to know or help "
                      "with: for whoever may see them as an attendee (staff, the supporters of "
                      "their sessions); every read is written to the audit log.")
    def support_needs(self, info: Info) -> str | None:
        return personal_data.read(info, "Resident", self._model.id, "supportNeeds",
                                  self._model.support_needs, allowed=True)

    @strawberry.field
    async def registrations(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[Registration, strawberry.lazy(_SCHEDULING)]]:
        from divide_support.api.scheduling.types import Registration

        rows = []
        if actor_of(info).is_staff:
            rows = await loader(info.context, RegistrationsByResidentLoader).load(self._model.id)
        return paginate_list(rows, first, after, Registration.from_model)

    @strawberry.field
    async def follow_ups(
        self, info: Info, status: FollowUpStatus | None = None
    ) -> list[Annotated[FollowUp, strawberry.lazy(_FOLLOWUPS)]]:
        from divide_support.api.followups.types import FollowUp

        if not actor_of(info).is_staff:
            return []
        rows = await loader(info.context, FollowUpsByResidentLoader).load(self._model.id)
        return [FollowUp.from_model(r) for r in rows if status is None or r.status == status]

    @strawberry.field(description="SMS planned or sent to this resident, newest first (staff only).")
    async def messages(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[Message, strawberry.lazy(_MESSAGING)]]:
        from divide_support.api.messaging.types import Message

        rows = []
        if actor_of(info).is_staff:
            rows = await loader(info.context, MessagesByResidentLoader).load(self._model.id)
        return paginate_list(rows, first, after, Message.from_model)
