from __future__ import annotations

from datetime import date

import strawberry

from divide_support.api.context import Info
from divide_support.api.enums import FollowUpChannel, FollowUpOutcome, FollowUpStatus
from divide_support.api.errors import UserError, mutate
from divide_support.api.followups.types import FollowUp
from divide_support.api.pagination import Connection, paginate_query
from divide_support.api.permissions import actor_of, staff_of
from divide_support.core.ids import decode_id, decode_optional
from divide_support.followups import service as followups


@strawberry.input
class ScheduleFollowUpInput:
    resident_id: strawberry.ID
    due_on: date
    channel: FollowUpChannel
    registration_id: strawberry.ID | None = None
    visit_id: strawberry.ID | None = None
    assigned_to_id: strawberry.ID | None = None
    notes: str | None = None


@strawberry.input
class CompleteFollowUpInput:
    follow_up_id: strawberry.ID
    outcome: FollowUpOutcome
    notes: str | None = None
    next_due_on: date | None = strawberry.field(
        default=None, description="The next check, planned with this outcome in one step "
        "(both or neither): its date, today or later. Needs nextChannel.")
    next_channel: FollowUpChannel | None = strawberry.field(
        default=None, description="How the next check is made. Needs nextDueOn.")


@strawberry.type
class FollowUpPayload:
    follow_up: FollowUp | None = None
    errors: list[UserError]


@strawberry.type
class FollowUpsQuery:
    @strawberry.field
    async def follow_ups(
        self, info: Info, status: FollowUpStatus | None = None, due_before: date | None = None,
        assigned_to_me: bool | None = None, first: int | None = None, after: str | None = None,
    ) -> Connection[FollowUp]:
        actor = staff_of(info)
        query = followups.follow_ups_query(actor, status=status, due_before=due_before,
                                           assigned_to_me=bool(assigned_to_me))
        return await paginate_query(query, first, after, FollowUp.from_model)


@strawberry.type
class FollowUpsMutation:
    @strawberry.mutation
    async def schedule_follow_up(self, info: Info, input: ScheduleFollowUpInput
                                 ) -> FollowUpPayload:
        actor = actor_of(info)

        async def run():
            return await followups.schedule_follow_up(
                actor=actor,
                resident_id=decode_id(input.resident_id, "Resident", "resident_id",
                                      "住民"),
                registration_id=decode_optional(input.registration_id, "Registration",
                                                "registration_id", "申込"),
                visit_id=decode_optional(input.visit_id, "Visit", "visit_id",
                                         "相談記録"),
                assigned_to_id=decode_optional(input.assigned_to_id, "User",
                                               "assigned_to_id", "担当者"),
                due_on=input.due_on, channel=input.channel, notes=input.notes)

        return await mutate(info, FollowUpPayload, run, follow_up=FollowUp.from_model)

    @strawberry.mutation
    async def complete_follow_up(self, info: Info, input: CompleteFollowUpInput
                                 ) -> FollowUpPayload:
        actor = actor_of(info)

        async def run():
            return await followups.complete_follow_up(
                actor=actor,
                follow_up_id=decode_id(input.follow_up_id, "FollowUp", "follow_up_id",
                                       "フォローアップ"),
                outcome=input.outcome, notes=input.notes, next_due_on=input.next_due_on,
                next_channel=input.next_channel)

        return await mutate(info, FollowUpPayload, run, follow_up=FollowUp.from_model)
