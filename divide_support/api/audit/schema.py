from __future__ import annotations

import strawberry

from divide_support.api.audit.types import AuditEntry
from divide_support.api.context import Info
from divide_support.api.pagination import Connection, paginate_query
from divide_support.api.permissions import actor_of
from divide_support.audit import service as audit
from divide_support.core.actor import Role


@strawberry.type
class AuditQuery:
    @strawberry.field(description="The append-only audit log of the caller's municipality "
                      "(ADMIN only), newest first.")
    async def audit_log(
        self, info: Info, action: str | None = None, object_type: str | None = None,
        first: int | None = None, after: str | None = None,
    ) -> Connection[AuditEntry]:
        actor = actor_of(info, Role.ADMIN)
        return await paginate_query(
            audit.entries_query(actor, action=action, object_type=object_type),
            first, after, AuditEntry.from_model)
