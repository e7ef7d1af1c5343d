"""Helpers for the service-level tests: sessions that are running or past, quick look-ups of
what users see (statuses, waitlist positions, audit entries) and row counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factories
from tortoise.models import Model

from divide_support.audit.models import AuditEntry
from divide_support.core.actor import Actor
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    Registration,
    RegistrationSource,
    RegistrationStatus,
    Session,
    SessionKind,
)


def now() -> datetime:
    return datetime.now(UTC)


async def running_session(actor: Actor, *, capacity: int | None = 10,
                          kind: SessionKind = SessionKind.CLASS) -> Session:
    """A session that started an hour ago and ends in an hour."""
    return await factories.session(actor, now() - timedelta(hours=1), hours=2, capacity=capacity,
                                   kind=kind)


async def past_session(actor: Actor, *, days_ago: int = 2, capacity: int | None = 10,
                       kind: SessionKind = SessionKind.CLASS) -> Session:
    """A session held some days ago at 10:00 Tokyo time (entered later from paper)."""
    return await factories.session(actor, factories.at(days=-days_ago, hour=10), capacity=capacity,
                                   kind=kind)


async def let_session_start(session: Session) -> Session:
    """Time passes: the session (scheduled in the future) is now under way."""
    length = session.ends_at - session.starts_at
    starts = now() - timedelta(minutes=30)
    await Session.filter(id=session.id).update(starts_at=starts, ends_at=starts + length)
    return await Session.get(id=session.id)


async def residents(actor: Actor, n: int, **kwargs) -> list:
    return [await factories.resident(actor, **kwargs) for _ in range(n)]


async def register_all(actor: Actor, session_id: int, people: list,
                       source: RegistrationSource | None = None) -> list[Registration]:
    return [await scheduling.register(actor=actor, session_id=session_id, resident_id=p.id,
                                      source=source)
            for p in people]


async def reload(obj: Model) -> Model:
    return await type(obj).get(id=obj.pk)


async def confirmed_ids(session_id: int) -> list[int]:
    """Resident ids holding a seat."""
    return sorted(await Registration.filter(
        session_id=session_id, status=RegistrationStatus.CONFIRMED
    ).values_list("resident_id", flat=True))


async def waitlist(session_id: int) -> list[tuple[int, int]]:
    """(position, resident_id) in waitlist order."""
    rows = await Registration.filter(
        session_id=session_id, status=RegistrationStatus.WAITLISTED
    ).order_by("waitlist_position", "id").values_list("waitlist_position", "resident_id")
    return [(position, resident_id) for position, resident_id in rows]


async def counts(*models: type[Model]) -> dict[str, int]:
    return {model.__name__: await model.all().count() for model in models}


async def audit_entries(action: str, object_id: int | None = None) -> list[AuditEntry]:
    entries = await AuditEntry.filter(action=action).order_by("id")
    if object_id is None:
        return entries
    return [e for e in entries if object_id in (e.object_ids or [])]


async def assert_audited_once(action: str, object_id: int, actor_email: str, municipality_id: int,
                              object_type: str | None = None) -> AuditEntry:
    """Exactly one audit row of `action` names `object_id`, written by `actor_email` in
    `municipality_id` (of `object_type`, when given): what every area's audit test asserts."""
    entries = await audit_entries(action, object_id)
    assert [(e.actor_email, e.municipality_id) for e in entries] == [
        (actor_email, municipality_id)], (action, object_id)
    if object_type is not None:
        assert entries[0].object_type == object_type, (action, object_id)
    return entries[0]
