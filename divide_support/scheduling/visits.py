"""Visits: drop-ins at a help session, anonymous or by a known resident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tortoise.transactions import in_transaction

from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.errors import CoreCode, DomainError, NotFound
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import NOTES_MAX, clean_text
from divide_support.followups import service as followups
from divide_support.followups.models import FollowUpPurpose
from divide_support.people.models import Resident, Supporter
from divide_support.people.service import ensure_not_erased
from divide_support.scheduling._common import _session_not_open
from divide_support.scheduling.assignments import _require_staff_or_assigned
from divide_support.scheduling.errors import SchedulingCode
from divide_support.scheduling.models import (
    ACTIVE_STATUSES,
    CourseTopic,
    Registration,
    Session,
    SessionKind,
    SessionStatus,
    Visit,
    VisitOutcome,
)


@dataclass(frozen=True)
class VisitInput:
    session_id: int
    topic: CourseTopic
    outcome: VisitOutcome
    resident_id: int | None = None
    age_at_visit: int | None = None
    helped_by_id: int | None = None
    notes: str | None = None


async def record_visit(*, actor: Actor, data: VisitInput) -> Visit:
    """A drop-in visit at a help session; NEEDS_FOLLOW_UP plans a follow-up in 7 days."""
    await _require_staff_or_assigned(actor, data.session_id)
    session = await get_scoped(Session, data.session_id, actor, what="開催回",
                               field="session_id")
    if session.kind != SessionKind.HELP_SESSION:
        raise DomainError(SchedulingCode.WRONG_SESSION_KIND, "相談記録はスマホ相談会の回にだけ登録できます。",
                          "session_id",
                          message_en="Visits belong to HELP_SESSION sessions.")
    if session.status == SessionStatus.CANCELLED:
        raise _session_not_open("中止された回には記録できません。", "The session was cancelled.")
    if session.starts_at > timeutil.now():
        raise DomainError(SchedulingCode.SESSION_NOT_STARTED, "相談記録は開始時刻になってから登録できます。",
                          "session_id",
                          message_en="Visits can be recorded once the session starts.")
    if data.age_at_visit is not None and not 0 <= data.age_at_visit <= 120:
        raise DomainError(CoreCode.BAD_USER_INPUT, "年齢は0〜120の数で入力してください。",
                          "age_at_visit", message_en="ageAtVisit must be 0..120.")
    resident = None
    age = data.age_at_visit
    if data.resident_id is not None:
        resident = await get_scoped(Resident, data.resident_id, actor, what="住民",
                                    field="resident_id")
        if not actor.is_staff and not await _takes_part(resident.id, session.id):
            # A supporter names only people of their own session; anyone else is, to them,
            # a resident that does not exist (staff link other visitors, or it stays anonymous).
            raise NotFound("住民", "resident_id")
        ensure_not_erased(resident)
        if age is None:
            age = timeutil.age_on(resident.birth_date, resident.birth_year,
                                  timeutil.local_date(session.starts_at, actor.timezone))
    if data.outcome == VisitOutcome.NEEDS_FOLLOW_UP and resident is None:
        raise DomainError(
            SchedulingCode.RESIDENT_REQUIRED,
            "フォローアップが必要な場合は、連絡できるよう住民を登録してから記録してください。",
            "resident_id",
            message_en="A follow-up needs a known resident to contact.",
        )
    visit_notes = clean_text(data.notes, "notes", "メモ", NOTES_MAX, multiline=True)
    helped_by_id = data.helped_by_id
    if helped_by_id is None and actor.supporter_id is not None:
        helped_by_id = actor.supporter_id
    if helped_by_id is not None:
        await get_scoped(Supporter, helped_by_id, actor, what="支援員",
                         field="helped_by_id")
    async with in_transaction():
        visit = await Visit.create(
            municipality_id=actor.municipality_id,
            session_id=session.id,
            resident_id=resident.id if resident else None,
            age_at_visit=age,
            topic=data.topic,
            outcome=data.outcome,
            helped_by_id=helped_by_id,
            notes=visit_notes,
        )
        if data.outcome == VisitOutcome.NEEDS_FOLLOW_UP and resident is not None:
            due = timeutil.local_date(session.starts_at, actor.timezone) + timedelta(
                days=followups.VISIT_FOLLOW_UP_DAYS)
            await followups.create_automatic(
                actor=actor, resident=resident, purpose=FollowUpPurpose.AFTER_VISIT,
                due_on=due, visit_id=visit.id, notes="相談会で解決しきれなかった内容の確認",
            )
        await audit.record(actor, "visit.create", "Visit", [visit.id],
                           {"sessionId": session.id, "anonymous": resident is None})
    return visit


async def _takes_part(resident_id: int, session_id: int) -> bool:
    """The resident holds (or held and used) a place at the session, or visited it."""
    registered = await Registration.filter(
        session_id=session_id, resident_id=resident_id,
        status__in=ACTIVE_STATUSES).exists()
    return registered or await Visit.filter(session_id=session_id,
                                            resident_id=resident_id).exists()
