"""Registrations: seats, the FIFO waitlist and attendance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tortoise.expressions import F, Q
from tortoise.functions import Count, Max
from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor, Role
from divide_support.core.errors import DomainError
from divide_support.core.permissions import require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import NOTES_MAX, clean_text
from divide_support.followups import service as followups
from divide_support.followups.models import FollowUpChannel, FollowUpPurpose
from divide_support.messaging import occasions
from divide_support.messaging import service as messaging
from divide_support.messaging.models import Message, MessageKind
from divide_support.people.models import Resident
from divide_support.people.service import can_receive_sms, ensure_not_erased
from divide_support.scheduling import notices
from divide_support.scheduling._common import _lock_session, _session_not_open, effective_status
from divide_support.scheduling.assignments import _require_staff_or_assigned, is_assigned
from divide_support.scheduling.errors import SchedulingCode
from divide_support.scheduling.models import (
    ACTIVE_STATUSES,
    Attendance,
    Registration,
    RegistrationSource,
    RegistrationStatus,
    Session,
    SessionKind,
    SessionStatus,
)


async def _municipality(actor: Actor) -> Municipality:
    return await Municipality.get(id=actor.municipality_id)


async def _promote(registration: Registration, actor: Actor) -> None:
    """Seat a waitlisted resident; phone them when no SMS can reach them."""
    registration.status = RegistrationStatus.CONFIRMED
    registration.waitlist_position = None
    registration.promoted_at = timeutil.now()
    await registration.save(update_fields=["status", "waitlist_position", "promoted_at"])
    resident = await Resident.get(id=registration.resident_id)
    await notices.plan_registration(registration, promoted=True, resident=resident)
    session = await Session.get(id=registration.session_id)
    # Once the session runs, a call "you have a seat" comes too late: they are at the door.
    if not can_receive_sms(resident) and session.starts_at > timeutil.now():
        await followups.create_automatic(
            actor=actor,
            resident=resident,
            purpose=FollowUpPurpose.SEAT_AVAILABLE,
            due_on=timeutil.today(actor.timezone),
            channel=FollowUpChannel.PHONE_CALL,
            registration_id=registration.id,
            notes="キャンセル待ちから参加確定になりました。席が取れたことを電話でお伝えください。",
        )


async def _close_waitlist_gap(session_id: int, position: int) -> None:
    await Registration.filter(
        session_id=session_id, status=RegistrationStatus.WAITLISTED,
        waitlist_position__gt=position,
    ).update(waitlist_position=F("waitlist_position") - 1)


async def _fill_free_seats(session: Session, actor: Actor) -> list[int]:
    """Promote waitlisted residents, first come first served, into free seats.
    Caller holds the session lock."""
    if session.status == SessionStatus.CANCELLED or effective_status(session) != (
        SessionStatus.SCHEDULED
    ):
        return []
    confirmed = await Registration.filter(
        session_id=session.id, status=RegistrationStatus.CONFIRMED).count()
    free = None if session.capacity is None else session.capacity - confirmed
    waiting = Registration.filter(
        session_id=session.id, status=RegistrationStatus.WAITLISTED
    ).order_by("waitlist_position", "id")
    if free is not None:
        if free <= 0:
            return []
        waiting = waiting.limit(free)
    promoted = await waiting
    for registration in promoted:
        await _promote(registration, actor)
    if promoted:
        # Renumber what is left so positions stay 1..n.
        remaining = await Registration.filter(
            session_id=session.id, status=RegistrationStatus.WAITLISTED
        ).order_by("waitlist_position", "id")
        for index, registration in enumerate(remaining, start=1):
            if registration.waitlist_position != index:
                registration.waitlist_position = index
                await registration.save(update_fields=["waitlist_position"])
    return [r.id for r in promoted]


@dataclass(frozen=True)
class _Places:
    confirmed: int
    last_waitlist_position: int  # 0 when nobody waits
    already_registered: bool  # the resident holds a seat or a waitlist place


async def _places(session_id: int, resident_id: int) -> _Places:
    """Where a session's seats and waitlist stand, and whether the resident holds one, in one
    statement. Caller holds the session lock."""
    [row] = await Registration.filter(session_id=session_id).annotate(
        confirmed=Count("id", _filter=Q(status=RegistrationStatus.CONFIRMED)),
        last=Max("waitlist_position", _filter=Q(status=RegistrationStatus.WAITLISTED)),
        mine=Count("id", _filter=Q(resident_id=resident_id, status__in=ACTIVE_STATUSES)),
    ).values("confirmed", "last", "mine")
    return _Places(confirmed=row["confirmed"], last_waitlist_position=row["last"] or 0,
                   already_registered=row["mine"] > 0)


def _capacity_full_at_the_door() -> DomainError:
    # Nobody waits for a seat in a class that is already running.
    return DomainError(SchedulingCode.CAPACITY_FULL,
                       "定員に達しています。当日参加を受け付けるには先に定員を増やしてください。",
                       "session_id",
                       message_en="The session is full; raise the capacity first.")


async def register(
    *,
    actor: Actor,
    session_id: int,
    resident_id: int,
    source: RegistrationSource | None = None,
) -> Registration:
    """Seat the resident, or put them on the FIFO waitlist when the session is full."""
    require_staff(actor)
    source = source or RegistrationSource.PHONE
    async with in_transaction():
        session = await _lock_session(session_id, actor)
        resident = await get_scoped(Resident, resident_id, actor, what="住民",
                                    field="resident_id")
        ensure_not_erased(resident)
        now = timeutil.now()
        if session.status == SessionStatus.CANCELLED:
            raise _session_not_open("この回は中止されたため申し込めません。",
                                    "This session is cancelled.")
        started = session.starts_at <= now
        if started and source != RegistrationSource.WALK_IN:
            raise _session_not_open(
                "開始済みの回には申し込めません。当日の飛び入り参加は「当日参加（WALK_IN）」で登録してください。",
                "The session has started; register people at the door with source WALK_IN.",
            )
        places = await _places(session.id, resident.id)
        if places.already_registered:
            raise DomainError(SchedulingCode.ALREADY_REGISTERED, "この方は既にこの回に申し込まれています。",
                              "resident_id",
                              message_en="This resident is already registered for this session.")
        has_seat = session.capacity is None or places.confirmed < session.capacity
        if not has_seat and started:
            raise _capacity_full_at_the_door()
        position = None if has_seat else places.last_waitlist_position + 1
        registration = await Registration.create(
            municipality_id=actor.municipality_id,
            session_id=session.id,
            resident_id=resident.id,
            status=RegistrationStatus.CONFIRMED if has_seat else RegistrationStatus.WAITLISTED,
            waitlist_position=position,
            source=source,
        )
        await notices.plan_registration(registration, resident=resident)
        await audit.record(actor, "registration.create", "Registration", [registration.id],
                           {"sessionId": session.id, "residentId": resident.id,
                            "status": str(registration.status), "source": str(source)})
    return registration


async def cancel_registration(
    *, actor: Actor, registration_id: int, reason: str | None = None
) -> Registration:
    """Cancel a seat or waitlist place; a freed seat goes to the first on the waitlist."""
    return (await cancel_registration_promoting(actor=actor, registration_id=registration_id,
                                                reason=reason))[0]


async def cancel_registration_promoting(
    *, actor: Actor, registration_id: int, reason: str | None = None
) -> tuple[Registration, list[Registration]]:
    """cancel_registration, with the waitlisted registrations the freed seat went to (so
    staff can say at once who got the seat, and whether to phone them)."""
    require_staff(actor)
    async with in_transaction():
        registration = await get_scoped(Registration, registration_id, actor, what="申込",
                                        field="registration_id")
        session = await _lock_session(registration.session_id, actor, "registration_id")
        registration = await Registration.get(id=registration.id)  # re-read under the lock
        if registration.status == RegistrationStatus.CANCELLED:
            raise DomainError(SchedulingCode.ALREADY_CANCELLED, "この申込は既に取り消されています。",
                              "registration_id",
                              message_en="This registration is already cancelled.")
        if session.starts_at <= timeutil.now() and session.status != SessionStatus.CANCELLED:
            raise _session_not_open(
                "開始済みの回の申込は取り消せません。欠席の場合は出欠で「欠席」を記録してください。",
                "The session has started; record NO_SHOW instead.",
                "registrationId",
            )
        was = registration.status
        position = registration.waitlist_position
        registration.status = RegistrationStatus.CANCELLED
        registration.waitlist_position = None
        registration.cancelled_at = timeutil.now()
        registration.cancel_reason = clean_text(reason, "reason", "取消理由", NOTES_MAX,
                                                multiline=True)
        await registration.save()
        await messaging.cancel_for_registration(registration.id)
        promoted: list[int] = []
        if was == RegistrationStatus.WAITLISTED and position is not None:
            await _close_waitlist_gap(session.id, position)
        elif was == RegistrationStatus.CONFIRMED:
            promoted = await _fill_free_seats(session, actor)
        await audit.record(actor, "registration.cancel", "Registration", [registration.id],
                           # Whether a reason was given, never its words: the trail is
                           # append-only, and free text may name the person.
                           {"reasonGiven": registration.cancel_reason is not None,
                            "promotedRegistrations": promoted})
    return registration, list(await Registration.filter(id__in=promoted).order_by("id"))


async def record_attendance(
    *, actor: Actor, registration_id: int, attendance: Attendance
) -> Registration:
    """Attendance once the session has started; ATTENDED at a class plans a follow-up."""
    async with in_transaction():
        registration = await get_scoped(Registration, registration_id, actor, what="申込",
                                        field="registration_id", for_update=True)
        await _require_staff_or_assigned(actor, registration.session_id)
        session = await Session.get(id=registration.session_id)
        if session.status == SessionStatus.CANCELLED:
            raise _session_not_open("中止された回の出欠は記録できません。",
                                    "The session was cancelled.", "registrationId")
        if session.starts_at > timeutil.now():
            raise DomainError(SchedulingCode.SESSION_NOT_STARTED, "出欠は開始時刻になってから記録できます。",
                              "registration_id",
                              message_en="Attendance can be recorded once the session starts.")
        if registration.status != RegistrationStatus.CONFIRMED:
            raise DomainError(
                SchedulingCode.NOT_CONFIRMED,
                "参加確定の申込だけ出欠を記録できます。キャンセル待ちの方が来場した場合は、"
                "定員を増やすとキャンセル待ちの順に参加確定になります。",
                "registration_id",
                message_en="Only confirmed registrations have attendance.",
            )
        previous = registration.attendance
        registration.attendance = attendance
        if attendance == Attendance.ATTENDED:
            registration.checked_in_at = registration.checked_in_at or timeutil.now()
        else:
            registration.checked_in_at = None
        await registration.save(update_fields=["attendance", "checked_in_at"])
        if session.kind == SessionKind.CLASS and previous != attendance:
            if attendance == Attendance.ATTENDED:
                municipality = await _municipality(actor)
                resident = await Resident.get(id=registration.resident_id)
                due = timeutil.local_date(session.starts_at, actor.timezone) + timedelta(
                    days=municipality.follow_up_days)
                await followups.create_automatic(
                    actor=actor, resident=resident, purpose=FollowUpPurpose.AFTER_CLASS,
                    due_on=due, registration_id=registration.id,
                    notes=f"「{session.title}」受講後の様子の確認",
                )
            else:
                await followups.cancel_open_for_registration(
                    registration_id=registration.id, purpose=FollowUpPurpose.AFTER_CLASS,
                    actor=actor)
        await audit.record(actor, "registration.attendance", "Registration", [registration.id],
                           {"attendance": str(attendance)})
    return registration


def registrations_query(
    actor: Actor,
    *,
    session_id: int | None = None,
    resident_id: int | None = None,
    status: RegistrationStatus | None = None,
):
    query = Registration.filter(municipality_id=actor.municipality_id)
    if session_id is not None:
        query = query.filter(session_id=session_id)
    if resident_id is not None:
        query = query.filter(resident_id=resident_id)
    if status is not None:
        query = query.filter(status=status)
    if status == RegistrationStatus.WAITLISTED:
        return query.order_by("waitlist_position", "id")
    return query.order_by("created_at", "id")


def registrations_in_order(registrations: list[Registration],
                           status: RegistrationStatus | None = None) -> list[Registration]:
    """A session's registrations (as read, oldest first) as its list shows them: only those
    with `status` when one is asked for, and the waitlist in its FIFO order (position, then
    id), the order registrations_query gives it."""
    if status is None:
        return registrations
    chosen = [r for r in registrations if r.status == status]
    if status == RegistrationStatus.WAITLISTED:
        chosen.sort(key=lambda r: (r.waitlist_position or 0, r.id))
    return chosen


async def may_see_attendees(actor: Actor, session_id: int) -> bool:
    """Staff see everyone; a supporter sees attendees of sessions they help at."""
    return actor.is_staff or await is_assigned(actor, session_id)


# --- a resident's answer on an automated call ----------------------------------------------

CALL_CANCEL_REASON = "自動音声の電話で取りやめ（2を押しました）"


async def give_up_by_call(message: Message) -> bool:
    """The resident pressed 2 on a call about their seat or waitlist place: cancelled exactly
    as staff cancelling it would (the next on the waitlist is seated and told). Nothing
    happens when it is no longer held or the session has started."""
    if message.registration_id is None or message.kind == MessageKind.FOLLOW_UP:
        return False
    municipality = await Municipality.get(id=message.municipality_id)
    actor = Actor(municipality_id=municipality.id, role=Role.COORDINATOR,
                  email="voice-call", timezone=municipality.timezone)
    try:
        await cancel_registration(actor=actor, registration_id=message.registration_id,
                                  reason=CALL_CANCEL_REASON)
    except DomainError:
        return False
    return True


occasions.register_release("scheduling", give_up_by_call)
