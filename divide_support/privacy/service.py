"""Residents' rights (個人情報の開示・消去) and retention: erase one resident on request,
erase those whose data is past the municipality's retention period, and disclose everything
held about one resident.

Erasing keeps the anonymous counts: the row stays (so a person is still one participant) with
the ages the reports need, and only what identifies them goes. Each area erases its own
tables (people, scheduling, followups, messaging); this module decides when and audits it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor, Role
from divide_support.core.errors import DomainError
from divide_support.core.permissions import require_role
from divide_support.core.tenancy import get_scoped
from divide_support.followups import service as followups
from divide_support.followups.models import FollowUp
from divide_support.messaging import service as messaging
from divide_support.messaging.models import InboundMessage, Message
from divide_support.people import service as people
from divide_support.people.models import Resident
from divide_support.privacy.errors import PrivacyCode
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import Registration, Visit


async def _erase(resident: Resident, municipality: Municipality, actor: Actor,
                 reason: str) -> None:
    """Inside the caller's transaction, with the resident's row locked."""
    await scheduling.erase_for_resident(resident, municipality.timezone)
    await followups.erase_for_resident(resident.id)
    await messaging.erase_for_resident(resident)
    await people.erase_personal_data(resident,
                                     keep_birth_year=municipality.erasure_keeps_birth_year)
    await audit.record(actor, "resident.erase", "Resident", [resident.id], {"reason": reason})


async def erase_resident(*, actor: Actor, resident_id: int) -> Resident:
    """ADMIN, on the resident's request. Refused while they hold a place at a session that
    has not ended (cancel it first: the waitlist moves up as usual)."""
    require_role(actor, Role.ADMIN)
    async with in_transaction():
        resident = await get_scoped(Resident, resident_id, actor, what="住民",
                                    field="resident_id", for_update=True)
        if resident.erased_at is not None:
            raise DomainError(PrivacyCode.ALREADY_ERASED, "この方の個人情報は既に消去されています。",
                              "resident_id",
                              message_en="This resident's personal data is already erased.")
        upcoming = await scheduling.upcoming_registrations(resident.id)
        if upcoming:
            raise DomainError(
                PrivacyCode.HAS_UPCOMING_REGISTRATIONS,
                f"この方にはこれからの申込が{upcoming}件あります。先に申込を取り消してから消去してください。",
                "resident_id",
                message_en=f"The resident holds {upcoming} upcoming places; cancel them first.")
        municipality = await Municipality.get(id=actor.municipality_id)
        await _erase(resident, municipality, actor, "request")
    return resident


# --- retention -------------------------------------------------------------------------------

# The last sign of life per resident: their own row changing, a session they held a place at,
# a visit, a follow-up, a message. Residents with an upcoming place are never due.
_DUE_SQL = """
SELECT p.id
FROM resident p
WHERE p.municipality_id = $1 AND p.erased_at IS NULL
  AND greatest(
        p.updated_at,
        (SELECT max(s.ends_at) FROM registration r JOIN session s ON s.id = r.session_id
          WHERE r.resident_id = p.id),
        (SELECT max(v.created_at) FROM visit v WHERE v.resident_id = p.id),
        (SELECT max(greatest(f.created_at, f.completed_at)) FROM follow_up f
          WHERE f.resident_id = p.id),
        (SELECT max(m.created_at) FROM message m WHERE m.resident_id = p.id)
      ) < $2
ORDER BY p.id
"""


@dataclass(frozen=True)
class RetentionDue:
    municipality: Municipality
    cutoff: datetime
    resident_ids: list[int]


async def retention_due(municipality: Municipality) -> RetentionDue:
    """Residents of the municipality with no activity for its retention period."""
    cutoff = timeutil.now() - timedelta(days=round(365.25 * municipality.retention_years))
    rows = await connections.get("default").execute_query_dict(_DUE_SQL, [municipality.id,
                                                                         cutoff])
    due = [row["id"] for row in rows]
    # An upcoming place counts as activity whatever its date of booking.
    due = [rid for rid in due if not await scheduling.upcoming_registrations(rid)]
    return RetentionDue(municipality, cutoff, due)


async def purge_due(due: RetentionDue) -> int:
    """Erase each resident found due, one transaction each (a failure leaves the others),
    re-checked under the row lock. Audited as the system acting for the municipality."""
    actor = Actor.system(due.municipality.id, due.municipality.timezone)
    erased = 0
    for resident_id in due.resident_ids:
        async with in_transaction():
            resident = await Resident.filter(id=resident_id,
                                             erased_at__isnull=True).select_for_update().first()
            if resident is None or await scheduling.upcoming_registrations(resident_id):
                continue
            await _erase(resident, due.municipality, actor, "retention")
            erased += 1
    return erased


# --- disclosure --------------------------------------------------------------------------------

# Audit entries about anything of theirs: $2 maps an object type to the ids that are the
# resident's (their record, registrations, visits, follow-ups, messages, replies).
_TRAIL_SQL = """
SELECT created_at, action, actor_role FROM audit_entry
WHERE municipality_id = $1 AND $2::jsonb ? object_type AND EXISTS (
    SELECT 1 FROM jsonb_array_elements(object_ids) AS e WHERE ($2::jsonb -> object_type) @> e)
ORDER BY created_at, id
"""


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


async def export_resident(*, actor: Actor, resident_id: int) -> dict[str, Any]:
    """Everything held about one resident (a disclosure request under the personal
    information protection rules), as JSON-ready data; the export itself is audited."""
    require_role(actor, Role.ADMIN)
    resident = await get_scoped(Resident, resident_id, actor, what="住民",
                                field="resident_id")
    municipality = await Municipality.get(id=actor.municipality_id)
    registrations = await Registration.filter(resident_id=resident.id).select_related(
        "session", "session__venue").order_by("created_at", "id")
    visits = await Visit.filter(resident_id=resident.id).select_related(
        "session").order_by("created_at", "id")
    follow_ups = await FollowUp.filter(resident_id=resident.id).order_by("due_on", "id")
    messages = await Message.filter(resident_id=resident.id).order_by("created_at", "id")
    replies = await InboundMessage.filter(resident_id=resident.id).order_by("received_at", "id")
    theirs = {"Resident": [resident.id], "Registration": [r.id for r in registrations],
              "Visit": [v.id for v in visits], "FollowUp": [f.id for f in follow_ups],
              "Message": [m.id for m in messages], "InboundMessage": [i.id for i in replies]}
    trail = await connections.get("default").execute_query_dict(_TRAIL_SQL, [
        actor.municipality_id, json.dumps(theirs)])
    data = {
        "heldBy": municipality.name,
        "exportedAt": _iso(timeutil.now()),
        "resident": {
            "familyName": resident.family_name, "givenName": resident.given_name,
            "kana": resident.kana, "phone": resident.phone, "landline": resident.landline,
            "birthDate": _iso(resident.birth_date), "birthYear": resident.birth_year,
            "contactPreference": str(resident.contact_preference),
            "smsConsent": resident.sms_consent, "smsOptedOut": resident.sms_opted_out,
            "device": str(resident.device) if resident.device else None,
            "district": resident.district, "notes": resident.notes,
            "supportNeeds": resident.support_needs,
            "createdAt": _iso(resident.created_at), "updatedAt": _iso(resident.updated_at),
            "erasedAt": _iso(resident.erased_at),
        },
        "registrations": [{
            "session": r.session.title, "startsAt": _iso(r.session.starts_at),
            "venue": r.session.venue.name, "status": str(r.status), "source": str(r.source),
            "attendance": str(r.attendance) if r.attendance else None,
            "waitlistPosition": r.waitlist_position, "cancelReason": r.cancel_reason,
            "createdAt": _iso(r.created_at), "cancelledAt": _iso(r.cancelled_at),
        } for r in registrations],
        "visits": [{
            "session": v.session.title, "startsAt": _iso(v.session.starts_at),
            "topic": str(v.topic), "outcome": str(v.outcome), "ageAtVisit": v.age_at_visit,
            "notes": v.notes,
        } for v in visits],
        "followUps": [{
            "dueOn": _iso(f.due_on), "channel": str(f.channel), "status": str(f.status),
            "purpose": str(f.purpose), "outcome": str(f.outcome) if f.outcome else None,
            "notes": f.notes, "completedAt": _iso(f.completed_at),
        } for f in follow_ups],
        "messages": [{
            "kind": str(m.kind), "status": str(m.status), "to": m.to, "body": m.body,
            "sendAfter": _iso(m.send_after), "sentAt": _iso(m.sent_at),
            "deliveredAt": _iso(m.delivered_at),
        } for m in messages],
        "replies": [{
            "receivedAt": _iso(i.received_at), "from": i.from_number, "body": i.body,
        } for i in replies],
        # Who looked at or changed anything of theirs, and when (staff by role, not by name).
        "accessLog": [{
            "at": _iso(e["created_at"]), "action": e["action"], "byRole": e["actor_role"],
        } for e in trail],
    }
    await audit.record(actor, "resident.export", "Resident", [resident.id])
    return data
