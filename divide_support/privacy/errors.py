"""Privacy's error codes (DomainError.code)."""

from __future__ import annotations

from enum import StrEnum


class PrivacyCode(StrEnum):
    """Privacy: residents' rights. api.errors lists every area's codes
    in one place (UserError.code in the SDL)."""

    ALREADY_ERASED = "ALREADY_ERASED"
    HAS_UPCOMING_REGISTRATIONS = "HAS_UPCOMING_REGISTRATIONS"
