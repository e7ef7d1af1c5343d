"""A follow-up may be about a registration or a visit, which scheduling owns. Scheduling sits
above followups (it creates follow-ups after a class or a visit), so followups asks through
this narrow interface instead of reading scheduling's tables: scheduling registers its answers
when its package is imported."""

from __future__ import annotations

from typing import Protocol

from divide_support.accounts.models import Municipality
from divide_support.core.actor import Actor
from divide_support.messaging.templates import MessageFacts
from divide_support.people.models import Resident


class Links(Protocol):
    async def check(self, actor: Actor, resident_id: int, *, registration_id: int | None,
                    visit_id: int | None) -> None:
        """Raise DomainError unless the registration and the visit (those given) are the
        actor's municipality's and the resident's."""

    async def facts(self, *, registration_id: int | None, visit_id: int | None,
                    resident: Resident, municipality: Municipality) -> MessageFacts | None:
        """What a message about the session the follow-up is after may say (the
        registration's session, else the visit's), or None."""


_links: list[Links] = []


def register(links: Links) -> None:
    _links[:] = [links]


def links() -> Links:
    if not _links:
        raise RuntimeError("divide_support.scheduling is not loaded: nothing answers for "
                           "a follow-up's registration or visit")
    return _links[0]
