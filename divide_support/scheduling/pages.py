"""A page of sessions with what lists show next to them (venue, course, seats and staffing,
assignments with their supporters), read in one SQL statement that has PostgreSQL build the
rows, instead of one query per relation and an ORM model per row.

The rows are plain values (dicts, SimpleNamespace), with the columns of their tables; the
tenant is in every join, as in the per-relation loaders. Seats and staffing come from
staffing.py's SQL, the one place that rule is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from tortoise import connections

from divide_support.scheduling.staffing import (
    STAFFING_BY_IDS_SQL,
    STAFFING_COLUMNS,
    SessionStaffing,
    staffing_of,
)


@dataclass(frozen=True)
class SessionRelations:
    venue: SimpleNamespace | None
    course: SimpleNamespace | None
    staffing: SessionStaffing | None
    # each with the columns of `assignment` and `supporter` (a SimpleNamespace); None when
    # they were not asked for
    assignments: list[SimpleNamespace] | None


def _row(value: Any) -> SimpleNamespace | None:
    if value is None:
        return None
    return SimpleNamespace(**(json.loads(value) if isinstance(value, str) else value))


def _assignments(value: Any) -> list[SimpleNamespace]:
    items = json.loads(value) if isinstance(value, str) else (value or [])
    rows = []
    for item in items:
        item["supporter"] = SimpleNamespace(**item["supporter"])
        rows.append(SimpleNamespace(**item))
    return rows


async def session_relations(municipality_id: int, session_ids: list[int], *,
                            staffing: bool = True, assignments: bool = True
                            ) -> dict[int, SessionRelations]:
    """Venue, course and, when asked for, staffing and assignments of the sessions `session_ids`
    of one municipality, by session id; one statement."""
    if not session_ids:
        return {}
    ctes, columns, joins = [], ["s.id", "to_jsonb(v) AS venue", "to_jsonb(c) AS course"], []
    if staffing:
        # MATERIALIZED: computed once for the page and hash-joined, not re-run per session
        ctes.append(f"st AS MATERIALIZED ({STAFFING_BY_IDS_SQL})")
        columns += [f"st.{column}" for column in STAFFING_COLUMNS]
        joins.append("LEFT JOIN st ON st.id = s.id")
    if assignments:
        # all the page's assignments in one pass, each with its supporter; ordered as
        # AssignmentsBySessionLoader orders them (role, then id)
        ctes.append("""asg AS (
            SELECT a.session_id,
                   jsonb_agg(to_jsonb(a) || jsonb_build_object('supporter', to_jsonb(sup))
                             ORDER BY a.role, a.id) AS items
            FROM assignment a
            JOIN supporter sup ON sup.id = a.supporter_id AND sup.municipality_id = $1
            WHERE a.session_id = ANY($2::int[]) AND a.municipality_id = $1
            GROUP BY a.session_id)""")
        columns.append("asg.items AS assignments")
        joins.append("LEFT JOIN asg ON asg.session_id = s.id")
    sql = f"""{"WITH " + ", ".join(ctes) if ctes else ""}
        SELECT {", ".join(columns)}
        FROM session s
        LEFT JOIN venue v ON v.id = s.venue_id AND v.municipality_id = $1
        LEFT JOIN course c ON c.id = s.course_id AND c.municipality_id = $1
        {" ".join(joins)}
        WHERE s.municipality_id = $1 AND s.id = ANY($2::int[])"""
    _, rows = await connections.get("default").execute_query(
        sql, [municipality_id, list(session_ids)])
    return {
        row["id"]: SessionRelations(
            venue=_row(row["venue"]), course=_row(row["course"]),
            staffing=staffing_of(row, row["id"]) if staffing else None,
            assignments=_assignments(row["assignments"]) if assignments else None)
        for row in rows
    }
