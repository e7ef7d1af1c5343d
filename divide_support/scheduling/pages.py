"""A page of sessions with what lists show next to them (venue, course, seats and staffing,
assignments with their supporters), read in one SQL statement that has PostgreSQL build the
rows, instead of one query per relation and an ORM model per row.

The rows are plain values (dicts, SimpleNamespace), with the columns of their tables; the
tenant is in every join, as in the per-relation loaders. Seats and staffing come from
staffing.py's SQL, the one place that rule is written.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import orjson
from tortoise import connections

from divide_support.core import timeutil
from divide_support.scheduling.models import Session, SessionKind, SessionStatus
from divide_support.scheduling.staffing import (
    STAFFING_COLUMNS,
    SessionStaffing,
    staffing_of,
    staffing_sql,
)


class SessionQuery:
    """The sessions a list shows (a municipality's, filtered), soonest first, as one plain
    SQL statement rather than an ORM query built per request: the day view is the busiest
    read (issue 12). `await` it for every row; `page()` reads one page with its total."""

    def __init__(self, municipality_id: int, *, starts_from: datetime | None = None,
                 starts_before: datetime | None = None, venue_id: int | None = None,
                 kind: SessionKind | None = None, status: SessionStatus | None = None,
                 session_ids: Sequence[int] | None = None,
                 exclude_ids: Sequence[int] | None = None) -> None:
        conditions, params = ["s.municipality_id = $1"], [municipality_id]

        def add(condition: str, *values: Any) -> None:
            params.extend(values)
            conditions.append(condition.format(*(f"${len(params) - len(values) + i + 1}"
                                                 for i in range(len(values)))))

        if starts_from is not None:
            add("s.starts_at >= {}", starts_from)
        if starts_before is not None:
            add("s.starts_at < {}", starts_before)
        if venue_id is not None:
            add("s.venue_id = {}", venue_id)
        if kind is not None:
            add("s.kind = {}", kind.value)
        if session_ids is not None:
            add("s.id = ANY({}::int[])", list(session_ids))
        if exclude_ids:
            add("NOT (s.id = ANY({}::int[]))", list(exclude_ids))
        # COMPLETED is not stored (scheduling.service.effective_status): scheduled and ended
        if status == SessionStatus.CANCELLED:
            add("s.status = {}", SessionStatus.CANCELLED.value)
        elif status == SessionStatus.COMPLETED:
            add("s.status = {} AND s.ends_at <= {}", SessionStatus.SCHEDULED.value,
                timeutil.now())
        elif status == SessionStatus.SCHEDULED:
            add("s.status = {} AND s.ends_at > {}", SessionStatus.SCHEDULED.value,
                timeutil.now())
        self._where = " AND ".join(conditions)
        self._params = params

    async def _fetch(self, select: str, tail: str = "", extra: Sequence[Any] = ()) -> list[Any]:
        _, rows = await connections.get("default").execute_query(
            f"SELECT {select} FROM session s WHERE {self._where} {tail}",
            [*self._params, *extra])
        return rows

    def _models(self, rows: list[Any]) -> list[Session]:
        return [Session._init_from_db(**row) for row in rows]  # it reads only its columns

    async def all(self, limit: int | None = None) -> list[Session]:
        n = len(self._params)
        if limit is None:
            return self._models(await self._fetch("s.*", "ORDER BY s.starts_at, s.id"))
        return self._models(await self._fetch("s.*", f"ORDER BY s.starts_at, s.id LIMIT ${n + 1}",
                                              [limit]))

    def __await__(self) -> Generator[Any, None, list[Session]]:
        return self.all().__await__()

    async def count(self) -> int:
        return (await self._fetch("count(*) AS n"))[0]["n"]

    async def page(self, offset: int, limit: int, *, relations: bool = False,
                   staffing: bool = True, assignments: bool = True
                   ) -> tuple[list[SimpleNamespace], int, dict[int, SessionRelations]]:
        """One statement: the page, each row with the total (COUNT(*) OVER ()), and, with
        `relations`, what lists show beside each session (SessionRelations) as one JSON
        document on the first row. Only an empty page costs a second statement, the count.

        The sessions are plain rows (SimpleNamespace) with the columns of `session`, enums as
        their stored strings, not models: making a model per row was a tenth of the day view's
        time. They are for reading; what changes a session loads its model."""
        if not limit:
            return [], await self.count(), {}
        n = len(self._params)
        page = (f"SELECT s.*, COUNT(*) OVER () AS page_total_ FROM session s WHERE {self._where}"
                f" ORDER BY s.starts_at, s.id OFFSET ${n + 1} LIMIT ${n + 2}")
        if relations:
            ctes, select = _relations_sql(staffing=staffing, assignments=assignments)
            sql = (f"WITH {', '.join([f'page_ AS MATERIALIZED ({page})', *ctes])} "
                   "SELECT page_.*, CASE WHEN row_number() OVER (ORDER BY page_.starts_at, "
                   f"page_.id) = 1 THEN ({select}) END AS related_ "
                   "FROM page_ ORDER BY page_.starts_at, page_.id")
        else:
            sql = page
        _, rows = await connections.get("default").execute_query(
            sql, [*self._params, offset, limit])
        if not rows:
            return [], await self.count(), {}
        related = _relations_of(rows[0]["related_"], staffing=staffing,
                                assignments=assignments) if relations else {}
        return [SimpleNamespace(**row) for row in rows], rows[0]["page_total_"], related


@dataclass(frozen=True)
class SessionRelations:
    venue: SimpleNamespace | None
    course: SimpleNamespace | None
    staffing: SessionStaffing | None
    # each with the columns of `assignment` and `supporter` (a SimpleNamespace); None when
    # they were not asked for
    assignments: list[SimpleNamespace] | None


# the page's session ids as an array, so that the joins below use their indexes
_IN_PAGE = "= ANY(ARRAY(SELECT id FROM page_))"


def _relations_sql(*, staffing: bool, assignments: bool) -> tuple[list[str], str]:
    """The CTEs and the SELECT of one JSON document with the relations of the sessions of the
    CTE `page_`; $1 is the municipality. One document for the whole page, decoded once: far
    cheaper in Python than a row with three JSON columns per session. A venue, course or
    supporter that recurs (a venue's week) is in it once, by id, so that PostgreSQL writes it,
    and Python decodes and converts it, once. json, not jsonb: PostgreSQL writes it as text
    straight away (a fifth of the statement's time). The CTEs are MATERIALIZED: computed once
    for the page and hash-joined, not re-run per session."""
    ctes, fields, joins = [], ["'id', s.id", "'venue_id', s.venue_id", "'course_id', s.course_id"], []
    parts = [
        "'venues', (SELECT coalesce(json_agg(to_json(v)), '[]') FROM venue v WHERE v.id = "
        "ANY(ARRAY(SELECT DISTINCT venue_id FROM page_)) AND v.municipality_id = $1)",
        "'courses', (SELECT coalesce(json_agg(to_json(c)), '[]') FROM course c WHERE c.id = "
        "ANY(ARRAY(SELECT DISTINCT course_id FROM page_ WHERE course_id IS NOT NULL)) "
        "AND c.municipality_id = $1)",
    ]
    if staffing:
        ctes.append(f"st AS MATERIALIZED ({staffing_sql('s.id ' + _IN_PAGE)})")
        fields += [f"'{column}', st.{column}" for column in STAFFING_COLUMNS]
        joins.append("LEFT JOIN st ON st.id = s.id")
    if assignments:
        # all the page's assignments whose supporter is the municipality's, in one pass, each
        # session's ordered as AssignmentsBySessionLoader orders them (role, then id)
        ctes.append(f"""asg_rows AS MATERIALIZED (
            SELECT a.* FROM assignment a
            JOIN supporter sup ON sup.id = a.supporter_id AND sup.municipality_id = $1
            WHERE a.session_id {_IN_PAGE} AND a.municipality_id = $1)""")
        ctes.append("""asg AS MATERIALIZED (
            SELECT a.session_id, json_agg(to_json(a) ORDER BY a.role, a.id) AS items
            FROM asg_rows a GROUP BY a.session_id)""")
        fields.append("'assignments', coalesce(asg.items, '[]')")
        joins.append("LEFT JOIN asg ON asg.session_id = s.id")
        parts.append(
            "'supporters', (SELECT coalesce(json_agg(to_json(sup)), '[]') FROM supporter sup "
            "WHERE sup.id = ANY(ARRAY(SELECT DISTINCT supporter_id FROM asg_rows)) "
            "AND sup.municipality_id = $1)")
    sessions = f"""(SELECT coalesce(json_agg(json_build_object({", ".join(fields)})), '[]')
        FROM page_ s {" ".join(joins)})"""
    return ctes, f"SELECT json_build_object('sessions', {sessions}, {', '.join(parts)})"


def _relations_of(document: Any, *, staffing: bool, assignments: bool
                  ) -> dict[int, SessionRelations]:
    if isinstance(document, str):
        document = orjson.loads(document)
    if not document:
        return {}

    def by_id(rows: list[dict[str, Any]]) -> dict[int, SimpleNamespace]:
        return {row["id"]: SimpleNamespace(**row) for row in rows}

    venues, courses = by_id(document["venues"]), by_id(document["courses"])
    supporters = by_id(document.get("supporters") or [])
    related = {}
    for row in document["sessions"]:
        items = None
        if assignments:
            items = []
            for item in row["assignments"]:
                item["supporter"] = supporters.get(item["supporter_id"])
                items.append(SimpleNamespace(**item))
        related[row["id"]] = SessionRelations(
            venue=venues.get(row["venue_id"]), course=courses.get(row["course_id"]),
            staffing=staffing_of(row, row["id"]) if staffing else None, assignments=items)
    return related
