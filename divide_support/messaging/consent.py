"""SMS consent and opt-out (set by staff, or by a reply or the provider: STOP, 21610), and
consent to automated calls (set by staff, with who recorded it and when)."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor, Role
from divide_support.core.errors import DomainError
from divide_support.core.permissions import require_staff
from divide_support.core.tenancy import get_scoped
from divide_support.messaging.errors import MessagingCode
from divide_support.messaging.models import InboundMessage
from divide_support.messaging.planning import revive_for_resident
from divide_support.people.models import Resident
from divide_support.people.service import ensure_not_erased


async def set_opt_out(*, actor: Actor, resident_id: int, opted_out: bool,
                      inbound_message_id: int | None = None) -> Resident:
    """Staff record that a resident wants no more SMS (the primary path in Japan, where
    replies to alphanumeric senders do not arrive), or that they want them again."""
    require_staff(actor)
    async with in_transaction():
        resident = await get_scoped(Resident, resident_id, actor, what="住民",
                                    field="resident_id", for_update=True)
        ensure_not_erased(resident)
        await _apply_opt_out([resident], opted_out)
        if inbound_message_id is not None:
            await InboundMessage.filter(id=inbound_message_id,
                                        municipality_id=actor.municipality_id).update(
                needs_review=False, reviewed_at=timeutil.now(), reviewed_by_id=actor.user_id)
        await audit.record(actor, "resident.sms_opt_out" if opted_out else "resident.sms_opt_in",
                           "Resident", [resident.id])
    return await Resident.get(id=resident.id)


async def _apply_opt_out(residents: list[Resident], opted_out: bool) -> None:
    for resident in residents:
        resident.sms_opted_out = opted_out
        await resident.save(update_fields=["sms_opted_out", "updated_at"])
        if not opted_out:
            await revive_for_resident(resident)


async def set_sms_consent(*, actor: Actor, resident_id: int, consent: bool) -> Resident:
    require_staff(actor)
    async with in_transaction():
        resident = await get_scoped(Resident, resident_id, actor, what="住民",
                                    field="resident_id", for_update=True)
        ensure_not_erased(resident)
        if consent and not resident.phone:
            raise DomainError(MessagingCode.NO_MOBILE, "携帯電話番号が登録されていないため、SMSを送れません。",
                              "resident_id",
                              message_en="The resident has no mobile number.")
        resident.sms_consent = consent
        await resident.save(update_fields=["sms_consent", "updated_at"])
        if consent:
            await revive_for_resident(resident)
        await audit.record(actor, "resident.sms_consent", "Resident", [resident.id],
                           {"consent": consent})
    return await Resident.get(id=resident.id)


async def set_call_consent(*, actor: Actor, resident_id: int, consent: bool) -> Resident:
    """Staff record that a resident agrees (or no longer agrees) to automated calls for the
    confirmation and the day-before reminder. A landline alone is enough: calls are for
    residents SMS cannot reach. Who recorded it and when is kept on the resident."""
    require_staff(actor)
    async with in_transaction():
        resident = await get_scoped(Resident, resident_id, actor, what="住民",
                                    field="resident_id", for_update=True)
        ensure_not_erased(resident)
        if consent and not (resident.landline or resident.phone):
            raise DomainError(MessagingCode.NO_PHONE_NUMBER,
                              "電話番号が登録されていないため、自動音声の電話をかけられません。",
                              "resident_id", message_en="The resident has no phone number.")
        resident.call_consent = consent
        resident.call_consent_at = timeutil.now()
        resident.call_consent_by_id = actor.user_id
        await resident.save(update_fields=["call_consent", "call_consent_at",
                                           "call_consent_by_id", "updated_at"])
        if consent:
            await revive_for_resident(resident)
        await audit.record(actor, "resident.call_consent", "Resident", [resident.id],
                           {"consent": consent})
    return await Resident.get(id=resident.id)


async def opt_out_by_phone(municipality_id: int, phone: str, opted_out: bool, source: str
                           ) -> list[int]:
    """From a reply (STOP / 停止, START / 再開) or the provider's 21610: every resident of
    the municipality with that mobile number."""
    actor = Actor(municipality_id=municipality_id, role=Role.ADMIN, email=source)
    async with in_transaction():
        residents = await Resident.filter(municipality_id=municipality_id,
                                          phone=phone).select_for_update()
        changed = [r for r in residents if r.sms_opted_out != opted_out]
        await _apply_opt_out(changed, opted_out)
        if changed:
            await audit.record(actor, "resident.sms_opt_out" if opted_out
                               else "resident.sms_opt_in", "Resident", [r.id for r in changed])
    return [r.id for r in residents]
