from __future__ import annotations

from datetime import date

import strawberry

from divide_support.api.context import Info
from divide_support.api.enums import ContactPreference, Device, SupporterAffiliation
from divide_support.api.errors import UserError, attempt, mutate
from divide_support.api.pagination import Connection, paginate_query
from divide_support.api.people.types import Resident, Supporter
from divide_support.api.permissions import actor_of, staff_of
from divide_support.core.ids import decode_id
from divide_support.people import service as people


@strawberry.input
class CreateResidentInput:
    family_name: str
    given_name: str
    kana: str | None = None
    phone: str | None = None
    landline: str | None = None
    birth_date: date | None = None
    birth_year: int | None = None
    contact_preference: ContactPreference | None = None
    sms_consent: bool | None = None
    device: Device | None = None
    district: str | None = None
    notes: str | None = None
    support_needs: str | None = strawberry.field(
        default=None, description="What the resident asks the supporters to know or help "
        "with (e.g. 字を大きくしてほしい); the supporters of their sessions read it, unlike notes.")
    allow_duplicate: bool | None = strawberry.field(
        default=None,
        description="Create even though possibleDuplicates found someone (a different person "
                    "with the same name and birth year, or sharing the mobile); recorded in the "
                    "audit log. Without it such a creation is refused with POSSIBLE_DUPLICATE.")


@strawberry.input
class UpdateResidentInput:
    resident_id: strawberry.ID
    family_name: str | None = strawberry.UNSET
    given_name: str | None = strawberry.UNSET
    kana: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    landline: str | None = strawberry.UNSET
    birth_date: date | None = strawberry.UNSET
    birth_year: int | None = strawberry.UNSET
    contact_preference: ContactPreference | None = strawberry.UNSET
    sms_consent: bool | None = strawberry.UNSET
    device: Device | None = strawberry.UNSET
    district: str | None = strawberry.UNSET
    notes: str | None = strawberry.UNSET
    support_needs: str | None = strawberry.UNSET


@strawberry.type
class ResidentPayload:
    resident: Resident | None = None
    errors: list[UserError]
    possible_duplicates: list[Resident] = strawberry.field(
        default_factory=list,
        description="createResident refused with POSSIBLE_DUPLICATE: the residents this may be "
                    "(the same mobile number, or the same name and birth year). Ask the caller; "
                    "use one of them, or send allowDuplicate: true.")


@strawberry.input
class CreateSupporterInput:
    display_name: str
    affiliation: SupporterAffiliation
    kana: str | None = None
    organisation: str | None = None
    phone: str | None = None
    email: str | None = None
    skills: list[str] | None = None
    certified: bool | None = None


@strawberry.input(description="Only the fields sent change; null clears an optional one.")
class UpdateSupporterInput:
    supporter_id: strawberry.ID
    display_name: str | None = strawberry.UNSET
    kana: str | None = strawberry.UNSET
    affiliation: SupporterAffiliation | None = strawberry.UNSET
    organisation: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    skills: list[str] | None = strawberry.UNSET
    certified: bool | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET


@strawberry.input
class RotateCalendarFeedTokenInput:
    supporter_id: strawberry.ID


@strawberry.type
class SupporterPayload:
    supporter: Supporter | None = None
    errors: list[UserError]


_RESIDENT_FIELDS = ("family_name", "given_name", "kana", "phone", "landline", "birth_date",
                    "birth_year", "contact_preference", "sms_consent", "device", "district",
                    "notes", "support_needs")


def _resident_fields(input: object) -> people.ResidentFields:
    values = {}
    for name in _RESIDENT_FIELDS:
        value = getattr(input, name)
        if value is strawberry.UNSET:
            continue
        values[name] = value
    return people.ResidentFields(**values)


@strawberry.type
class PeopleQuery:
    @strawberry.field
    async def residents(self, info: Info, search: str | None = None, first: int | None = None,
                        after: str | None = None) -> Connection[Resident]:
        actor = staff_of(info)
        return await paginate_query(people.residents_query(actor, search), first, after,
                                    Resident.from_model)

    @strawberry.field
    async def supporters(self, info: Info, active: bool | None = None, skill: str | None = None,
                         first: int | None = None, after: str | None = None,
                         ) -> Connection[Supporter]:
        actor = actor_of(info)
        return await paginate_query(people.supporters_query(actor, active=active, skill=skill),
                                    first, after, Supporter.from_model)


@strawberry.type
class PeopleMutation:
    @strawberry.mutation
    async def create_resident(self, info: Info, input: CreateResidentInput) -> ResidentPayload:
        actor = actor_of(info)
        fields = _resident_fields(input)
        matches: list = []

        async def run():
            try:
                return await people.create_resident(fields=fields, actor=actor,
                                                     allow_duplicate=bool(input.allow_duplicate))
            except people.PossibleDuplicate as refused:
                matches.extend(refused.residents)  # shown with the refusal (audited by attempt)
                raise

        row, errors = await attempt(info, run)
        return ResidentPayload(resident=Resident.from_model(row) if row else None, errors=errors,
                               possible_duplicates=[Resident.from_model(m) for m in matches])

    @strawberry.mutation
    async def update_resident(self, info: Info, input: UpdateResidentInput) -> ResidentPayload:
        actor = actor_of(info)

        async def run():
            resident_id = decode_id(input.resident_id, "Resident", "resident_id", "住民")
            return await people.update_resident(resident_id=resident_id,
                                                fields=_resident_fields(input), actor=actor)

        return await mutate(info, ResidentPayload, run, resident=Resident.from_model)

    @strawberry.mutation
    async def create_supporter(self, info: Info, input: CreateSupporterInput) -> SupporterPayload:
        actor = actor_of(info)
        return await mutate(info, SupporterPayload, lambda: people.create_supporter(
            actor=actor, display_name=input.display_name, affiliation=input.affiliation,
            kana=input.kana, organisation=input.organisation, phone=input.phone,
            email=input.email, skills=input.skills, certified=bool(input.certified)), supporter=Supporter.from_model)

    @strawberry.mutation(description="Staff: change a supporter's details, certification "
                         "(certified) or whether they are active (inactive supporters keep "
                         "their past duties and get no new ones).")
    async def update_supporter(self, info: Info, input: UpdateSupporterInput
                               ) -> SupporterPayload:
        actor = actor_of(info)
        fields = people.SupporterFields(**{
            name: getattr(input, name) for name in people.SupporterFields.__dataclass_fields__
            if getattr(input, name) is not strawberry.UNSET})

        async def run():
            return await people.update_supporter(supporter_id=decode_id(
                input.supporter_id, "Supporter", "supporter_id", "支援員"),
                fields=fields, actor=actor)

        return await mutate(info, SupporterPayload, run, supporter=Supporter.from_model)

    @strawberry.mutation(description="New personal feed and duty links for the supporter; the old "
                         "ones stop working at once. The supporter themself or staff.")
    async def rotate_calendar_feed_token(self, info: Info, input: RotateCalendarFeedTokenInput
                                         ) -> SupporterPayload:
        from divide_support.calendar import service as calendar

        actor = actor_of(info)

        async def run():
            return await calendar.rotate_feed_token(actor=actor, supporter_id=decode_id(
                input.supporter_id, "Supporter", "supporter_id", "支援員"))

        return await mutate(info, SupporterPayload, run, supporter=Supporter.from_model)
