"""Follow-up tasks: did the person manage on their own afterwards?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from tortoise.transactions import in_transaction

from divide_support.accounts.models import User
from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.errors import DomainError, NotFound
from divide_support.core.permissions import require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import NOTES_MAX, clean_text
from divide_support.followups import notices
from divide_support.followups.errors import FollowupsCode
from divide_support.followups.links import links
from divide_support.followups.models import (
    FollowUp,
    FollowUpChannel,
    FollowUpOutcome,
    FollowUpPurpose,
    FollowUpStatus,
)
from divide_support.messaging import service as messaging
from divide_support.people.models import ContactPreference, Resident
from divide_support.people.service import can_receive_sms, ensure_not_erased

VISIT_FOLLOW_UP_DAYS = 7

_CHANNEL_FOR_PREFERENCE = {
    ContactPreference.SMS: FollowUpChannel.SMS,
    ContactPreference.PHONE_CALL: FollowUpChannel.PHONE_CALL,
    ContactPreference.POST: FollowUpChannel.POST,
    # No stated preference: a phone call is what centres do.
    ContactPreference.NONE: FollowUpChannel.PHONE_CALL,
}


def channel_for(resident: Resident) -> FollowUpChannel:
    channel = _CHANNEL_FOR_PREFERENCE[ContactPreference(resident.contact_preference)]
    if channel == FollowUpChannel.SMS and not can_receive_sms(resident):
        return FollowUpChannel.PHONE_CALL
    return channel


async def create_automatic(
    *,
    actor: Actor,
    resident: Resident,
    purpose: FollowUpPurpose,
    due_on: date,
    channel: FollowUpChannel | None = None,
    registration_id: int | None = None,
    visit_id: int | None = None,
    notes: str | None = None,
) -> FollowUp:
    """Called by other services inside their transaction (after class, after visit, seat)."""
    follow_up = await FollowUp.create(
        municipality_id=actor.municipality_id,
        resident_id=resident.id,
        registration_id=registration_id,
        visit_id=visit_id,
        purpose=purpose,
        due_on=due_on,
        channel=channel or channel_for(resident),
        notes=notes,
    )
    await notices.plan_follow_up(follow_up)
    await audit.record(actor, "followup.create", "FollowUp", [follow_up.id],
                       {"purpose": str(purpose)})
    return follow_up


async def cancel_open_for_registration(
    *, registration_id: int, purpose: FollowUpPurpose, actor: Actor
) -> int:
    open_ids = await FollowUp.filter(
        municipality_id=actor.municipality_id,
        registration_id=registration_id,
        purpose=purpose,
        status=FollowUpStatus.OPEN,
    ).values_list("id", flat=True)
    for follow_up_id in open_ids:
        await messaging.cancel_for_follow_up(follow_up_id)
    return await FollowUp.filter(id__in=list(open_ids)).update(status=FollowUpStatus.CANCELLED)


async def schedule_follow_up(
    *,
    resident_id: int,
    due_on: date,
    channel: FollowUpChannel,
    actor: Actor,
    registration_id: int | None = None,
    visit_id: int | None = None,
    assigned_to_id: int | None = None,
    notes: str | None = None,
) -> FollowUp:
    require_staff(actor)
    resident = await get_scoped(Resident, resident_id, actor, what="住民",
                                field="resident_id")
    ensure_not_erased(resident)
    await links().check(actor, resident.id, registration_id=registration_id, visit_id=visit_id)
    if assigned_to_id is not None:
        if not await User.filter(id=assigned_to_id, municipality_id=actor.municipality_id,
                                 active=True).exists():
            raise NotFound("担当者", "assigned_to_id")
    clean_notes = clean_text(notes, "notes", "メモ", NOTES_MAX, multiline=True)
    if due_on < timeutil.today(actor.timezone) - timedelta(days=365):
        raise DomainError(FollowupsCode.INVALID_DATE, "期日が古すぎます。", "due_on",
                          message_en="The due date is too far in the past.")
    async with in_transaction():
        follow_up = await FollowUp.create(
            municipality_id=actor.municipality_id,
            resident_id=resident.id,
            registration_id=registration_id,
            visit_id=visit_id,
            purpose=FollowUpPurpose.MANUAL,
            due_on=due_on,
            channel=channel,
            assigned_to_id=assigned_to_id,
            notes=clean_notes,
        )
        await notices.plan_follow_up(follow_up)
        await audit.record(actor, "followup.create", "FollowUp", [follow_up.id],
                           {"purpose": "MANUAL"})
    return follow_up


@dataclass(frozen=True)
class NextStep:
    """The next check agreed on the phone (「また来週お電話します」)."""

    due_on: date
    channel: FollowUpChannel


def _check_next_step(due_on: date | None, channel: FollowUpChannel | None,
                     actor: Actor) -> NextStep | None:
    if due_on is None and channel is None:
        return None
    if due_on is None or channel is None:
        missing = "next_due_on" if due_on is None else "next_channel"
        raise DomainError(FollowupsCode.NEXT_STEP_INCOMPLETE, "次の確認の日と方法を両方とも選んでください。",
                          missing,
                          message_en="The next check needs both a date and a channel.")
    # a next step lies ahead: a date in the past would be overdue the moment it is made
    if due_on < timeutil.today(actor.timezone):
        raise DomainError(FollowupsCode.INVALID_DATE, "次の確認の日は今日以降の日にしてください。",
                          "next_due_on",
                          message_en="The next check must be today or later.")
    if due_on > timeutil.today(actor.timezone) + timedelta(days=366):
        raise DomainError(FollowupsCode.INVALID_DATE, "次の確認の日は1年以内の日にしてください。",
                          "next_due_on",
                          message_en="The next check must be within a year.")
    return NextStep(due_on=due_on, channel=channel)


async def complete_follow_up(
    *, follow_up_id: int, outcome: FollowUpOutcome, actor: Actor, notes: str | None = None,
    next_due_on: date | None = None, next_channel: FollowUpChannel | None = None,
) -> FollowUp:
    """Record the outcome; with a next step, the next follow-up is planned in the same
    transaction (both or neither: staff never half-record a call)."""
    require_staff(actor)
    clean_notes = clean_text(notes, "notes", "メモ", NOTES_MAX, multiline=True)
    next_step = _check_next_step(next_due_on, next_channel, actor)
    async with in_transaction():
        follow_up = await get_scoped(FollowUp, follow_up_id, actor, what="フォローアップ",
                                     field="follow_up_id", for_update=True)
        if follow_up.status != FollowUpStatus.OPEN:
            raise DomainError(FollowupsCode.FOLLOW_UP_CLOSED, "このフォローアップは既に完了または取消済みです。",
                              "follow_up_id",
                              message_en="This follow-up is already closed.")
        follow_up.status = FollowUpStatus.DONE
        follow_up.outcome = outcome
        follow_up.completed_at = timeutil.now()
        if clean_notes:
            follow_up.notes = f"{follow_up.notes}\n{clean_notes}" if follow_up.notes else clean_notes
        await follow_up.save()
        await messaging.cancel_for_follow_up(follow_up.id)
        await audit.record(actor, "followup.complete", "FollowUp", [follow_up.id],
                           {"outcome": str(outcome)})
        if next_step is not None:
            following = await FollowUp.create(
                municipality_id=actor.municipality_id, resident_id=follow_up.resident_id,
                registration_id=follow_up.registration_id, visit_id=follow_up.visit_id,
                purpose=FollowUpPurpose.MANUAL, due_on=next_step.due_on,
                channel=next_step.channel, assigned_to_id=follow_up.assigned_to_id)
            await notices.plan_follow_up(following)
            await audit.record(actor, "followup.create", "FollowUp", [following.id],
                               {"purpose": "MANUAL", "after": follow_up.id})
    return follow_up


def follow_ups_query(
    actor: Actor,
    *,
    status: FollowUpStatus | None = None,
    due_before: date | None = None,
    assigned_to_me: bool = False,
    resident_id: int | None = None,
):
    require_staff(actor)
    query = FollowUp.filter(municipality_id=actor.municipality_id)
    if status is not None:
        query = query.filter(status=status)
    if due_before is not None:
        query = query.filter(due_on__lt=due_before)
    if assigned_to_me:
        query = query.filter(assigned_to_id=actor.user_id)
    if resident_id is not None:
        query = query.filter(resident_id=resident_id)
    return query.order_by("due_on", "id")


async def erase_for_resident(resident_id: int) -> None:
    """Open follow-ups are called off (nobody is to phone an erased person) and every note
    goes; done ones stay as they are for the reports."""
    open_ids = await FollowUp.filter(resident_id=resident_id,
                                     status=FollowUpStatus.OPEN).values_list("id", flat=True)
    for follow_up_id in open_ids:
        await messaging.cancel_for_follow_up(follow_up_id)
    await FollowUp.filter(id__in=list(open_ids)).update(status=FollowUpStatus.CANCELLED)
    await FollowUp.filter(resident_id=resident_id).update(notes=None)
