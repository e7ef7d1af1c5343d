"""Messaging's error codes (DomainError.code)."""

from __future__ import annotations

from enum import StrEnum


class MessagingCode(StrEnum):
    """Messaging: SMS consent, messages, resends. api.errors lists every area's codes
    in one place (UserError.code in the SDL)."""

    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    NOT_RESENDABLE = "NOT_RESENDABLE"
    NO_MOBILE = "NO_MOBILE"
    NO_PHONE_NUMBER = "NO_PHONE_NUMBER"
    TOO_LATE = "TOO_LATE"
