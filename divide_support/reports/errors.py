"""Reports's error codes (DomainError.code)."""

from __future__ import annotations

from enum import StrEnum


class ReportsCode(StrEnum):
    """Reports: surveys and reports. api.errors lists every area's codes
    in one place (UserError.code in the SDL)."""

    INVALID_SURVEY = "INVALID_SURVEY"
    TOO_MANY = "TOO_MANY"
    UNKNOWN_METRIC = "UNKNOWN_METRIC"
    UNKNOWN_MUNICIPALITY = "UNKNOWN_MUNICIPALITY"
