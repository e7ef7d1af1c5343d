"""Supporter assignments: who staffs a session, the one overlap rule, and who may act as a
session's supporter."""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from divide_support.audit import service as audit
from divide_support.core.actor import Actor
from divide_support.core.errors import DomainError
from divide_support.core.permissions import require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.people.models import Supporter
from divide_support.scheduling._common import _lock_session, _session_not_open, effective_status
from divide_support.scheduling.errors import SchedulingCode
from divide_support.scheduling.models import Assignment, AssignmentRole, RemovedAssignment, Session, SessionStatus


async def assign_supporter(
    *, actor: Actor, session_id: int, supporter_id: int, role: AssignmentRole | None = None
) -> Assignment:
    """Staff a session. A session that has ended can be staffed too: staff entering a past
    session from the paper sign-in sheet record who helped (the activity report counts
    them). That is a record, not a request, and nobody is told: an assignment never sends
    anything, and a past duty appears only in the supporter's own feed. Cancelled sessions
    are refused, past or not; the overlap rule holds for past duties too."""
    require_staff(actor)
    role = role or AssignmentRole.ASSISTANT
    async with in_transaction():
        session = await _lock_session(session_id, actor)
        if session.status == SessionStatus.CANCELLED:
            raise _session_not_open("中止された回には支援員を割り当てられません。",
                                    "Cannot staff a cancelled session.")
        backfilled = effective_status(session) == SessionStatus.COMPLETED
        supporter = await get_scoped(Supporter, supporter_id, actor, what="支援員",
                                     field="supporter_id", for_update=True)
        if not supporter.active:
            raise DomainError(SchedulingCode.SUPPORTER_INACTIVE, "この支援員は現在活動していません。",
                              "supporter_id",
                              message_en="This supporter is not active.")
        if role == AssignmentRole.LEAD and not supporter.certified:
            raise DomainError(SchedulingCode.LEAD_NOT_CERTIFIED,
                              "講師役（LEAD）は認定を受けた支援員に限られます。",
                              "role",
                              message_en="Only certified supporters can lead.")
        if await Assignment.filter(session_id=session.id, supporter_id=supporter.id).exists():
            raise DomainError(SchedulingCode.ALREADY_ASSIGNED, "この支援員は既にこの回の担当です。",
                              "supporter_id",
                              message_en="This supporter is already assigned here.")
        if await _booked_elsewhere(supporter.id, session.starts_at, session.ends_at, session.id):
            raise DomainError(SchedulingCode.SUPPORTER_DOUBLE_BOOKED,
                              "この支援員は同じ時間帯に別の回を担当しています。",
                              "supporter_id",
                              message_en="This supporter is booked elsewhere at that time.")
        assignment = await Assignment.create(
            municipality_id=actor.municipality_id, session_id=session.id,
            supporter_id=supporter.id, role=role,
        )
        await audit.record(actor, "assignment.create", "Assignment", [assignment.id],
                           {"sessionId": session.id, "supporterId": supporter.id,
                            "role": str(role), "backfilled": backfilled})
    return assignment


async def unassign_supporter(*, actor: Actor, assignment_id: int) -> Assignment:
    require_staff(actor)
    async with in_transaction():
        assignment = await get_scoped(Assignment, assignment_id, actor, what="担当",
                                      field="assignment_id")
        await _lock_session(assignment.session_id, actor)
        await RemovedAssignment.create(
            municipality_id=assignment.municipality_id, assignment_id=assignment.id,
            session_id=assignment.session_id, supporter_id=assignment.supporter_id,
            role=assignment.role, calendar_token=assignment.calendar_token)
        await Assignment.filter(id=assignment.id).delete()
        await audit.record(actor, "assignment.delete", "Assignment", [assignment.id],
                           {"sessionId": assignment.session_id,
                            "supporterId": assignment.supporter_id})
    return assignment


async def is_assigned(actor: Actor, session_id: int) -> bool:
    if actor.supporter_id is None:
        return False
    return await Assignment.filter(session_id=session_id, supporter_id=actor.supporter_id,
                                   municipality_id=actor.municipality_id).exists()


async def _require_staff_or_assigned(actor: Actor, session_id: int) -> None:
    if actor.is_staff:
        return
    if not await is_assigned(actor, session_id):
        require_staff(actor)


async def _booked_elsewhere(supporter_id: int, starts_at: datetime, ends_at: datetime,
                            session_id: int) -> bool:
    """The one overlap rule: the supporter has a duty at another scheduled session that
    overlaps [starts_at, ends_at) (SUPPORTER_DOUBLE_BOOKED)."""
    return await Assignment.filter(
        supporter_id=supporter_id,
        session__status=SessionStatus.SCHEDULED,
        session__starts_at__lt=ends_at,
        session__ends_at__gt=starts_at,
    ).exclude(session_id=session_id).exists()


async def _check_supporters_free(
    session: Session, starts_at: datetime, ends_at: datetime, supporter_ids: list[int]
) -> None:
    for supporter_id in sorted(supporter_ids):
        await Supporter.filter(id=supporter_id).select_for_update().first()
        if await _booked_elsewhere(supporter_id, starts_at, ends_at, session.id):
            raise DomainError(
                SchedulingCode.SUPPORTER_DOUBLE_BOOKED,
                "担当の支援員がこの時間帯に別の回を担当しています。",
                "starts_at",
                message_en="An assigned supporter is booked elsewhere at that time.",
            )
