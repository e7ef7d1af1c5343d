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
    # The bearer token the actor came with (logout revokes it); a login in the same document
    # replaces both.
    token: str | None = None
    loaders: dict[type, Any] = field(default_factory=dict)
    # (who read, object type) -> object id -> field names: personal data read in this request,
    # written to the audit log before the answer leaves (api/audit.record_pii_reads). Keyed by
    # the reader, so a login earlier in the same document is who the reads are recorded for.
    pii_reads: dict[tuple[Actor, str], dict[int, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set)))

    def note_pii_read(self, object_type: str, object_id: int | None, field_name: str) -> None:
        if self.actor is None or object_id is None:
            return
        self.pii_reads[(self.actor, object_type)][object_id].add(field_name)

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
