from __future__ import annotations

import strawberry

from divide_support.api.context import Info
from divide_support.api.enums import MessageKind, MessageStatus
from divide_support.api.errors import UserError, mutate, raise_as_graphql
from divide_support.api.messaging.types import (
    CallUsage,
    InboundMessage,
    Message,
    PhoneInstead,
    SmsUsage,
)
from divide_support.api.pagination import MAX_PAGE_SIZE, Connection, paginate_query
from divide_support.api.people.schema import ResidentPayload
from divide_support.api.people.types import Resident
from divide_support.api.permissions import actor_of, staff_of
from divide_support.core.errors import DomainError
from divide_support.core.ids import decode_filter_id, decode_id, decode_optional
from divide_support.messaging import service as messaging
from divide_support.scheduling import notices


@strawberry.input
class ResendMessageInput:
    message_id: strawberry.ID


@strawberry.input
class SetSmsConsentInput:
    resident_id: strawberry.ID
    consent: bool


@strawberry.input
class SetCallConsentInput:
    resident_id: strawberry.ID
    consent: bool


@strawberry.input
class SetSmsOptOutInput:
    resident_id: strawberry.ID
    opted_out: bool
    "The reply that prompted this, if any: it is marked as reviewed."
    reply_id: strawberry.ID | None = None


@strawberry.input
class MarkReplyReviewedInput:
    reply_id: strawberry.ID


@strawberry.type
class MessagePayload:
    message: Message | None = None
    errors: list[UserError]


@strawberry.type
class ReplyPayload:
    reply: InboundMessage | None = None
    errors: list[UserError]


@strawberry.type
class MessagingQuery:
    @strawberry.field(description="The SMS outbox, newest first (ADMIN, COORDINATOR).")
    async def messages(
        self, info: Info, status: MessageStatus | None = None, kind: MessageKind | None = None,
        session_id: strawberry.ID | None = None, first: int | None = None,
        after: str | None = None,
    ) -> Connection[Message]:
        actor = staff_of(info)
        query = messaging.messages_query(actor, status=status, kind=kind,
                                         session_id=decode_filter_id(session_id, "Session"))
        return await paginate_query(query, first, after, Message.from_model)

    @strawberry.field(description="People holding a seat or waitlist place whom SMS will not "
                      "reach (no consent, no mobile, prefers calls, opted out, failed): phone them.")
    async def residents_to_phone(self, info: Info, session_id: strawberry.ID
                                 ) -> list[PhoneInstead]:
        actor = staff_of(info)
        try:
            pk = decode_id(session_id, "Session", "session_id", "開催回")
            rows = await notices.residents_to_phone(actor=actor, session_id=pk)
        except DomainError:
            return []
        return [PhoneInstead(reason=reason, _registration=registration)
                for registration, reason in rows]

    @strawberry.field(description="residentsToPhone for every scheduled session of the next "
                      "`days` days (1 to 14), at one venue or all, soonest session first: the "
                      "counter's list of whom to phone (the `first` of them when asked).")
    async def residents_to_phone_soon(self, info: Info, days: int = 3,
                                      venue_id: strawberry.ID | None = None,
                                      first: int | None = None) -> list[PhoneInstead]:
        actor = staff_of(info)
        rows = await raise_as_graphql(lambda: notices.residents_to_phone_soon(
            actor=actor, days=max(1, min(days, 14)),
            venue_id=decode_filter_id(venue_id, "Venue")))
        if first is not None:  # the soonest sessions' people first; a list page shows a few
            rows = rows[:max(1, min(first, MAX_PAGE_SIZE))]
        return [PhoneInstead(reason=reason, _registration=registration)
                for registration, reason in rows]

    @strawberry.field(description="Messages and segments sent per month, newest first, "
                      "for the SMS budget (Japanese SMS are billed per 70-character segment).")
    async def sms_usage(self, info: Info, months: int = 12) -> list[SmsUsage]:
        actor = actor_of(info)
        rows = await messaging.sms_usage(actor=actor, months=months)
        return [SmsUsage(month=r["month"], messages=r["messages"], segments=r["segments"],
                         _municipality_id=actor.municipality_id) for r in rows]

    @strawberry.field(description="Automated calls placed per month, newest first, with the "
                      "minutes billed: the budget's line beside smsUsage.")
    async def call_usage(self, info: Info, months: int = 12) -> list[CallUsage]:
        rows = await messaging.call_usage(actor=actor_of(info), months=months)
        return [CallUsage(month=r["month"], calls=r["calls"], answered=r["answered"],
                          machine=r["machine"], minutes=r["minutes"]) for r in rows]

    @strawberry.field(description="Replies from residents, newest first; needsReview: "
                      "they may want no more SMS.")
    async def sms_replies(self, info: Info, needs_review: bool | None = None,
                          first: int | None = None, after: str | None = None
                          ) -> Connection[InboundMessage]:
        actor = staff_of(info)
        return await paginate_query(messaging.replies_query(actor, needs_review=needs_review),
                                    first, after, InboundMessage.from_model)


@strawberry.type
class MessagingMutation:
    @strawberry.mutation(description="Send a FAILED or UNDELIVERED message again.")
    async def resend_message(self, info: Info, input: ResendMessageInput) -> MessagePayload:
        actor = actor_of(info)

        async def run():
            return await messaging.resend(actor=actor, message_id=decode_id(
                input.message_id, "Message", "message_id", "メッセージ"))

        return await mutate(info, MessagePayload, run, message=Message.from_model)

    @strawberry.mutation(description="Record whether the resident agreed to receive SMS.")
    async def set_sms_consent(self, info: Info, input: SetSmsConsentInput) -> ResidentPayload:
        actor = actor_of(info)

        async def run():
            return await messaging.set_sms_consent(actor=actor, consent=input.consent,
                                                   resident_id=decode_id(
                input.resident_id, "Resident", "resident_id", "住民"))

        return await mutate(info, ResidentPayload, run, resident=Resident.from_model)

    @strawberry.mutation(description="Record whether the resident agreed to automated voice "
                         "calls for the confirmation and the day-before reminder (a landline "
                         "is enough). Who recorded it and when is kept.")
    async def set_call_consent(self, info: Info, input: SetCallConsentInput) -> ResidentPayload:
        actor = actor_of(info)

        async def run():
            return await messaging.set_call_consent(actor=actor, consent=input.consent,
                                                    resident_id=decode_id(
                input.resident_id, "Resident", "resident_id", "住民"))

        return await mutate(info, ResidentPayload, run, resident=Resident.from_model)

    @strawberry.mutation(description="Stop (or restart) all SMS to a resident, e.g. after a "
                         "phone call or a reply asking to stop.")
    async def set_sms_opt_out(self, info: Info, input: SetSmsOptOutInput) -> ResidentPayload:
        actor = actor_of(info)

        async def run():
            return await messaging.set_opt_out(
                actor=actor, opted_out=input.opted_out,
                resident_id=decode_id(input.resident_id, "Resident", "resident_id",
                                      "住民"),
                inbound_message_id=decode_optional(input.reply_id, "InboundMessage",
                                                   "reply_id", "返信"))

        return await mutate(info, ResidentPayload, run, resident=Resident.from_model)

    @strawberry.mutation(description="Mark a reply as read by staff.")
    async def mark_reply_reviewed(self, info: Info, input: MarkReplyReviewedInput
                                  ) -> ReplyPayload:
        actor = actor_of(info)

        async def run():
            return await messaging.mark_reply_reviewed(actor=actor, inbound_id=decode_id(
                input.reply_id, "InboundMessage", "reply_id", "返信"))

        return await mutate(info, ReplyPayload, run, reply=InboundMessage.from_model)
