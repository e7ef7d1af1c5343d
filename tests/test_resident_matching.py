"""Finding residents and not registering the same person twice.

Staff type names as they hear them: with or without the space between family and given
name, full- or half-width, the reading in hiragana or katakana (half-width too). Search and
the duplicate check compare names in one normalised form (people.service.name_key)."""

from __future__ import annotations

import asyncio
import importlib
from datetime import UTC, date, datetime

import pytest
from conftest import GraphQLClient
from factories import supporter_login

from divide_support.audit.models import AuditEntry
from divide_support.core.actor import Role
from divide_support.core.errors import DomainError
from divide_support.core.ids import to_global_id
from divide_support.people import service as people
from divide_support.people.models import Resident
from divide_support.people.service import ResidentFields
from divide_support.privacy import service as privacy


async def _hanako(actor, **fields) -> Resident:
    values = {"family_name": "山田", "given_name": "花子", "kana": "ヤマダ ハナコ",
              "phone": "090-1234-5678", "birth_date": date(1948, 4, 2), **fields}
    return await people.create_resident(actor=actor, fields=ResidentFields(**values))


# --- normalised names ---------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "key"), [
    ("山田花子", "山田花子"),
    ("山田 花子", "山田花子"),
    ("山田\u3000花子", "山田花子"),
    ("ヤマダ ハナコ", "やまだはなこ"),
    ("やまだ　はなこ", "やまだはなこ"),
    ("ﾔﾏﾀﾞ ﾊﾅｺ", "やまだはなこ"),  # half-width katakana, the voiced mark composed
    ("ジョン・スミス", "じょんすみす"),
    ("ＳＭＩＴＨ　Ｊｏｈｎ", "smithjohn"),
    ("ヴァ ヵヶ", "ゔぁゕゖ"),
    ("ー", "ー"),
    (" ", None),
    (None, None),
])
def test_the_name_key_folds_what_staff_type_differently(typed, key):
    assert people.name_key(typed) == key


# --- search -------------------------------------------------------------------------------

@pytest.mark.parametrize("term", [
    "山田花子", "山田 花子", "山田\u3000花子", "山田", "花子", "やまだ", "ヤマダ", "ﾔﾏﾀﾞ",
    "やまだ はなこ", "ヤマダハナコ", "はなこ", "ﾊﾅｺ", "5678", "1234-5678", "０９０１２３４５６７８",
])
async def test_a_resident_is_found_however_the_name_is_typed(town, term):
    hanako = await _hanako(town.coordinator)
    await _hanako(town.coordinator, family_name="佐藤", given_name="健", kana="サトウ ケン",
                  phone="080-2222-9999", birth_date=date(1950, 1, 1))
    found = await people.residents_query(town.coordinator, term)
    assert [r.id for r in found] == [hanako.id]


async def test_a_reading_typed_in_hiragana_is_found_in_katakana_and_the_other_way(town):
    hiragana = await _hanako(town.coordinator, family_name="佐藤", given_name="健",
                             kana="さとう けん", phone=None, birth_date=None)
    assert [r.id for r in await people.residents_query(town.coordinator, "サトウ")] == [hiragana.id]
    assert [r.id for r in await people.residents_query(town.coordinator, "ｹﾝ")] == [hiragana.id]


async def test_renaming_a_resident_moves_their_search_keys(town):
    hanako = await _hanako(town.coordinator)
    await people.update_resident(actor=town.coordinator, resident_id=hanako.id,
                                 fields=ResidentFields(family_name="鈴木", kana="スズキ ハナコ"))
    assert [r.id for r in await people.residents_query(town.coordinator, "すずき")] == [hanako.id]
    assert [r.id for r in await people.residents_query(town.coordinator, "鈴木 花子")] == [hanako.id]
    assert await people.residents_query(town.coordinator, "やまだ") == []
    assert await people.residents_query(town.coordinator, "山田") == []


async def test_an_erased_resident_is_never_found(town):
    hanako = await _hanako(town.coordinator)
    await privacy.erase_resident(actor=town.admin, resident_id=hanako.id)
    for term in ("山田", "やまだ", "花子", "5678", "消去"):
        assert await people.residents_query(town.coordinator, term) == [], term
    row = await Resident.get(id=hanako.id)
    assert (row.name_key, row.given_key, row.kana_key, row.kana_given_key) == (None,) * 4


async def test_search_through_the_api(town, gql):
    hanako = await _hanako(town.coordinator)
    query = "query ($q: String) { residents(search: $q) { totalCount edges { node { id } } } }"
    for term in ("山田 花子", "ﾔﾏﾀﾞ", "やまだ"):
        data = await gql().data(query, {"q": term})
        assert data["residents"]["totalCount"] == 1
        assert data["residents"]["edges"][0]["node"]["id"] == to_global_id("Resident", hanako.id)


@pytest.mark.parametrize("term", ["やまだ", "山田 花子", "花子", "ﾊﾅｺ"])
async def test_name_search_is_one_query_the_key_indexes_answer(town, owner_connection, term):
    """Among 5,000 residents of the municipality, the plan of a name search reads the prefix
    indexes of the keys (migration 0008), not the whole municipality's rows."""
    await _hanako(town.coordinator)
    await owner_connection.copy_records_to_table(
        "resident", columns=["municipality_id", "family_name", "given_name", "kana", "name_key",
                             "given_key", "kana_key", "kana_given_key", "contact_preference",
                             "sms_consent", "sms_opted_out", "created_at", "updated_at"],
        records=[(town.municipality.id, f"市民{i}", f"名{i}", f"シミン {i}", f"市民{i}名{i}",
                  f"名{i}", f"しみん{i}", str(i), "PHONE_CALL", False, False,
                  datetime.now(UTC), datetime.now(UTC)) for i in range(5000)])
    await owner_connection.execute("ANALYZE resident")
    sql = people.residents_query(town.coordinator, term).sql(params_inline=True)
    plan = "\n".join(r[0] for r in await owner_connection.fetch(f"EXPLAIN {sql}"))
    assert "Seq Scan" not in plan, plan
    for key in ("name_key", "given_key", "kana_key", "kana_given_key"):
        assert f"resident_{key}_prefix" in plan, plan
    assert len(await people.residents_query(town.coordinator, term)) == 1


async def test_the_migration_backfills_the_keys_as_the_service_computes_them(town, owner_connection):
    """Residents stored before migration 0008 get their keys from its SQL, which must agree
    with name_key for whatever was typed."""
    migration = importlib.import_module("divide_support.migrations.0010_resident_search_keys")
    names = [("山田", "花子", "ﾔﾏﾀﾞ　ﾊﾅｺ"), ("ＳＭＩＴＨ", "Ｊｏｈｎ", "スミス・ジョン"),
             ("佐藤", "健", "さとう けん"), ("高橋", "節子", None), ("田中", "ヴァ子", "タナカ  ヴァコ"),
             ("林", "一", "ハヤシ")]
    ids = []
    for family, given, kana in names:
        ids.append(await owner_connection.fetchval(
            "INSERT INTO resident (municipality_id, family_name, given_name, kana, "
            "contact_preference, sms_consent, sms_opted_out, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, 'PHONE_CALL', false, false, now(), now()) RETURNING id",
            town.municipality.id, family, given, kana))
    for statement in migration.BACKFILL:
        await owner_connection.execute(statement)
    for row_id, (family, given, kana) in zip(ids, names, strict=True):
        row = await Resident.get(id=row_id)
        assert (row.name_key, row.given_key, row.kana_key, row.kana_given_key) == (
            people.name_key(family + given), people.name_key(given), people.name_key(kana),
            people.name_key(people.given_part(kana))), (family, given, kana)


# --- possible duplicates ----------------------------------------------------------------------

CREATE = """mutation ($input: CreateResidentInput!) { createResident(input: $input) {
  resident { id familyName }
  possibleDuplicates { id familyName givenName kana phone }
  errors { code message field } } }"""


async def test_the_same_mobile_number_shows_the_match_and_needs_allow_duplicate(town, gql, client):
    hanako = await _hanako(town.coordinator)
    before = await Resident.all().count()
    # the number as typed at the counter (full width), a different name
    attempt = {"familyName": "山田", "givenName": "太郎", "phone": "０９０－１２３４－５６７８"}
    response = await gql().post(CREATE, {"input": attempt})
    payload = response.json()["data"]["createResident"]
    assert payload["resident"] is None
    assert [e["code"] for e in payload["errors"]] == ["POSSIBLE_DUPLICATE"]
    assert payload["errors"][0]["field"] == ["input", "phone"]
    assert "allowDuplicate" in payload["errors"][0]["message"]
    assert payload["possibleDuplicates"] == [{
        "id": to_global_id("Resident", hanako.id), "familyName": "山田", "givenName": "花子",
        "kana": "ヤマダ ハナコ", "phone": "090-1234-5678"}]
    assert await Resident.all().count() == before
    rows = {r.action: r for r in await AuditEntry.filter(
        request_id=response.headers["x-request-id"])}
    assert rows["mutation.refused"].details["code"] == "POSSIBLE_DUPLICATE"
    # the duplicate's number is personal data: reading it is on the record
    assert rows["resident.pii_read"].object_ids == [hanako.id]

    response = await gql().post(CREATE, {"input": {**attempt, "allowDuplicate": True}})
    payload = response.json()["data"]["createResident"]
    assert payload["errors"] == [] and payload["resident"]["familyName"] == "山田"
    assert await Resident.all().count() == before + 1
    [created] = await AuditEntry.filter(request_id=response.headers["x-request-id"],
                                        action="resident.create")
    assert created.details == {"allowDuplicate": True, "possibleDuplicates": [hanako.id]}


@pytest.mark.parametrize(("family", "given", "kana", "year"), [
    ("山田", "花子", None, 1948),
    ("山田", "花子", "やまだ はなこ", 1948),
    ("山田花", "子", None, 1948),  # the same name, split elsewhere
    ("山田", "華子", "ﾔﾏﾀﾞ ﾊﾅｺ", 1948),  # other kanji, the same reading
    ("山本", "英子", "やまだ　はなこ", 1948),
])
async def test_the_same_name_and_birth_year_is_a_possible_duplicate(town, family, given, kana, year):
    hanako = await _hanako(town.coordinator)
    fields = ResidentFields(family_name=family, given_name=given, kana=kana, birth_year=year)
    with pytest.raises(people.PossibleDuplicate) as refused:
        await people.create_resident(actor=town.coordinator, fields=fields)
    assert refused.value.code == "POSSIBLE_DUPLICATE"
    assert refused.value.field == "family_name"
    assert [r.id for r in refused.value.residents] == [hanako.id]
    created = await people.create_resident(actor=town.coordinator, fields=fields,
                                           allow_duplicate=True)
    assert created.id != hanako.id


@pytest.mark.parametrize(("family", "given", "kana", "year"), [
    ("山田", "花子", None, 1949),  # another birth year
    ("山田", "花子", None, None),  # no birth year: the name alone says too little
    ("山田", "花江", "ヤマダ ハナエ", 1948),
    ("山田", "華子", "ヤマダ カコ", 1948),  # other kanji and another reading
])
async def test_a_different_person_is_created_without_a_question(town, family, given, kana, year):
    await _hanako(town.coordinator)
    created = await people.create_resident(actor=town.coordinator, fields=ResidentFields(
        family_name=family, given_name=given, kana=kana, birth_year=year,
        phone="080-9999-0000"))
    [entry] = [e for e in await AuditEntry.filter(action="resident.create")
               if e.object_ids == [created.id]]
    assert not (entry.details or {}).get("allowDuplicate")


async def test_erased_residents_and_other_municipalities_never_match(town, other_town):
    gone = await _hanako(town.coordinator)
    await privacy.erase_resident(actor=town.admin, resident_id=gone.id)
    await _hanako(other_town.coordinator)
    again = await _hanako(town.coordinator)
    assert again.id != gone.id


async def test_two_colleagues_registering_the_same_caller_at_once_get_one_record(town):
    async def create():
        return await _hanako(town.coordinator)

    results = await asyncio.gather(*(create() for _ in range(4)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 3, results
    assert all(isinstance(e, DomainError) and e.code == "POSSIBLE_DUPLICATE" for e in errors)
    assert await Resident.filter(municipality_id=town.municipality.id).count() == 1


async def test_only_staff_create_residents_so_only_staff_see_duplicates(town, gql, client):
    await _hanako(town.coordinator)
    _, token = await supporter_login(town)
    attempt = {"input": {"familyName": "山田", "givenName": "花子", "birthYear": 1948}}
    for caller in (gql(Role.PLANNER), GraphQLClient(client, token)):
        body = await caller(CREATE, attempt)
        payload = body["data"]["createResident"]
        assert payload["possibleDuplicates"] == []
        assert [e["code"] for e in payload["errors"]] == ["FORBIDDEN"]
    admin = (await gql(Role.ADMIN).data(CREATE, attempt))["createResident"]
    assert [d["familyName"] for d in admin["possibleDuplicates"]] == ["山田"]


async def test_the_rule_is_one_query(town, count_queries):
    await _hanako(town.coordinator)
    with count_queries() as counter:
        found = await people.possible_duplicates(
            town.municipality.id, phone="+819012345678", family_name="山田", given_name="花子",
            kana=None, birth_year=1948)
    assert len(found) == 1
    assert len(counter.statements) == 1
