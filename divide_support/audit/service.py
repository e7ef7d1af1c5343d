"""Append-only audit log: who did what to which object, and who read personal data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from divide_support.audit.models import AuditEntry
from divide_support.core.actor import Actor


async def record(
    actor: Actor,
    action: str,
    object_type: str | None = None,
    object_ids: Iterable[int] = (),
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one entry; call inside the transaction of the change it describes."""
    return await AuditEntry.create(
        municipality_id=actor.municipality_id,
        actor_user_id=actor.user_id,
        actor_email=actor.email,
        actor_role=str(actor.role),
        action=action,
        object_type=object_type,
        object_ids=sorted(set(object_ids)),
        request_id=actor.request_id,
        details=details or {},
    )


def entries_query(actor: Actor, *, action: str | None = None, object_type: str | None = None):
    query = AuditEntry.filter(municipality_id=actor.municipality_id)
    if action:
        query = query.filter(action=action)
    if object_type:
        query = query.filter(object_type=object_type)
    return query.order_by("-created_at", "-id")
