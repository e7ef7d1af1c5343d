"""Opaque global IDs: base64("Type:pk"). A wrong type or a malformed ID is a miss. In core:
the API, the console and the file endpoints of the areas (reports/http.py) all speak them."""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache

from divide_support.core.errors import NotFound


@lru_cache(maxsize=65536)  # every listed object has one, and the same ones recur
def to_global_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


# Exactly what to_global_id writes (padding allowed): base64 decoding would otherwise skip
# stray characters ("...\n") and int() take "1_0" or non-ASCII digits.
_ENCODED = re.compile(r"[A-Za-z0-9_-]{1,64}={0,2}")
_DECODED = re.compile(r"([A-Za-z]{1,40}):([1-9][0-9]{0,18})")


def parse_global_id(value: str) -> tuple[str, int] | None:
    if not isinstance(value, str) or not _ENCODED.fullmatch(value):
        return None
    try:
        padded = value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4)
        decoded = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    matched = _DECODED.fullmatch(decoded)
    if matched is None:
        return None
    pk = int(matched.group(2))
    if pk > 2**63:
        return None
    return matched.group(1), pk


def decode_id(value: str, type_name: str, field: str, what: str = "対象") -> int:
    """The pk of an ID of the expected type; NOT_FOUND (with the field path) otherwise."""
    parsed = parse_global_id(value)
    if parsed is None or parsed[0] != type_name or parsed[1] > 2**31 - 1:
        raise NotFound(what, field)
    return parsed[1]


NO_ROW = -1


def decode_filter_id(value: str | None, type_name: str) -> int | None:
    """A filter's ID: None when not given, NO_ROW (matches nothing) when it is malformed, of
    another type or out of range, so a foreign or made-up ID simply finds nothing."""
    if value is None:
        return None
    parsed = parse_global_id(value)
    if parsed is None or parsed[0] != type_name or parsed[1] > 2**31 - 1:
        return NO_ROW
    return parsed[1]


def decode_optional(value: str | None, type_name: str, field: str,
                    what: str = "対象") -> int | None:
    return None if value is None else decode_id(value, type_name, field, what)
