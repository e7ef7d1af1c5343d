"""Residents and supporters, tested at the service level: phone numbers as counter staff type
them, birth dates, partial updates, search, SMS eligibility, roles and tenancy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import factories
import pytest
from helpers_scheduling import assert_audited_once, audit_entries, counts, reload

from divide_support.audit.models import AuditEntry
from divide_support.core.errors import DomainError
from divide_support.people import service as people
from divide_support.people.models import ContactPreference, Device, Resident, SupporterAffiliation
from divide_support.people.service import ResidentFields, can_receive_sms

MOBILE = "+819012345678"


def tokyo_today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo")).date()


async def _create(actor, **fields) -> Resident:
    fields.setdefault("family_name", "鈴木")
    fields.setdefault("given_name", "一郎")
    return await people.create_resident(actor=actor, fields=ResidentFields(**fields))


# --- phone numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", [
    "090-1234-5678",
    "09012345678",
    "０９０－１２３４－５６７８",
    "０９０ー１２３４ー５６７８",
    "090 1234 5678",
    "+81 90 1234 5678",
    " 090-1234-5678 ",
], ids=["hyphens", "digits", "full width", "long vowel mark as hyphen", "spaces", "international", "padded"])
async def test_a_mobile_number_typed_by_staff_is_stored_in_e164(town, typed):
    resident = await _create(town.coordinator, phone=typed, contact_preference=ContactPreference.SMS,
                             sms_consent=True)
    assert (await reload(resident)).phone == MOBILE


@pytest.mark.parametrize(("typed", "stored"), [("070-1111-2222", "+817011112222"), ("080-3333-4444", "+818033334444")])
async def test_070_and_080_numbers_are_mobiles_too(town, typed, stored):
    resident = await _create(town.coordinator, phone=typed)
    assert resident.phone == stored


async def test_a_landline_is_accepted_as_landline(town):
    resident = await _create(town.coordinator, landline="0463-21-1111")
    assert (await reload(resident)).landline == "+81463211111"


@pytest.mark.parametrize("landline", ["0463-21-1111", "03-1234-5678", "050-1234-5678"])
async def test_a_non_mobile_number_is_refused_as_the_mobile_phone(town, landline):
    before = await counts(Resident, AuditEntry)
    with pytest.raises(DomainError) as e:
        await _create(town.coordinator, phone=landline)
    assert e.value.code == "INVALID_PHONE"
    assert e.value.field == "phone"
    assert await counts(Resident, AuditEntry) == before


@pytest.mark.parametrize("garbage", ["abc", "090-1234", "12345", "090-1234-5678-9999", "電話なし"])
@pytest.mark.parametrize("field", ["phone", "landline"])
async def test_something_that_is_not_a_phone_number_is_refused(town, garbage, field):
    with pytest.raises(DomainError) as e:
        await _create(town.coordinator, **{field: garbage})
    assert e.value.code == "INVALID_PHONE"
    assert e.value.field == field
    assert await Resident.all().count() == 0


async def test_sms_contact_needs_a_mobile_number(town):
    with pytest.raises(DomainError) as e:
        await _create(town.coordinator, landline="0463-21-1111", contact_preference=ContactPreference.SMS,
                      sms_consent=True)
    assert e.value.code == "PHONE_REQUIRED_FOR_SMS"
    assert e.value.field == "phone"
    assert await Resident.all().count() == 0


async def test_removing_the_mobile_of_an_sms_resident_is_refused(town):
    resident = await factories.resident(town.coordinator, sms=True)
    with pytest.raises(DomainError) as e:
        await people.update_resident(resident_id=resident.id, fields=ResidentFields(phone=""),
                                     actor=town.coordinator)
    assert e.value.code == "PHONE_REQUIRED_FOR_SMS"
    assert (await reload(resident)).phone == resident.phone
    # Switching to phone calls at the same time is fine.
    updated = await people.update_resident(
        resident_id=resident.id, actor=town.coordinator,
        fields=ResidentFields(phone=None, contact_preference=ContactPreference.PHONE_CALL))
    assert (updated.phone, updated.contact_preference) == (None, ContactPreference.PHONE_CALL)


async def test_supporter_phone_numbers_are_stored_in_e164(town):
    supporter = await people.create_supporter(display_name="田中 支援員", affiliation=SupporterAffiliation.NPO,
                                              phone="０４６３－２１－１１１１", actor=town.coordinator)
    assert supporter.phone == "+81463211111"


# --- birth dates --------------------------------------------------------------------------------

async def test_a_birth_date_in_the_future_is_refused(town):
    with pytest.raises(DomainError) as e:
        await _create(town.coordinator, birth_date=tokyo_today() + timedelta(days=1))
    assert e.value.code == "INVALID_BIRTH_DATE"
    assert e.value.field == "birth_date"
    assert await Resident.all().count() == 0


async def test_a_birth_date_sets_the_birth_year(town):
    resident = await _create(town.coordinator, birth_date=date(1948, 4, 2))
    assert (await reload(resident)).birth_year == 1948


async def test_a_birth_year_that_disagrees_with_the_birth_date_is_refused(town):
    with pytest.raises(DomainError) as e:
        await _create(town.coordinator, birth_date=date(1948, 4, 2), birth_year=1949)
    assert e.value.code == "INVALID_BIRTH_DATE"
    assert await Resident.all().count() == 0


@pytest.mark.parametrize("year_offset", [1, -121])
async def test_an_impossible_birth_year_is_refused(town, year_offset):
    with pytest.raises(DomainError) as e:
        await _create(town.coordinator, birth_year=tokyo_today().year + year_offset)
    assert e.value.code == "INVALID_BIRTH_DATE"


# --- updates ------------------------------------------------------------------------------------

async def test_update_resident_changes_only_the_given_fields(town):
    resident = await _create(
        town.coordinator, kana="スズキ イチロウ", phone="090-1234-5678", landline="0463-21-1111",
        birth_date=date(1950, 1, 15), contact_preference=ContactPreference.SMS, sms_consent=True,
        device=Device.ANDROID, district="浅間町", notes="耳が遠いので大きな声で")

    await people.update_resident(resident_id=resident.id, actor=town.coordinator,
                                 fields=ResidentFields(district="見附町", device=Device.IPHONE))

    stored = await reload(resident)
    assert (stored.district, stored.device) == ("見附町", Device.IPHONE)
    assert (stored.family_name, stored.given_name, stored.kana) == ("鈴木", "一郎", "スズキ イチロウ")
    assert (stored.phone, stored.landline) == (MOBILE, "+81463211111")
    assert (stored.birth_date, stored.birth_year) == (date(1950, 1, 15), 1950)
    assert (stored.contact_preference, stored.sms_consent) == (ContactPreference.SMS, True)
    assert stored.notes == "耳が遠いので大きな声で"
    [entry] = await audit_entries("resident.update", resident.id)
    assert entry.details == {"fields": ["device", "district"]}
    assert entry.actor_email == town.coordinator.email


async def test_a_refused_update_changes_nothing(town):
    resident = await _create(town.coordinator, phone="090-1234-5678", district="浅間町")
    before = await counts(AuditEntry)
    with pytest.raises(DomainError) as e:
        await people.update_resident(resident_id=resident.id, actor=town.coordinator,
                                     fields=ResidentFields(district="見附町", phone="0463-21-1111"))
    assert e.value.code == "INVALID_PHONE"
    stored = await reload(resident)
    assert (stored.phone, stored.district) == (MOBILE, "浅間町")
    assert await counts(AuditEntry) == before


async def test_a_name_cannot_be_blanked(town):
    resident = await _create(town.coordinator)
    with pytest.raises(DomainError) as e:
        await people.update_resident(resident_id=resident.id, actor=town.coordinator,
                                     fields=ResidentFields(family_name="  "))
    assert e.value.code == "REQUIRED"
    assert (await reload(resident)).family_name == "鈴木"


# --- search -------------------------------------------------------------------------------------

async def _search_people(town):
    yamada = await _create(town.coordinator, family_name="山田", given_name="花子", kana="ヤマダ ハナコ",
                           phone="090-1111-5678")
    sato = await _create(town.coordinator, family_name="佐藤", given_name="健", kana="サトウ ケン",
                         landline="0463-22-3344")
    tanaka = await _create(town.coordinator, family_name="田中", given_name="花江", kana="タナカ ハナエ",
                           phone="080-2222-9999")
    return yamada, sato, tanaka


@pytest.mark.parametrize(("term", "expected"), [
    ("ヤマダ", ["yamada"]),
    ("ハナ", ["tanaka", "yamada"]),
    ("山田", ["yamada"]),
    ("花", ["tanaka", "yamada"]),
    ("5678", ["yamada"]),
    ("090-1111-5678", ["yamada"]),
    ("1111-5678", ["yamada"]),
    ("3344", ["sato"]),
    ("0463-22-3344", ["sato"]),
    ("9999", ["tanaka"]),
    ("存在しない", []),
])
async def test_residents_can_be_found_by_kana_name_or_last_digits_of_a_phone(town, term, expected):
    yamada, sato, tanaka = await _search_people(town)
    names = {yamada.id: "yamada", sato.id: "sato", tanaka.id: "tanaka"}
    found = await people.residents_query(town.coordinator, term)
    assert sorted(names[r.id] for r in found) == expected


async def test_residents_can_be_found_by_last_digits_typed_in_full_width(town):
    yamada, _, _ = await _search_people(town)
    found = await people.residents_query(town.coordinator, "５６７８")
    assert [r.id for r in found] == [yamada.id]


async def test_resident_search_stays_inside_the_municipality(town, other_town):
    mine = await _create(town.coordinator, family_name="山田", kana="ヤマダ", phone="090-1111-5678")
    await _create(other_town.coordinator, family_name="山田", kana="ヤマダ", phone="090-1111-5678")
    assert [r.id for r in await people.residents_query(town.coordinator, "山田")] == [mine.id]
    assert [r.id for r in await people.residents_query(town.coordinator, "5678")] == [mine.id]
    assert [r.id for r in await people.residents_query(town.coordinator)] == [mine.id]


# --- SMS eligibility ----------------------------------------------------------------------------

@pytest.mark.parametrize(("phone", "consent", "preference", "opted_out", "expected"), [
    (MOBILE, True, ContactPreference.SMS, False, True),
    (None, True, ContactPreference.SMS, False, False),
    (MOBILE, False, ContactPreference.SMS, False, False),
    (MOBILE, True, ContactPreference.PHONE_CALL, False, False),
    (MOBILE, True, ContactPreference.POST, False, False),
    (MOBILE, True, ContactPreference.NONE, False, False),
    (MOBILE, True, ContactPreference.SMS, True, False),
    (None, False, ContactPreference.PHONE_CALL, True, False),
])
def test_sms_needs_consent_a_mobile_preference_sms_and_no_opt_out(phone, consent, preference, opted_out, expected):
    resident = Resident(family_name="山田", given_name="花子", phone=phone, sms_consent=consent,
                        contact_preference=preference, sms_opted_out=opted_out)
    assert can_receive_sms(resident) is expected


async def test_a_resident_created_for_sms_can_receive_sms(town):
    resident = await _create(town.coordinator, phone="090-1234-5678", contact_preference=ContactPreference.SMS,
                             sms_consent=True)
    assert can_receive_sms(await reload(resident)) is True
    default = await _create(town.coordinator, phone="090-1234-5679")
    assert can_receive_sms(await reload(default)) is False, "no consent and no SMS preference by default"


# --- roles, tenancy and audit -------------------------------------------------------------------

async def test_a_planner_cannot_read_or_change_residents(town):
    resident = await _create(town.coordinator)
    with pytest.raises(DomainError) as e:
        await _create(town.planner)
    assert e.value.code == "FORBIDDEN"
    with pytest.raises(DomainError) as e:
        await people.update_resident(resident_id=resident.id, fields=ResidentFields(district="x"),
                                     actor=town.planner)
    assert e.value.code == "FORBIDDEN"
    with pytest.raises(DomainError) as e:
        people.residents_query(town.planner, "鈴木")
    assert e.value.code == "FORBIDDEN"
    assert await Resident.all().count() == 1


async def test_another_municipalitys_resident_is_not_found(town, other_town):
    foreign = await _create(other_town.coordinator, district="焼津")
    with pytest.raises(DomainError) as e:
        await people.update_resident(resident_id=foreign.id, fields=ResidentFields(district="平塚"),
                                     actor=town.coordinator)
    assert e.value.code == "NOT_FOUND"
    with pytest.raises(DomainError) as e:
        await people.get_resident(foreign.id, town.coordinator)
    assert e.value.code == "NOT_FOUND"
    assert (await reload(foreign)).district == "焼津"


async def test_people_changes_are_audited_with_the_actor_and_object(town):
    resident = await _create(town.coordinator)
    supporter = await factories.supporter(town.admin)
    await people.set_supporter_active(supporter_id=supporter.id, active=False, actor=town.admin)

    for action, object_id, email in [
        ("resident.create", resident.id, town.coordinator.email),
        ("supporter.create", supporter.id, town.admin.email),
        ("supporter.deactivate", supporter.id, town.admin.email),
    ]:
        await assert_audited_once(action, object_id, email, town.municipality.id,
                                  "Resident" if action.startswith("resident") else "Supporter")
    assert not (await reload(supporter)).active
