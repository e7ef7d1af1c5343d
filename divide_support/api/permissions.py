"""Who is asking: resolvers start here."""

from __future__ import annotations

from divide_support.api.context import Info
from divide_support.api.errors import forbidden, unauthenticated
from divide_support.core.actor import Actor, Role
from divide_support.core.permissions import may_read_pii


def actor_of(info: Info, *roles: Role) -> Actor:
    """The caller; UNAUTHENTICATED without a valid token, FORBIDDEN outside `roles`."""
    actor = info.context.actor
    if actor is None:
        raise unauthenticated()
    if roles and actor.role not in roles:
        raise forbidden()
    return actor


def staff_of(info: Info) -> Actor:
    return actor_of(info, Role.ADMIN, Role.COORDINATOR)


__all__ = ["actor_of", "may_read_pii", "staff_of"]
