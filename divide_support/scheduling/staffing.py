"""Seats and staffing per session, computed in one SQL statement for many sessions.

National デジタル活用支援 programme rule: at least one certified supporter leads
each class (the LEAD), and there is one supporter per 4 confirmed attendees.
An explicit Session.required_supporters_explicit can raise the number, never
lower it. The rule lives here, in SQL, once: the GraphQL fields and the
"understaffed" filter both read these rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections

ATTENDEES_PER_SUPPORTER = 4

_STAFFING_SQL = f"""
WITH stats AS (
    SELECT s.id, s.kind, s.status, s.capacity, s.ends_at,
           COALESCE(r.confirmed, 0) AS confirmed,
           COALESCE(r.waitlisted, 0) AS waitlisted,
           COALESCE(a.assigned, 0) AS assigned,
           COALESCE(a.has_certified_lead, false) AS has_certified_lead,
           GREATEST(1,
                    CEIL(COALESCE(r.confirmed, 0) / {ATTENDEES_PER_SUPPORTER}.0)::int,
                    COALESCE(s.required_supporters_explicit, 0)) AS required
    FROM session s
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE status = 'CONFIRMED') AS confirmed,
               count(*) FILTER (WHERE status = 'WAITLISTED') AS waitlisted
        FROM registration WHERE session_id = s.id
    ) r ON true
    LEFT JOIN LATERAL (
        -- a supporter who has since left (inactive) no longer counts
        SELECT count(*) AS assigned,
               bool_or(asg.role = 'LEAD' AND sup.certified) AS has_certified_lead
        FROM assignment asg JOIN supporter sup ON sup.id = asg.supporter_id
        WHERE asg.session_id = s.id AND sup.active
    ) a ON true
    WHERE s.municipality_id = $1 AND {{where}}
), judged AS (
    -- Cancelled and finished sessions need nobody; a class also needs a certified LEAD.
    SELECT stats.*,
           (status = 'SCHEDULED' AND ends_at > now()
            AND (assigned < required OR (kind = 'CLASS' AND NOT has_certified_lead)))
           AS understaffed
    FROM stats
)
SELECT * FROM judged WHERE {{outer}}
"""


@dataclass(frozen=True)
class SessionStaffing:
    session_id: int
    capacity: int | None
    confirmed: int
    waitlisted: int
    assigned: int
    has_certified_lead: bool
    required: int
    understaffed: bool

    @property
    def seats_left(self) -> int | None:
        return None if self.capacity is None else max(0, self.capacity - self.confirmed)


def staffing_sql(where: str) -> str:
    """The staffing rows of the sessions of municipality $1 that `where` (on `session s`)
    selects; other queries join it."""
    return _STAFFING_SQL.format(where=where, outer="true")


# The rows of the sessions whose ids are $2 (of municipality $1).
STAFFING_BY_IDS_SQL = staffing_sql("s.id = ANY($2::int[])")
STAFFING_COLUMNS = ("capacity", "confirmed", "waitlisted", "assigned", "has_certified_lead",
                    "required", "understaffed")


def staffing_of(row: Mapping[str, Any], session_id: int) -> SessionStaffing:
    """A session's staffing from a row with STAFFING_COLUMNS."""
    return SessionStaffing(session_id, *(row[column] for column in STAFFING_COLUMNS))


async def staffing_for(municipality_id: int, session_ids: list[int]) -> dict[int, SessionStaffing]:
    if not session_ids:
        return {}
    conn = connections.get("default")
    _, rows = await conn.execute_query(STAFFING_BY_IDS_SQL, [municipality_id, list(session_ids)])
    return {row["id"]: staffing_of(row, row["id"]) for row in rows}


async def understaffed_session_ids(
    municipality_id: int, starts_from: datetime | None, starts_before: datetime | None
) -> list[int]:
    where = ["true"]
    params: list[object] = [municipality_id]
    if starts_from is not None:
        params.append(starts_from)
        where.append(f"s.starts_at >= ${len(params)}")
    if starts_before is not None:
        params.append(starts_before)
        where.append(f"s.starts_at < ${len(params)}")
    sql = _STAFFING_SQL.format(where=" AND ".join(where), outer="understaffed")
    conn = connections.get("default")
    _, rows = await conn.execute_query(sql, params)
    return [row["id"] for row in rows]
