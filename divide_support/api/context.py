"""Per-request GraphQL context: who is asking, their loaders, what PII they read."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from strawberry.types import Info as StrawberryInfo

from divide_support.core.actor import Actor


@dataclass
class Context:
    request: Request | None
    actor: Actor | None
    request_id: str
    language: str = "ja"
    loaders: dict[type, Any] = field(default_factory=dict)
    # resident id -> PII field names read in this request (flushed to the audit log)
    pii_reads: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))

    def note_pii_read(self, resident_id: int, field_name: str) -> None:
        self.pii_reads[resident_id].add(field_name)

    def local(self, moment: datetime | None) -> datetime | None:
        """Timestamps go out with the municipality's offset (+09:00), as people read them."""
        if moment is None:
            return None
        tz = self.actor.timezone if self.actor else "Asia/Tokyo"
        return moment.astimezone(ZoneInfo(tz))


Info = StrawberryInfo[Context, None]


def language_from(accept_language: str | None) -> str:
    """Japanese unless the client prefers English first."""
    if not accept_language:
        return "ja"
    first = accept_language.split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "ja"
