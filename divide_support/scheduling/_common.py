"""What the scheduling modules share: the session lock, the one status rule and the checks
and refusals several of them make.

Concurrency: every change to a session's seats locks the session row
(SELECT ... FOR UPDATE) for its transaction (`_lock_session`), so capacity and the FIFO
waitlist hold under any number of simultaneous requests. Supporter assignments lock the
supporter row after the session row (always in that order, so no deadlocks).
"""

from __future__ import annotations

from datetime import datetime

from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.errors import CoreCode, DomainError
from divide_support.core.tenancy import get_scoped
from divide_support.scheduling.errors import SchedulingCode
from divide_support.scheduling.models import Session, SessionStatus

MAX_SESSION_HOURS = 12


def effective_status(session: Session, at: datetime | None = None) -> SessionStatus:
    """COMPLETED is not stored: a scheduled session whose end has passed is completed."""
    if session.status == SessionStatus.CANCELLED:
        return SessionStatus.CANCELLED
    if session.ends_at <= (at or timeutil.now()):
        return SessionStatus.COMPLETED
    return SessionStatus.SCHEDULED


def _non_negative(value: int | None, field: str, label: str, *, minimum: int = 0) -> None:
    if value is not None and value < minimum:
        raise DomainError(CoreCode.BAD_USER_INPUT, f"{label}は{minimum}以上の数を入力してください。",
                          field, message_en=f"{field} must be at least {minimum}.")


def _session_not_open(message: str, message_en: str, field: str = "session_id") -> DomainError:
    return DomainError(SchedulingCode.SESSION_NOT_OPEN, message, field, message_en=message_en)


async def _lock_session(session_id: int, actor: Actor, field: str = "session_id") -> Session:
    return await get_scoped(Session, session_id, actor, what="開催回", field=field,
                            for_update=True)
