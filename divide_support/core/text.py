"""Free text typed by staff: trimmed, bounded, and free of control characters.

Control characters (a NUL from a pasted spreadsheet cell, say) would otherwise reach
PostgreSQL and fail there; they are refused here with a clear message instead.
"""

from __future__ import annotations

import unicodedata

from divide_support.core.errors import DomainError

_ALLOWED_CONTROLS = {"\n", "\t"}


def clean_text(
    value: str | None,
    field: str,
    label: str,
    max_length: int,
    *,
    required: bool = False,
    multiline: bool = False,
) -> str | None:
    """The trimmed text, None when empty and optional; DomainError otherwise."""
    text = (value or "").strip()
    if not text:
        if required:
            raise DomainError("REQUIRED", f"{label}を入力してください。", ["input", field],
                              message_en=f"{field} is required.")
        return None
    allowed = _ALLOWED_CONTROLS if multiline else set()
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text):
        raise DomainError("INVALID_CHARACTERS", f"{label}に使えない文字（制御文字）が含まれています。",
                          ["input", field], message_en=f"{field} contains control characters.")
    if len(text) > max_length:
        raise DomainError("TOO_LONG", f"{label}は{max_length}文字以内で入力してください。",
                          ["input", field], message_en=f"{field} is too long (max {max_length}).")
    return text


def required_text(value: str | None, field: str, label: str, max_length: int) -> str:
    text = clean_text(value, field, label, max_length, required=True)
    assert text is not None
    return text


NOTES_MAX = 2000
