"""Text from outside: trimmed, bounded, and free of characters nobody types.

Control characters (a NUL from a pasted spreadsheet cell, say) and lone surrogates (a broken
"\\ud800" JSON escape) would otherwise reach PostgreSQL and fail there, or end up in an SMS,
a CSV or a calendar file; they are refused here with a clear message instead. Bidirectional
overrides are refused too: they make a name or a note display as something it is not.
Every service cleans what it is given through clean_text, filters as well as inputs.
"""

from __future__ import annotations

import reprlib
import unicodedata

from divide_support.core.errors import CoreCode, DomainError

_ALLOWED_CONTROLS = frozenset({"\n", "\t"})
# Cc: C0/C1 controls (NUL, BEL, ESC, ...); Cs: surrogates, which are never text on their own.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs"})
# Bidirectional embeddings, overrides and isolates (Unicode "Trojan source" characters) and
# the Unicode line and paragraph separators, which break single-line fields.
_REFUSED_FORMATS = frozenset(
    {chr(c) for c in range(0x202A, 0x202F)} | {chr(c) for c in range(0x2066, 0x206A)}
)
_LINE_SEPARATORS = frozenset({"\u2028", "\u2029"})
REPLACEMENT = "\ufffd"


def _refused(ch: str, multiline: bool) -> bool:
    if ch in _REFUSED_FORMATS:
        return True
    if ch in _LINE_SEPARATORS:
        return not multiline
    return unicodedata.category(ch) in _REFUSED_CATEGORIES and not (
        multiline and ch in _ALLOWED_CONTROLS)


def has_refused_characters(text: str, *, multiline: bool = False) -> bool:
    """Whether clean_text would refuse the characters of text (the length aside)."""
    return any(_refused(ch, multiline) for ch in text)


def clean_text(
    value: str | None,
    field: str,
    label: str,
    max_length: int,
    *,
    required: bool = False,
    multiline: bool = False,
) -> str | None:
    """The trimmed text, None when empty and optional; DomainError otherwise, naming field
    (the domain's name, e.g. "family_name"; the API turns it into the input path)."""
    where = field
    text = (value or "").strip()
    if not text:
        if required:
            raise DomainError(CoreCode.REQUIRED, f"{label}を入力してください。", where,
                              message_en=f"{field} is required.")
        return None
    # The length first: a huge value is refused without reading it through.
    if len(text) > max_length:
        raise DomainError(CoreCode.TOO_LONG, f"{label}は{max_length}文字以内で入力してください。",
                          where, message_en=f"{field} is too long (max {max_length}).")
    if has_refused_characters(text, multiline=multiline):
        raise DomainError(CoreCode.INVALID_CHARACTERS, f"{label}に使えない文字（制御文字）が含まれています。",
                          where, message_en=f"{field} contains control characters.")
    return text


def required_text(value: str | None, field: str, label: str, max_length: int) -> str:
    text = clean_text(value, field, label, max_length, required=True)
    assert text is not None
    return text


def replace_refused(text: str, *, multiline: bool = True) -> str:
    """Text that is not ours to refuse (a resident's SMS): what clean_text would refuse becomes
    U+FFFD, so the message is kept and can be stored and shown."""
    if not has_refused_characters(text, multiline=multiline):
        return text
    return "".join(REPLACEMENT if _refused(ch, multiline) else ch for ch in text)


_EXCERPT = reprlib.Repr()
_EXCERPT.maxlevel = 2
_EXCERPT.maxlist = _EXCERPT.maxtuple = _EXCERPT.maxset = _EXCERPT.maxdict = 3
_EXCERPT.maxstring = _EXCERPT.maxother = 40
_EXCERPT.maxlong = 20
EXCERPT_MAX = 60


def excerpt(value: object, limit: int = EXCERPT_MAX) -> str:
    """A short, printable quotation of a value for an error message: never more than limit
    characters, and never the cost of the whole repr (reprlib stops early)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "（桁数の多すぎる数）"  # repr() of a huge int is slow, or refused by Python
    try:
        text = _EXCERPT.repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


NOTES_MAX = 2000
