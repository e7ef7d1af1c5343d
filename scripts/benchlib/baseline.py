"""The baseline of scenario 1: a minimal Starlette endpoint with hand-written asyncpg SQL that
answers the staff day view with byte-for-byte the JSON /graphql gives (the benchmark checks).

It reads the operation's variables and ignores its text: what a hand-written REST endpoint for
this one screen would do. One statement checks the bearer token, one builds the page; the pool
resets the connection when it is given back, as the application's pool does.

    uvicorn --factory benchlib.baseline:create_app   (BENCH_BASELINE_DSN=postgres://...)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TOKEN_SQL = """
SELECT u.municipality_id, m.timezone FROM auth_token t
JOIN app_user u ON u.id = t.user_id JOIN municipality m ON m.id = u.municipality_id
WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now() AND u.active
  AND u.role IN ('ADMIN', 'COORDINATOR')
"""

DAY_VIEW_SQL = """
SELECT s.id, s.kind, s.title, s.starts_at, s.ends_at, s.capacity,
       CASE WHEN s.status = 'CANCELLED' THEN 'CANCELLED'
            WHEN s.ends_at <= now() THEN 'COMPLETED' ELSE 'SCHEDULED' END AS status,
       c.id AS course_id, c.title AS course_title, v.id AS venue_id, v.name AS venue_name,
       (SELECT count(*) FROM registration r WHERE r.session_id = s.id AND r.status = 'CONFIRMED') AS confirmed,
       (SELECT count(*) FROM registration r WHERE r.session_id = s.id AND r.status = 'WAITLISTED') AS waitlisted,
       (SELECT array_agg(ROW(a.role, p.id, p.display_name) ORDER BY a.role, a.id)
          FROM assignment a JOIN supporter p ON p.id = a.supporter_id WHERE a.session_id = s.id) AS duties,
       count(*) OVER () AS total
FROM session s JOIN venue v ON v.id = s.venue_id LEFT JOIN course c ON c.id = s.course_id
WHERE s.municipality_id = $1 AND s.venue_id = $2 AND s.starts_at >= $3 AND s.starts_at < $4
ORDER BY s.starts_at, s.id
LIMIT $5
"""


def gid(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def pk_of(value: str) -> int:
    padded = value + "=" * (-len(value) % 4)
    return int(base64.urlsafe_b64decode(padded).decode().split(":", 1)[1])


def create_app() -> Starlette:
    pool: asyncpg.Pool | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(os.environ["BENCH_BASELINE_DSN"], min_size=1, max_size=10)
        try:
            yield
        finally:
            await pool.close()

    async def day_view(request: Request) -> Response:
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        variables = json.loads(await request.body())["variables"]
        assert pool is not None
        async with pool.acquire() as conn:
            who = await conn.fetchrow(TOKEN_SQL, hashlib.sha256(token.encode()).hexdigest())
            if who is None:
                return Response(status_code=401)
            rows = await conn.fetch(DAY_VIEW_SQL, who["municipality_id"], pk_of(variables["venueId"]),
                                    datetime.fromisoformat(variables["from"]),
                                    datetime.fromisoformat(variables["to"]), variables["first"])
        tz = ZoneInfo(who["timezone"])
        edges = []
        for r in rows:
            capacity = r["capacity"]
            edges.append({"node": {
                "id": gid("Session", r["id"]), "kind": r["kind"], "title": r["title"],
                "startsAt": r["starts_at"].astimezone(tz).isoformat(),
                "endsAt": r["ends_at"].astimezone(tz).isoformat(), "status": r["status"], "capacity": capacity,
                "seatsLeft": None if capacity is None else max(0, capacity - r["confirmed"]),
                "waitlistLength": r["waitlisted"],
                "course": None if r["course_id"] is None else {"id": gid("Course", r["course_id"]),
                                                               "title": r["course_title"]},
                "venue": {"id": gid("Venue", r["venue_id"]), "name": r["venue_name"]},
                "assignments": [{"role": role, "supporter": {"id": gid("Supporter", sid), "displayName": name}}
                                for role, sid, name in (r["duties"] or [])],
            }})
        total = rows[0]["total"] if rows else 0
        body = json.dumps({"data": {"sessions": {"totalCount": total, "edges": edges}}}, ensure_ascii=False,
                          separators=(",", ":"))
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/graphql", day_view, methods=["POST"])], lifespan=lifespan)
