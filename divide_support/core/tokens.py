"""Unguessable tokens for links that work without logging in (calendar invites and feeds)."""

from __future__ import annotations

import secrets


def new_calendar_token() -> str:
    """128 random bits as 32 hex characters: short enough for an SMS link."""
    return secrets.token_hex(16)
