"""A page of sessions with what lists show next to them (venue, course, seats and staffing,
assignments with their supporters), read in one SQL statement that has PostgreSQL build the
rows, instead of one query per relation and an ORM model per row.

The rows are plain values (dicts, SimpleNamespace), with the columns of their tables; the
tenant is in every join, as in the per-relation loaders. Seats and staffing come from
staffing.py's SQL, the one place that rule is written.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

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
                   ) -> tuple[list[Session], int, dict[int, SessionRelations]]:
        """One statement: the page, each row with the total (COUNT(*) OVER ()), and, with
        `relations`, what lists show beside each session (SessionRelations) as one JSON
        document on the first row. Only an empty page costs a second statement, the count."""
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
        return self._models(rows), rows[0]["page_total_"], related


@dataclass(frozen=True)
class SessionRelations:
    venue: SimpleNamespace | None
    course: SimpleNamespace | None
    staffing: SessionStaffing | None
    # each with the columns of `assignment` and `supporter` (a SimpleNamespace); None when
    # they were not asked for
    assignments: list[SimpleNamespace] | None


class _Rows:
    """One SimpleNamespace per row of a table in a page's document: a venue, course or
    supporter that recurs (a venue's week) is one object, so what converts it does so once."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, Any], SimpleNamespace] = {}

    def get(self, table: str, value: dict[str, Any] | None) -> SimpleNamespace | None:
        if value is None:
            return None
        row = self._seen.get((table, value["id"]))
        if row is None:
            row = self._seen[table, value["id"]] = SimpleNamespace(**value)
        return row

    def assignments(self, items: list[dict[str, Any]] | None) -> list[SimpleNamespace]:
        rows = []
        for item in items or []:
            item["supporter"] = self.get("supporter", item["supporter"])
            rows.append(SimpleNamespace(**item))
        return rows


# the page's session ids as an array, so that the joins below use their indexes
_IN_PAGE = "= ANY(ARRAY(SELECT id FROM page_))"


def _relations_sql(*, staffing: bool, assignments: bool) -> tuple[list[str], str]:
    """The CTEs and the SELECT of one JSON document with the relations of the sessions of the
    CTE `page_`; $1 is the municipality. One document for the whole page, decoded once: far
    cheaper in Python than a row with three JSON columns per session. The CTEs are
    MATERIALIZED: computed once for the page and hash-joined, not re-run per session."""
    ctes, fields, joins = [], ["'id', s.id", "'venue', to_jsonb(v)", "'course', to_jsonb(c)"], []
    if staffing:
        ctes.append(f"st AS MATERIALIZED ({staffing_sql('s.id ' + _IN_PAGE)})")
        fields += [f"'{column}', st.{column}" for column in STAFFING_COLUMNS]
        joins.append("LEFT JOIN st ON st.id = s.id")
    if assignments:
        # all the page's assignments in one pass, each with its supporter; ordered as
        # AssignmentsBySessionLoader orders them (role, then id)
        ctes.append(f"""asg AS MATERIALIZED (
            SELECT a.session_id,
                   jsonb_agg(to_jsonb(a) || jsonb_build_object('supporter', to_jsonb(sup))
                             ORDER BY a.role, a.id) AS items
            FROM assignment a
            JOIN supporter sup ON sup.id = a.supporter_id AND sup.municipality_id = $1
            WHERE a.session_id {_IN_PAGE} AND a.municipality_id = $1
            GROUP BY a.session_id)""")
        fields.append("'assignments', asg.items")
        joins.append("LEFT JOIN asg ON asg.session_id = s.id")
    select = f"""SELECT coalesce(jsonb_agg(jsonb_build_object({", ".join(fields)})), '[]')
        FROM page_ s
        LEFT JOIN venue v ON v.id = s.venue_id AND v.municipality_id = $1
        LEFT JOIN course c ON c.id = s.course_id AND c.municipality_id = $1
        {" ".join(joins)}"""
    return ctes, select


def _relations_of(document: Any, *, staffing: bool, assignments: bool
                  ) -> dict[int, SessionRelations]:
    rows = _Rows()
    return {
        row["id"]: SessionRelations(
            venue=rows.get("venue", row["venue"]), course=rows.get("course", row["course"]),
            staffing=staffing_of(row, row["id"]) if staffing else None,
            assignments=rows.assignments(row["assignments"]) if assignments else None)
        for row in (json.loads(document) if isinstance(document, str) else document or [])
    }
