from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from divide_support.api import personal_data
from divide_support.api.accounts.types import Municipality
from divide_support.api.context import Info
from divide_support.api.enums import (
    CallOutcome,
    InboundAction,
    MessageChannel,
    MessageKind,
    MessageStatus,
    SkipReason,
    as_member,
)
from divide_support.api.loaders import (
    MunicipalityLoader,
    RegistrationLoader,
    ResidentLoader,
    loader,
)
from divide_support.api.node import Node
from divide_support.api.permissions import actor_of, may_read_pii
from divide_support.core.ids import to_global_id
from divide_support.messaging import models
from divide_support.messaging.service import CALL_OUTCOME_TEXT, SKIP_REASON_TEXT
from divide_support.people.phones import format_national, mask

if TYPE_CHECKING:
    from divide_support.api.people.types import Resident
    from divide_support.api.scheduling.types import Registration

_PEOPLE = "divide_support.api.people.types"
_SCHEDULING = "divide_support.api.scheduling.types"


@strawberry.type(description="One message in the outbox (an SMS or an automated call): planned, sent, or "
                 "decided not to be sent.")
class Message(Node):
    id: strawberry.ID
    kind: MessageKind
    body: str
    segments: int
    encoding: str
    status: MessageStatus
    provider_id: str | None
    error_code: str | None
    attempts: int
    skip_reason: SkipReason | None
    channel: MessageChannel
    voice_script: str | None = strawberry.field(
        description="What an automated call says (the confirmation and the day-before "
                    "reminder), kept beside the SMS body.")
    call_outcome: CallOutcome | None
    call_seconds: int | None = strawberry.field(description="The call's length, once over.")
    _model: strawberry.Private[models.Message]

    @classmethod
    def from_model(cls, m: models.Message) -> Message:
        return cls(id=strawberry.ID(to_global_id("Message", m.id)), kind=as_member(MessageKind, m.kind),
                   body=m.body, segments=m.segments, encoding=m.encoding,
                   status=as_member(MessageStatus, m.status), provider_id=m.provider_id,
                   error_code=m.error_code, attempts=m.attempts,
                   skip_reason=as_member(SkipReason, m.skip_reason) if m.skip_reason else None,
                   channel=as_member(MessageChannel, m.channel), voice_script=m.voice_script,
                   call_outcome=as_member(CallOutcome, m.call_outcome) if m.call_outcome else None,
                   call_seconds=m.call_seconds, _model=m)

    @strawberry.field(description="Masked for roles that may not read phone numbers.")
    def to(self, info: Info) -> str:
        number = self._model.to
        if not number:
            return ""
        if may_read_pii(actor_of(info)):
            personal_data.read(info, "Resident", self._model.resident_id, "messageTo", number,
                               allowed=True)
            return format_national(number)
        return mask(number)

    @strawberry.field(description="What became of the call, in Japanese, for staff.")
    def call_outcome_text(self) -> str | None:
        outcome = self._model.call_outcome
        return CALL_OUTCOME_TEXT[models.CallOutcome(outcome)] if outcome else None

    @strawberry.field(description="Why it was not sent, in Japanese, for staff.")
    def skip_reason_text(self) -> str | None:
        reason = self._model.skip_reason
        return SKIP_REASON_TEXT[models.SkipReason(reason)] if reason else None

    @strawberry.field
    def send_after(self, info: Info) -> datetime:
        return info.context.local(self._model.send_after)

    @strawberry.field
    def sent_at(self, info: Info) -> datetime | None:
        return info.context.local(self._model.sent_at)

    @strawberry.field
    def delivered_at(self, info: Info) -> datetime | None:
        return info.context.local(self._model.delivered_at)

    @strawberry.field
    async def resident(self, info: Info) -> Annotated[Resident, strawberry.lazy(_PEOPLE)]:
        from divide_support.api.people.types import Resident

        row = await loader(info.context, ResidentLoader).load(self._model.resident_id)
        return Resident.from_model(row)

    @strawberry.field
    async def registration(self, info: Info
                           ) -> Annotated[Registration, strawberry.lazy(_SCHEDULING)] | None:
        from divide_support.api.scheduling.types import Registration

        if self._model.registration_id is None:
            return None
        row = await loader(info.context, RegistrationLoader).load(self._model.registration_id)
        return Registration.from_model(row) if row else None


@strawberry.type(description="A reply from a resident. needsReview: it may be a wish to stop.")
class InboundMessage:
    id: strawberry.ID
    body: str
    action: InboundAction
    needs_review: bool
    _model: strawberry.Private[models.InboundMessage]

    @classmethod
    def from_model(cls, m: models.InboundMessage) -> InboundMessage:
        return cls(id=strawberry.ID(to_global_id("InboundMessage", m.id)), body=m.body,
                   action=as_member(InboundAction, m.action), needs_review=m.needs_review, _model=m)

    @strawberry.field
    def received_at(self, info: Info) -> datetime:
        return info.context.local(self._model.received_at)

    @strawberry.field
    def from_number(self, info: Info) -> str:
        number = self._model.from_number
        if may_read_pii(actor_of(info)):
            personal_data.read(info, "InboundMessage", self._model.id, "fromNumber", number,
                               allowed=True)
            return format_national(number) if number.startswith("+") else number
        return mask(number)

    @strawberry.field
    async def resident(self, info: Info
                       ) -> Annotated[Resident, strawberry.lazy(_PEOPLE)] | None:
        from divide_support.api.people.types import Resident

        if self._model.resident_id is None:
            return None
        row = await loader(info.context, ResidentLoader).load(self._model.resident_id)
        return Resident.from_model(row) if row else None


@strawberry.type(description="A resident whom SMS will not reach for a session: phone them.")
class PhoneInstead:
    reason: str
    _registration: strawberry.Private[object]

    @strawberry.field
    async def registration(self, info: Info) -> Annotated[Registration, strawberry.lazy(_SCHEDULING)]:
        from divide_support.api.scheduling.types import Registration

        return Registration.from_model(self._registration)  # type: ignore[arg-type]


@strawberry.type(description="Automated calls placed in one month (local time), for budgeting: "
                 "Twilio bills each call by the minute, rounded up.")
class CallUsage:
    month: str
    calls: int
    answered: int = strawberry.field(description="Calls a person answered.")
    machine: int = strawberry.field(description="Calls an answering machine took.")
    minutes: int


@strawberry.type(description="SMS handed to the provider in one month (local time), for budgeting.")
class SmsUsage:
    month: str
    messages: int
    segments: int
    _municipality_id: strawberry.Private[int]

    @strawberry.field
    async def municipality(self, info: Info) -> Municipality:
        row = await loader(info.context, MunicipalityLoader).load(self._municipality_id)
        return Municipality.from_model(row)
