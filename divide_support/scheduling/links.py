"""What scheduling answers for the areas below it about its registrations and visits
(followups.links): registered when the scheduling package is imported."""

from __future__ import annotations

from divide_support.accounts.models import Municipality
from divide_support.core.actor import Actor
from divide_support.core.errors import DomainError
from divide_support.core.tenancy import get_scoped
from divide_support.followups import links as followup_links
from divide_support.messaging.templates import MessageFacts
from divide_support.people.models import Resident
from divide_support.scheduling.errors import SchedulingCode
from divide_support.scheduling.models import Registration, Session, Visit
from divide_support.scheduling.notices import facts


class FollowUpLinks:
    """A follow-up's registration or visit, as followups may ask about it."""

    async def check(self, actor: Actor, resident_id: int, *, registration_id: int | None,
                    visit_id: int | None) -> None:
        for model, object_id, what, field, message, message_en in (
                (Registration, registration_id, "申込", "registration_id",
                 "申込がこの住民のものではありません。",
                 "The registration belongs to another resident."),
                (Visit, visit_id, "相談記録", "visit_id",
                 "相談記録がこの住民のものではありません。",
                 "The visit belongs to another resident.")):
            if object_id is None:
                continue
            row = await get_scoped(model, object_id, actor, what=what, field=field)
            if row.resident_id != resident_id:
                raise DomainError(SchedulingCode.MISMATCH, message, field, message_en=message_en)

    async def facts(self, *, registration_id: int | None, visit_id: int | None,
                    resident: Resident, municipality: Municipality) -> MessageFacts | None:
        if registration_id is not None:
            session_id = (await Registration.get(id=registration_id)).session_id
        elif visit_id is not None:
            session_id = (await Visit.get(id=visit_id)).session_id
        else:
            return None
        session = await Session.filter(id=session_id).select_related("venue", "course").get()
        return facts(session, session.venue, session.course, resident, municipality)


followup_links.register(FollowUpLinks())
