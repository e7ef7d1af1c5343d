"""People's error codes (DomainError.code)."""

from __future__ import annotations

from enum import StrEnum


class PeopleCode(StrEnum):
    """People: residents and supporters. api.errors lists every area's codes
    in one place (UserError.code in the SDL)."""

    INVALID_BIRTH_DATE = "INVALID_BIRTH_DATE"
    INVALID_PHONE = "INVALID_PHONE"
    PHONE_REQUIRED_FOR_SMS = "PHONE_REQUIRED_FOR_SMS"
    RESIDENT_ERASED = "RESIDENT_ERASED"
