"""Japanese phone numbers as counter staff type them, stored as E.164."""

from __future__ import annotations

import unicodedata

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from divide_support.core.errors import DomainError
from divide_support.people.errors import PeopleCode

_MOBILE_TYPES = {PhoneNumberType.MOBILE}


def _invalid(field: str, message: str, message_en: str) -> DomainError:
    return DomainError(PeopleCode.INVALID_PHONE, message, field, message_en=message_en)


def _parse(raw: str, field: str) -> phonenumbers.PhoneNumber:
    # NFKC turns full-width digits, hyphens (ー, －) and spaces into ASCII.
    text = unicodedata.normalize("NFKC", raw).strip()
    text = text.replace("ー", "-").replace("−", "-").replace("‐", "-")
    try:
        number = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException as exc:
        raise _invalid(field, "電話番号として読み取れません。", "This is not a phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise _invalid(field, "電話番号が正しくありません（桁数や市外局番をご確認ください）。",
                       "This phone number is not valid.")
    return number


def parse_mobile(raw: str, field: str) -> str:
    """A Japanese mobile number (070/080/090) in E.164, for SMS."""
    number = _parse(raw, field)
    if number.country_code != 81 or phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise _invalid(field, "携帯電話の番号（070・080・090で始まる番号）を入力してください。",
                       "Enter a Japanese mobile number (070, 080 or 090).")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def parse_any(raw: str, field: str) -> str:
    """Any valid number (landline, IP phone, mobile) in E.164."""
    return phonenumbers.format_number(_parse(raw, field), PhoneNumberFormat.E164)


def format_national(e164: str) -> str:
    """e.g. 090-1234-5678 for showing to staff."""
    return phonenumbers.format_number(phonenumbers.parse(e164, None), PhoneNumberFormat.NATIONAL)


def mask(e164: str) -> str:
    """Last four digits only, for roles that may not read phone numbers."""
    return "*" * max(0, len(e164) - 4) + e164[-4:]
