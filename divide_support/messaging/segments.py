"""How many SMS segments a body costs (carriers bill per segment).

GSM-7: 160 characters in one segment, 153 per part when concatenated; characters of the
extension table (e.g. ``{``, ``€``) take two septets. Anything else is UCS-2: 70 in one
segment, 67 per part, and a character outside the basic plane (emoji) takes two units.
Japanese text is always UCS-2.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")

UCS2_SINGLE, UCS2_PART = 70, 67
GSM7_SINGLE, GSM7_PART = 160, 153


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def _parts(units: int, single: int, part: int) -> int:
    if units <= single:
        return 1
    return -(-units // part)


def count_segments(body: str) -> SegmentCount:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body):
        septets = sum(2 if ch in GSM7_EXTENSION else 1 for ch in body)
        return SegmentCount("GSM-7", septets, _parts(septets, GSM7_SINGLE, GSM7_PART))
    units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in body)
    return SegmentCount("UCS-2", units, _parts(units, UCS2_SINGLE, UCS2_PART))


def max_units(segments: int, encoding: str = "UCS-2") -> int:
    """The longest body (in units) that still fits the given number of segments."""
    single, part = (UCS2_SINGLE, UCS2_PART) if encoding == "UCS-2" else (GSM7_SINGLE, GSM7_PART)
    return single if segments == 1 else part * segments
