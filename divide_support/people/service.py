"""Residents and supporters (デジタル活用支援員)."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from divide_support.audit import service as audit
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.core.errors import CoreCode, DomainError
from divide_support.core.permissions import require_staff, require_supporter_reader
from divide_support.core.tenancy import get_scoped
from divide_support.core.text import NOTES_MAX, clean_text, required_text
from divide_support.people import phones
from divide_support.people.errors import PeopleCode
from divide_support.people.models import (
    ContactPreference,
    Device,
    Resident,
    Supporter,
    SupporterAffiliation,
)

UNSET: Any = object()
# What an area above does when a resident's SMS details change (messaging sends what it
# skipped for that reason, if still in time). Registered when that area is imported, so
# people, a lower area, imports none of them.
_SMS_DETAILS_CHANGED: list[Callable[[Resident], Awaitable[object]]] = []


def when_sms_details_change(hook: Callable[[Resident], Awaitable[object]]) -> None:
    """Call `hook(resident)` inside the transaction that changed their consent, mobile
    number or contact preference."""
    if hook not in _SMS_DETAILS_CHANGED:
        _SMS_DETAILS_CHANGED.append(hook)
# Long enough for a few sentences a resident dictates at the counter.
SUPPORT_NEEDS_MAX = 500


# --- names as staff type them --------------------------------------------------------------

_KATAKANA = "".join(chr(c) for c in range(0x30A1, 0x30F7))  # ァ..ヶ
_HIRAGANA = "".join(chr(c - 0x60) for c in range(0x30A1, 0x30F7))  # ぁ..ゖ
_ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# After NFKC every kind of space (U+3000 too) is U+0020 and ･ is ・ (as in ジョン・スミス).
_KEY_TABLE = str.maketrans(_KATAKANA + _ASCII_UPPER, _HIRAGANA + _ASCII_UPPER.lower(), " \u30fb")
KEY_MAX = 200


def name_key(text: str | None) -> str | None:
    """A name or reading in the one form search and the duplicate check compare: NFKC
    (half-width katakana, full-width letters and digits become the usual ones), without spaces
    and middle dots, katakana as hiragana, A-Z as a-z; None when nothing is left.
    「山田 花子」 and 「山田花子」 give 山田花子; 「ヤマダ」, 「ﾔﾏﾀﾞ」 and 「やまだ」 give やまだ.
    Kanji are compared as typed (NFKC keeps 髙 and 高 apart): the reading is what covers
    other spellings of the same name. Migration 0008 computes the same in SQL for the
    rows it backfilled."""
    if not text:
        return None
    return unicodedata.normalize("NFKC", text).translate(_KEY_TABLE)[:KEY_MAX] or None


def given_part(kana: str | None) -> str | None:
    """The given name's part of a reading typed as 「ヤマダ ハナコ」: after its first space."""
    _, space, rest = unicodedata.normalize("NFKC", kana or "").partition(" ")
    return rest if space else None


def _name_keys(family_name: str | None, given_name: str | None, kana: str | None
               ) -> dict[str, str | None]:
    """The Resident columns kept from the name (their prefixes are indexed)."""
    return {"name_key": name_key((family_name or "") + (given_name or "")),
            "given_key": name_key(given_name), "kana_key": name_key(kana),
            "kana_given_key": name_key(given_part(kana))}


def why_no_sms(resident: Resident) -> str | None:
    """The one eligibility rule for SMS: no opt-out, a mobile number, consent, preference
    SMS. Why this resident cannot get one (messaging's SkipReason of that name), or None."""
    if resident.sms_opted_out:
        return "OPTED_OUT"
    if not resident.phone:
        return "NO_MOBILE"
    if not resident.sms_consent:
        return "NO_CONSENT"
    if resident.contact_preference != ContactPreference.SMS:
        return "PREFERS_OTHER_CHANNEL"
    return None


def can_receive_sms(resident: Resident) -> bool:
    return why_no_sms(resident) is None


def _check_birth(birth_date: date | None, birth_year: int | None, tz: str) -> int | None:
    today = timeutil.today(tz)
    if birth_date is not None:
        if birth_date > today or birth_date.year < today.year - 120:
            raise DomainError(PeopleCode.INVALID_BIRTH_DATE, "生年月日が正しくありません。",
                              "birth_date", message_en="The birth date is not valid.")
        if birth_year is not None and birth_year != birth_date.year:
            raise DomainError(PeopleCode.INVALID_BIRTH_DATE, "生まれ年と生年月日が一致しません。",
                              "birth_year",
                              message_en="Birth year and birth date disagree.")
        return birth_date.year
    if birth_year is not None and not (today.year - 120 <= birth_year <= today.year):
        raise DomainError(PeopleCode.INVALID_BIRTH_DATE, "生まれ年が正しくありません。",
                          "birth_year", message_en="The birth year is not valid.")
    return birth_year


class _GivenFields:
    """Fields of an update: UNSET ones are left as they are."""

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not UNSET}


@dataclass
class ResidentFields(_GivenFields):
    family_name: Any = UNSET
    given_name: Any = UNSET
    kana: Any = UNSET
    phone: Any = UNSET
    landline: Any = UNSET
    birth_date: Any = UNSET
    birth_year: Any = UNSET
    contact_preference: Any = UNSET
    sms_consent: Any = UNSET
    device: Any = UNSET
    district: Any = UNSET
    notes: Any = UNSET
    support_needs: Any = UNSET



def _clean_resident_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise; raises the first problem found."""
    clean: dict[str, Any] = {}
    for key, label, limit in (("family_name", "姓", 50), ("given_name", "名", 50)):
        if key in values:
            clean[key] = required_text(values[key], key, label, limit)
    for key, label, limit in (("kana", "フリガナ", 100), ("district", "地区", 100),
                              ("notes", "メモ", NOTES_MAX),
                              ("support_needs", "支援員に伝えたいこと", SUPPORT_NEEDS_MAX)):
        if key in values:
            clean[key] = clean_text(values[key], key, label, limit,
                                    multiline=key in ("notes", "support_needs"))
    if "phone" in values:
        raw = clean_text(values["phone"], "phone", "携帯電話番号", 40)
        clean["phone"] = phones.parse_mobile(raw, "phone") if raw else None
    if "landline" in values:
        raw = clean_text(values["landline"], "landline", "電話番号", 40)
        clean["landline"] = phones.parse_any(raw, "landline") if raw else None
    for key in ("birth_date", "birth_year"):
        if key in values:
            clean[key] = values[key]
    for key in ("contact_preference", "sms_consent", "device"):
        if key in values and values[key] is not None:
            clean[key] = values[key]
        elif key == "device" and key in values:
            clean[key] = None
    return clean


# --- possible duplicates -------------------------------------------------------------------

MAX_DUPLICATES_SHOWN = 10
# pg_advisory_xact_lock(namespace, municipality): creating residents of one municipality is
# serialised, so two colleagues entering the same caller at once get one record.
_CREATE_RESIDENT_LOCK = 0x52455349


class PossibleDuplicate(DomainError):
    """The resident may be registered already; `residents` are the matches."""

    def __init__(self, residents: list[Resident], *, by_phone: bool) -> None:
        super().__init__(
            "POSSIBLE_DUPLICATE",
            "同じ携帯電話番号、または同じ氏名と生まれ年の方がすでに登録されています"
            "（possibleDuplicates）。同じ方ならその登録をお使いください。別の方なら "
            "allowDuplicate を true にして登録してください。",
            "phone" if by_phone else "family_name",
            message_en="A resident with the same mobile number, or the same name and birth "
                       "year, is registered already (possibleDuplicates). Use that record if "
                       "it is the same person; otherwise send allowDuplicate: true.")
        self.residents = residents


def _duplicate_condition(*, phone: str | None, name: str | None, kana: str | None,
                         birth_year: int | None) -> Q | None:
    conditions = []
    if phone:
        conditions.append(Q(phone=phone))
    if birth_year is not None and (name or kana):
        same_name = Q(name_key=name) if name else None
        if kana:
            same_name = Q(kana_key=kana) if same_name is None else same_name | Q(kana_key=kana)
        conditions.append(Q(birth_year=birth_year) & same_name)
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else conditions[0] | conditions[1]


async def possible_duplicates(municipality_id: int, *, phone: str | None,
                              family_name: str | None, given_name: str | None,
                              kana: str | None, birth_year: int | None) -> list[Resident]:
    """THE rule for "this may be someone registered already", in one query. A resident of the
    municipality (never an erased one) is a possible duplicate when
    - their mobile number is this one (both in E.164), or
    - their birth year is this one and their name matches: family + given name the same
      after name_key (NFKC, spaces ignored: 「山田 花子」 = 「山田花子」), or both readings
      given and the same after name_key (hiragana = katakana, half-width too), which covers
      other kanji for the same name (斉藤/斎藤). Without a birth year a name says too little.
    Landlines are not compared: a household shares one."""
    condition = _duplicate_condition(
        phone=phone, name=name_key((family_name or "") + (given_name or "")),
        kana=name_key(kana), birth_year=birth_year)
    if condition is None:
        return []
    return await Resident.filter(condition, municipality_id=municipality_id,
                                 erased_at__isnull=True).order_by("id").limit(
        MAX_DUPLICATES_SHOWN)


async def create_resident(*, fields: ResidentFields, actor: Actor,
                          allow_duplicate: bool = False) -> Resident:
    """Refused with PossibleDuplicate (the matches attached) when possible_duplicates finds
    anyone, unless `allow_duplicate`: then created, the audit row naming the matches."""
    require_staff(actor)
    values = fields.given()
    values.setdefault("family_name", "")
    values.setdefault("given_name", "")
    clean = _clean_resident_fields(values)
    year = _check_birth(clean.get("birth_date"), clean.get("birth_year"), actor.timezone)
    clean["birth_year"] = year
    _check_sms_choice(clean)
    async with in_transaction() as conn:
        await conn.execute_query("SELECT pg_advisory_xact_lock($1, $2)",
                                 [_CREATE_RESIDENT_LOCK, actor.municipality_id])
        matches = await possible_duplicates(
            actor.municipality_id, phone=clean.get("phone"), family_name=clean["family_name"],
            given_name=clean["given_name"], kana=clean.get("kana"), birth_year=year)
        if matches and not allow_duplicate:
            raise PossibleDuplicate(matches, by_phone=any(
                clean.get("phone") and m.phone == clean["phone"] for m in matches))
        resident = await Resident.create(
            municipality_id=actor.municipality_id, **clean,
            **_name_keys(clean["family_name"], clean["given_name"], clean.get("kana")))
        details = ({"allowDuplicate": True, "possibleDuplicates": [m.id for m in matches]}
                   if matches else None)
        await audit.record(actor, "resident.create", "Resident", [resident.id], details)
    return resident


def _check_sms_choice(values: dict[str, Any]) -> None:
    if values.get("contact_preference") == ContactPreference.SMS and not values.get("phone"):
        raise DomainError(
            PeopleCode.PHONE_REQUIRED_FOR_SMS,
            "SMSでの連絡には携帯電話の番号が必要です。",
            "phone",
            message_en="SMS contact needs a mobile number.",
        )


async def update_resident(*, resident_id: int, fields: ResidentFields, actor: Actor) -> Resident:
    require_staff(actor)
    async with in_transaction():
        resident = await get_scoped(Resident, resident_id, actor, what="住民",
                                    field="resident_id", for_update=True)
        ensure_not_erased(resident)
        clean = _clean_resident_fields(fields.given())
        merged = {k: getattr(resident, k) for k in (
            "birth_date", "birth_year", "phone", "contact_preference")}
        merged.update(clean)
        if "birth_date" in clean or "birth_year" in clean:
            if "birth_date" in clean and "birth_year" not in clean:
                merged["birth_year"] = None
            clean["birth_year"] = _check_birth(merged["birth_date"], merged["birth_year"],
                                               actor.timezone)
        _check_sms_choice(merged)
        for key, value in clean.items():
            setattr(resident, key, value)
        if {"family_name", "given_name", "kana"} & clean.keys():
            for key, value in _name_keys(resident.family_name, resident.given_name,
                                         resident.kana).items():
                setattr(resident, key, value)
        await resident.save()
        if {"sms_consent", "phone", "contact_preference"} & clean.keys():
            for hook in _SMS_DETAILS_CHANGED:
                await hook(resident)
        await audit.record(actor, "resident.update", "Resident", [resident.id],
                           {"fields": sorted(clean)})
    return resident


ERASED_NAME = "（消去済み）"


def ensure_not_erased(resident: Resident, field: str = "resident_id") -> None:
    """An erased record stays anonymous: nothing is added to it (register them anew)."""
    if resident.erased_at is not None:
        raise DomainError(PeopleCode.RESIDENT_ERASED,
                          "この方の個人情報は消去されています。改めて住民として登録してください。",
                          field,
                          message_en="This resident's personal data was erased; register anew.")


async def erase_personal_data(resident: Resident, *, keep_birth_year: bool) -> None:
    """Name, numbers, birth date (the year stays only where the municipality allows), notes,
    what they asked supporters to know, and consent go; district and device stay (coarse,
    and the reports filter by district).
    The caller holds the row lock and has kept the ages the reports need."""
    resident.family_name = ERASED_NAME
    resident.given_name = ""
    resident.kana = None
    resident.name_key = resident.given_key = resident.kana_key = resident.kana_given_key = None
    resident.phone = None
    resident.landline = None
    resident.birth_date = None
    if not keep_birth_year:
        resident.birth_year = None
    resident.notes = None
    resident.support_needs = None
    resident.sms_consent = False
    resident.contact_preference = ContactPreference.NONE
    resident.erased_at = timeutil.now()
    await resident.save()


def residents_query(actor: Actor, search: str | None = None):
    """Residents of the municipality (never erased ones), found by the start of the full name,
    the given name or the reading (family or given part), compared as name_key compares
    names: 「山田花子」, 「山田 花子」, 「やまだ」, 「ヤマダ」 and 「ﾔﾏﾀﾞ」 find 山田 花子
    (ヤマダ ハナコ); or by the last 4-8 digits of a phone number. One SQL query; each name
    condition is a prefix of an indexed key column (migration 0008)."""
    require_staff(actor)
    query = Resident.filter(municipality_id=actor.municipality_id, erased_at__isnull=True)
    # NFKC: full-width digits and half-width kana typed at the counter still match.
    term = clean_text(unicodedata.normalize("NFKC", search or ""), "search", "検索語", 100) or ""
    key = name_key(term)
    if key:
        condition = (Q(name_key__startswith=key) | Q(given_key__startswith=key)
                     | Q(kana_key__startswith=key) | Q(kana_given_key__startswith=key))
        digits = "".join(ch for ch in term if ch.isdigit())
        if len(digits) >= 4:
            condition |= Q(phone__endswith=digits[-8:]) | Q(landline__endswith=digits[-8:])
        query = query.filter(condition)
    return query.order_by("kana", "family_name", "given_name", "id")


async def get_resident(resident_id: int, actor: Actor) -> Resident:
    return await get_scoped(Resident, resident_id, actor, what="住民")


@dataclass
class SupporterFields(_GivenFields):
    """What staff may set on a supporter; UNSET leaves a field as it is (updates)."""

    display_name: Any = UNSET
    kana: Any = UNSET
    affiliation: Any = UNSET
    organisation: Any = UNSET
    phone: Any = UNSET
    email: Any = UNSET
    skills: Any = UNSET
    certified: Any = UNSET
    active: Any = UNSET



def _clean_supporter_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise what was given; raises the first problem found."""
    clean: dict[str, Any] = {}
    if "display_name" in values:
        clean["display_name"] = required_text(values["display_name"], "display_name", "氏名", 100)
    for key, label, limit in (("kana", "フリガナ", 100), ("organisation", "所属", 200)):
        if key in values:
            clean[key] = clean_text(values[key], key, label, limit)
    if "phone" in values:
        raw_phone = clean_text(values["phone"], "phone", "電話番号", 40)
        clean["phone"] = phones.parse_any(raw_phone, "phone") if raw_phone else None
    if "email" in values:
        clean_email = clean_text(values["email"], "email", "メールアドレス", 254)
        if clean_email and "@" not in clean_email:
            raise DomainError(CoreCode.INVALID_EMAIL, "メールアドレスの形式が正しくありません。",
                              "email", message_en="The e-mail address is not valid.")
        clean["email"] = clean_email
    if "skills" in values:
        clean["skills"] = sorted({clean_text(s, "skills", "得意分野", 50) or ""
                                  for s in values["skills"] or []} - {""})
    for key in ("affiliation", "certified", "active"):
        if key in values:
            if values[key] is None:
                raise DomainError(CoreCode.REQUIRED, "値を選んでください。", key,
                                  message_en=f"{key} cannot be null.")
            clean[key] = values[key]
    return clean


async def create_supporter(
    *,
    display_name: str,
    affiliation: SupporterAffiliation,
    actor: Actor,
    kana: str | None = None,
    organisation: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    skills: list[str] | None = None,
    certified: bool = False,
) -> Supporter:
    require_staff(actor)
    clean = _clean_supporter_fields(SupporterFields(
        display_name=display_name, affiliation=affiliation, kana=kana,
        organisation=organisation, phone=phone, email=email, skills=skills,
        certified=certified).given())
    async with in_transaction():
        supporter = await Supporter.create(municipality_id=actor.municipality_id, **clean)
        await audit.record(actor, "supporter.create", "Supporter", [supporter.id])
    return supporter


async def update_supporter(*, supporter_id: int, fields: SupporterFields, actor: Actor
                           ) -> Supporter:
    """Staff: correct a supporter's details, record a new certification (認定), or mark them
    inactive (they stay on past duties and are offered for no new ones). The audit row names
    the fields changed, not their values."""
    return await _update_supporter(supporter_id, fields, actor, "supporter.update")


async def set_supporter_active(*, supporter_id: int, active: bool, actor: Actor) -> Supporter:
    return await _update_supporter(supporter_id, SupporterFields(active=active), actor,
                                   "supporter.activate" if active else "supporter.deactivate")


async def _update_supporter(supporter_id: int, fields: SupporterFields, actor: Actor,
                            action: str) -> Supporter:
    require_staff(actor)
    clean = _clean_supporter_fields(fields.given())
    async with in_transaction():
        supporter = await get_scoped(Supporter, supporter_id, actor, what="支援員",
                                     field="supporter_id", for_update=True)
        changed = sorted(k for k, v in clean.items() if getattr(supporter, k) != v)
        for key, value in clean.items():
            setattr(supporter, key, value)
        if changed:
            await supporter.save(update_fields=changed)
        await audit.record(actor, action, "Supporter", [supporter.id],
                           {"fields": changed})
    return supporter


def supporters_query(actor: Actor, *, active: bool | None = None, skill: str | None = None):
    require_supporter_reader(actor)
    query = Supporter.filter(municipality_id=actor.municipality_id)
    if active is not None:
        query = query.filter(active=active)
    if skill:
        # JSON array containment, served by PostgreSQL.
        query = query.filter(skills__contains=[clean_text(skill, "skill", "得意分野", 50) or ""])
    return query.order_by("kana", "display_name", "id")


__all__ = ["Device", "ResidentFields", "can_receive_sms"]
