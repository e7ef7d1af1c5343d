"""Who is acting: passed to every service function (tenancy and audit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from divide_support.core.requestctx import current_request_id


class Role(StrEnum):
    ADMIN = "ADMIN"
    COORDINATOR = "COORDINATOR"
    SUPPORTER = "SUPPORTER"
    PLANNER = "PLANNER"


STAFF_ROLES = frozenset({Role.ADMIN, Role.COORDINATOR})


@dataclass(frozen=True)
class Actor:
    municipality_id: int
    role: Role
    user_id: int | None = None
    email: str | None = None
    supporter_id: int | None = None
    timezone: str = "Asia/Tokyo"
    # The server's id of the request being served (see core/requestctx), so every audit row
    # of one request, whoever acts in it, carries the same id.
    request_id: str = field(default_factory=current_request_id)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @classmethod
    def system(cls, municipality_id: int, timezone: str = "Asia/Tokyo") -> Actor:
        """The CLI, seeding and the demo act as a system ADMIN of one municipality."""
        return cls(municipality_id=municipality_id, role=Role.ADMIN, email="system",
                   timezone=timezone)
