"""Paper's error codes (DomainError.code)."""

from __future__ import annotations

from enum import StrEnum


class PaperCode(StrEnum):
    """Paper: the printed pages. api.errors lists every area's codes
    in one place (UserError.code in the SDL)."""

    INVALID_MONTH = "INVALID_MONTH"
