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
    """Phone numbers, birth dates and notes: ADMIN and COORDINATOR only."""
    return actor.role in (Role.ADMIN, Role.COORDINATOR)
