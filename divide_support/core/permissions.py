"""Role checks used by the services (the one place rules about roles live)."""

from __future__ import annotations

from divide_support.core.actor import Actor, Role
from divide_support.core.errors import Forbidden


def require_role(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise Forbidden()


def require_staff(actor: Actor) -> None:
    require_role(actor, Role.ADMIN, Role.COORDINATOR)


def may_read_pii(actor: Actor) -> bool:
    """Residents' phone numbers, birth dates and every staff note (resident, visit,
    follow-up), message recipients and reply senders: ADMIN and COORDINATOR only."""
    return actor.role in (Role.ADMIN, Role.COORDINATOR)


def may_read_supporters(actor: Actor) -> bool:
    """Supporters' names, kana, organisation and skills: staff and supporters (colleagues
    at the same sessions); planners get aggregates only."""
    return actor.role != Role.PLANNER


def may_read_session_counts(actor: Actor) -> bool:
    """Seats taken, seats left and the waitlist of one session are counts of a few people:
    not for planners (their reports hide every count of 1-4)."""
    return actor.role != Role.PLANNER


def require_supporter_reader(actor: Actor) -> None:
    if not may_read_supporters(actor):
        raise Forbidden()
