"""Opaque global IDs: base64("Type:pk"). A wrong type or a malformed ID is a miss."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from divide_support.core.errors import NotFound


def to_global_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def parse_global_id(value: str) -> tuple[str, int] | None:
    try:
        padded = value + "=" * (-len(value) % 4)
        type_name, _, raw_pk = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        pk = int(raw_pk)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not type_name or pk <= 0 or pk > 2**63:
        return None
    return type_name, pk


def decode_id(value: str, type_name: str, field: Sequence[str], what: str = "対象") -> int:
    """The pk of an ID of the expected type; NOT_FOUND (with the field path) otherwise."""
    parsed = parse_global_id(value)
    if parsed is None or parsed[0] != type_name or parsed[1] > 2**31 - 1:
        raise NotFound(what, field)
    return parsed[1]


def decode_optional(value: str | None, type_name: str, field: Sequence[str],
                    what: str = "対象") -> int | None:
    return None if value is None else decode_id(value, type_name, field, what)
