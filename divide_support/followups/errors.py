"""Followups's error codes (DomainError.code)."""

from __future__ import annotations

from enum import StrEnum


class FollowupsCode(StrEnum):
    """Followups: follow-up tasks. api.errors lists every area's codes
    in one place (UserError.code in the SDL)."""

    FOLLOW_UP_CLOSED = "FOLLOW_UP_CLOSED"
    INVALID_DATE = "INVALID_DATE"
    NEXT_STEP_INCOMPLETE = "NEXT_STEP_INCOMPLETE"
