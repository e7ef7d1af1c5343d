from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from divide_support.audit import models
from divide_support.core.ids import to_global_id


@strawberry.type(description="One append-only audit log entry (ADMIN only).")
class AuditEntry:
    id: strawberry.ID
    created_at: datetime
    actor_user_id: strawberry.ID | None
    actor_email: str | None
    actor_role: str | None
    action: str
    object_type: str | None
    object_ids: list[strawberry.ID]
    request_id: str | None = strawberry.field(description="The server's id of the request "
                                               "(its X-Request-ID response header).")
    client_request_id: str | None = strawberry.field(
        description="The X-Request-ID the client sent, if any (never used as ours).")
    client_address: str | None
    details: JSON

    @classmethod
    def from_model(cls, m: models.AuditEntry) -> AuditEntry:
        object_type = m.object_type
        ids = [strawberry.ID(to_global_id(object_type, pk)) for pk in m.object_ids] \
            if object_type else []
        return cls(id=strawberry.ID(str(m.id)), created_at=m.created_at,
                   actor_user_id=strawberry.ID(to_global_id("User", m.actor_user_id))
                   if m.actor_user_id else None,
                   actor_email=m.actor_email, actor_role=m.actor_role, action=m.action,
                   object_type=object_type, object_ids=ids, request_id=m.request_id,
                   client_request_id=m.client_request_id, client_address=m.client_address,
                   details=m.details)
