"""Append-only audit log: who did what to which object, and who read personal data.

Every row says who (user, role), when, what, which objects, the server's request id (the
client's own id beside it) and the client's address. The service's database role may only
INSERT and SELECT here (see SECURITY.md), so the application itself cannot rewrite history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from divide_support.audit.models import AuditEntry
from divide_support.core import requestctx
from divide_support.core.actor import Actor, Role
from divide_support.core.permissions import require_role
from divide_support.core.spreadsheet import safe_cell
from divide_support.core.text import clean_text


async def record(
    actor: Actor,
    action: str,
    object_type: str | None = None,
    object_ids: Iterable[int] = (),
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one entry; call inside the transaction of the change it describes."""
    return await _write(municipality_id=actor.municipality_id, actor_user_id=actor.user_id,
                        actor_email=actor.email, actor_role=str(actor.role),
                        request_id=actor.request_id, action=action, object_type=object_type,
                        object_ids=object_ids, details=details)


async def record_anonymous(
    municipality_id: int | None,
    action: str,
    object_type: str | None = None,
    object_ids: Iterable[int] = (),
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """An entry without a known actor: a failed login (municipality None when the e-mail
    belongs to no account)."""
    return await _write(municipality_id=municipality_id, actor_user_id=None, actor_email=None,
                        actor_role=None, request_id=requestctx.current_request_id(),
                        action=action, object_type=object_type, object_ids=object_ids,
                        details=details)


async def _write(*, municipality_id: int | None, actor_user_id: int | None,
                 actor_email: str | None, actor_role: str | None, request_id: str, action: str,
                 object_type: str | None, object_ids: Iterable[int],
                 details: dict[str, Any] | None) -> AuditEntry:
    request = requestctx.current()
    return await AuditEntry.create(
        municipality_id=municipality_id,
        actor_user_id=actor_user_id,
        actor_email=actor_email,
        actor_role=actor_role,
        action=action,
        object_type=object_type,
        object_ids=sorted(set(object_ids)),
        request_id=request_id,
        client_request_id=request.client_request_id if request else None,
        client_address=request.client_address if request else None,
        details=details or {},
    )


def email_fingerprint(email: str) -> str:
    """Stands in for an e-mail address that belongs to no account (a typo, or someone's
    guess): the same address gives the same value, and the trail names nobody."""
    return hashlib.sha256(email.encode("utf-8")).hexdigest()[:16]


def entries_query(actor: Actor, *, action: str | None = None, object_type: str | None = None):
    require_role(actor, Role.ADMIN)
    query = AuditEntry.filter(municipality_id=actor.municipality_id)
    action = clean_text(action, "action", "操作", 64)
    object_type = clean_text(object_type, "object_type", "対象の種類", 32)
    if action:
        query = query.filter(action=action)
    if object_type:
        query = query.filter(object_type=object_type)
    return query.order_by("-created_at", "-id")


# --- export for auditors ---------------------------------------------------------------------

EXPORT_COLUMNS = ("id", "created_at", "municipality_id", "actor_user_id", "actor_email",
                  "actor_role", "action", "object_type", "object_ids", "request_id",
                  "client_request_id", "client_address", "details")
EXPORT_BATCH = 2000


async def export_rows(*, date_from: datetime, date_to: datetime,
                      municipality_id: int | None = None) -> AsyncIterator[list[str]]:
    """Entries from `date_from` (inclusive) to `date_to` (exclusive), oldest first, in
    batches by id so a long trail never sits in memory at once."""
    last_id = 0
    while True:
        query = AuditEntry.filter(created_at__gte=date_from, created_at__lt=date_to,
                                  id__gt=last_id)
        if municipality_id is not None:
            query = query.filter(municipality_id=municipality_id)
        batch = await query.order_by("id").limit(EXPORT_BATCH)
        if not batch:
            return
        for entry in batch:
            yield [
                str(entry.id), entry.created_at.isoformat(), _text(entry.municipality_id),
                _text(entry.actor_user_id), safe_cell(entry.actor_email or ""),
                entry.actor_role or "", entry.action, entry.object_type or "",
                " ".join(str(i) for i in entry.object_ids or []), entry.request_id or "",
                entry.client_request_id or "", entry.client_address or "",
                safe_cell(json.dumps(entry.details or {}, ensure_ascii=False, sort_keys=True)),
            ]
        last_id = batch[-1].id


def _text(value: object) -> str:
    return "" if value is None else str(value)
