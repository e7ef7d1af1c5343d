from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from divide_support.api.context import Info
from divide_support.api.errors import mutate, raise_as_graphql
from divide_support.api.people.schema import ResidentPayload
from divide_support.api.people.types import Resident
from divide_support.api.permissions import actor_of
from divide_support.core.ids import decode_id
from divide_support.privacy import service as privacy


@strawberry.input
class EraseResidentInput:
    resident_id: strawberry.ID


@strawberry.type
class PrivacyQuery:
    @strawberry.field(description="ADMIN: everything held about one resident, for a disclosure "
                      "request (個人情報の開示請求). The export is written to the audit log.")
    async def export_resident(self, info: Info, resident_id: strawberry.ID) -> JSON:
        actor = actor_of(info)

        async def run():
            return await privacy.export_resident(actor=actor, resident_id=decode_id(
                resident_id, "Resident", "resident_id", "住民"))

        return await raise_as_graphql(run)


@strawberry.type
class PrivacyMutation:
    @strawberry.mutation(description="ADMIN: erase a resident's personal data on their request "
                         "(name, numbers, birth date, notes, message texts). Anonymous counts "
                         "stay, so reports do not change. Refused while they hold an upcoming place.")
    async def erase_resident(self, info: Info, input: EraseResidentInput) -> ResidentPayload:
        actor = actor_of(info)

        async def run():
            return await privacy.erase_resident(actor=actor, resident_id=decode_id(
                input.resident_id, "Resident", "resident_id", "住民"))

        return await mutate(info, ResidentPayload, run, resident=Resident.from_model)
