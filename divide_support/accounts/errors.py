"""Accounts's error codes (DomainError.code)."""

from __future__ import annotations

from enum import StrEnum


class AccountsCode(StrEnum):
    """Accounts: logins, passwords, users. api.errors lists every area's codes
    in one place (UserError.code in the SDL)."""

    CANNOT_DEACTIVATE_SELF = "CANNOT_DEACTIVATE_SELF"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    PASSWORD_MISMATCH = "PASSWORD_MISMATCH"
    PASSWORD_REQUIRED = "PASSWORD_REQUIRED"
    SAME_PASSWORD = "SAME_PASSWORD"
    SUPPORTER_REQUIRED = "SUPPORTER_REQUIRED"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    WEAK_PASSWORD = "WEAK_PASSWORD"
