"""The benchmark's data set: municipalities like 平塚市 with a year of venues, sessions,
registrations with attendance, visits, follow-ups (the generator of benchlib.report), plus
supporters with their duties, a login and bearer token per municipality, and the empty future
classes the write scenarios register into. Everything goes in with COPY."""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from argon2 import PasswordHasher

from benchlib.report import TOWN_CODE, Generator, Ids, Stats, Town
from divide_support.accounts.service import hash_token

SCALES: dict[str, dict[str, int]] = {
    # one municipality as the issue describes it; national: 50 of them in one database
    "default": {"towns": 1, "venues": 40, "supporters": 150, "residents": 20_000, "sessions": 6_000,
                "registrations": 150_000},
    "national": {"towns": 50, "venues": 40, "supporters": 150, "residents": 20_000, "sessions": 6_000,
                 "registrations": 150_000},
    "tiny": {"towns": 1, "venues": 4, "supporters": 12, "residents": 800, "sessions": 240,
             "registrations": 4_000},
}
SUPPORTER_FAMILY = ["青木", "石井", "上田", "岡田", "小野", "金子", "河野", "北村", "久保", "近藤"]
SUPPORTER_GIVEN = ["一郎", "花子", "健太", "美咲", "翔", "陽子", "大輔", "真由美"]
AFFILIATIONS = ["CITY_STAFF", "VOLUNTEER", "VOLUNTEER", "NPO", "CARRIER_SHOP", "STUDENT"]
WRITE_CLASSES = 400  # empty future classes for scenario 3 (each 20 seats)
RUSH_SEATS = 20  # scenario 4: one class with this many seats


@dataclass
class Municipality:
    id: int
    code: str
    town: Town
    token: str = ""  # a COORDINATOR's bearer token (also the console's session cookie)


@dataclass
class Dataset:
    municipalities: list[Municipality]
    date_from: date
    date_to: date
    write_sessions: list[int] = field(default_factory=list)  # scenario 3
    rush_session: int = 0  # scenario 4
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def first(self) -> Municipality:
        return self.municipalities[0]


async def _add_municipalities(conn: asyncpg.Connection, count: int) -> list[asyncpg.Record]:
    """平塚市 from the reference data, then made-up cities with copies of its course catalogue."""
    first = await conn.fetchrow("SELECT id, code, timezone FROM municipality WHERE code = $1", TOWN_CODE)
    rows = [first]
    columns = [r["column_name"] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'course' "
        "AND column_name NOT IN ('id', 'municipality_id') ORDER BY ordinal_position")]
    cols = ", ".join(f'"{c}"' for c in columns)
    for n in range(1, count):
        row = await conn.fetchrow(
            "INSERT INTO municipality (code, name, timezone, phone, follow_up_days, created_at, sms_per_second,"
            " sms_quiet_from_minute, sms_quiet_until_minute, retention_years, erasure_keeps_birth_year)"
            " VALUES ($1, $2, 'Asia/Tokyo', '+81463000000', 14, now(), 1, 1260, 480, 3, false)"
            " RETURNING id, code, timezone", f"9{n:05d}", f"ベンチ{n}市")
        await conn.execute(f"INSERT INTO course (municipality_id, {cols}) SELECT $1, {cols} FROM course "
                           "WHERE municipality_id = $2", row["id"], first["id"])
        rows.append(row)
    return rows


async def _supporters_and_duties(conn: asyncpg.Connection, rng: random.Random, town: Town, count: int,
                                 now: datetime) -> int:
    """Supporters (most certified), and 1-3 of them on every session not cancelled: a LEAD,
    then assistants."""
    records = []
    for n in range(count):
        name = f"{rng.choice(SUPPORTER_FAMILY)} {rng.choice(SUPPORTER_GIVEN)}"
        records.append((town.municipality_id, name, None, rng.choice(AFFILIATIONS), None,
                        f"+8180{town.municipality_id % 100:02d}{n:06d}", None, "[]", rng.random() < 0.7,
                        rng.random() < 0.95, secrets.token_hex(16), now))
    await conn.copy_records_to_table(
        "supporter", columns=["municipality_id", "display_name", "kana", "affiliation", "organisation", "phone",
                              "email", "skills", "certified", "active", "calendar_token", "created_at"],
        records=records)
    ids = [r["id"] for r in await conn.fetch("SELECT id FROM supporter WHERE municipality_id = $1 ORDER BY id",
                                             town.municipality_id)]
    duties = []
    for session in town.session_rows:
        if session["cancelled"]:
            continue
        for i, supporter in enumerate(rng.sample(ids, rng.choice([1, 2, 2, 3]))):
            duties.append((town.municipality_id, session["id"], supporter, "LEAD" if i == 0 else "ASSISTANT",
                           secrets.token_hex(16), now))
    await conn.copy_records_to_table(
        "assignment", columns=["municipality_id", "session_id", "supporter_id", "role", "calendar_token",
                               "created_at"], records=duties)
    return len(duties)


async def _login(conn: asyncpg.Connection, municipality_id: int, password_hash: str) -> str:
    """A COORDINATOR (counter staff) and one bearer token, valid for a day."""
    token = secrets.token_urlsafe(32)
    user_id = await conn.fetchval(
        "INSERT INTO app_user (municipality_id, email, display_name, role, password_hash, active, created_at)"
        " VALUES ($1, $2, 'ベンチ 職員', 'COORDINATOR', $3, true, now()) RETURNING id",
        municipality_id, f"bench-{municipality_id}@example.invalid", password_hash)
    await conn.execute("INSERT INTO auth_token (user_id, token_hash, created_at, expires_at)"
                       " VALUES ($1, $2, now(), now() + interval '1 day')", user_id, hash_token(token))
    return token


async def _future_classes(conn: asyncpg.Connection, ids: Ids, town: Town, count: int, now: datetime
                          ) -> list[int]:
    """Empty classes of 20 seats, a month ahead: scenario 3 registers into them, scenario 4 fills
    the last one all at once."""
    course_id, title, minutes = town.courses[0]
    venue_id = town.venue_ids[0]
    first = ids.take("session", count)
    records = []
    for n in range(count):
        starts = (now + timedelta(days=30, hours=n)).replace(minute=0, second=0, microsecond=0)
        records.append((first + n, town.municipality_id, "CLASS", course_id, venue_id, title, starts,
                        starts + timedelta(minutes=minutes), RUSH_SEATS, "SCHEDULED", 0, now, now))
    await conn.copy_records_to_table(
        "session", columns=["id", "municipality_id", "kind", "course_id", "venue_id", "title", "starts_at",
                            "ends_at", "capacity", "status", "sequence", "created_at", "updated_at"],
        records=records)
    return list(range(first, first + count))


async def build(conn: asyncpg.Connection, scale: str, seed: int, today: date) -> Dataset:
    """The year around `today` (half past, half ahead), so the day views and the register
    scenarios see the present."""
    started = time.perf_counter()
    sizes = SCALES[scale]
    date_from = today - timedelta(days=182)
    date_to = date(date_from.year + 1, date_from.month, date_from.day) - timedelta(days=1)
    now = datetime.now(UTC)
    rng = random.Random(seed)
    ids = Ids()
    stats = Stats()
    generator = Generator(conn, rng, ids, date_from, date_to, now, stats)
    password_hash = PasswordHasher().hash(secrets.token_urlsafe(16))  # nobody logs in with it
    municipalities = []
    for row in await _add_municipalities(conn, sizes["towns"]):
        courses = [(r["id"], r["title"], r["duration_minutes"]) for r in await conn.fetch(
            "SELECT id, title, duration_minutes FROM course WHERE municipality_id = $1 ORDER BY id", row["id"])]
        town = Town(row["id"], row["timezone"], courses, sizes["residents"], sizes["registrations"],
                    max(10, sizes["registrations"] // 10), sessions=sizes["sessions"], venues=sizes["venues"])
        await generator.town(town)
        stats.rows["assignment"] += await _supporters_and_duties(conn, rng, town, sizes["supporters"], now)
        stats.rows["supporter"] += sizes["supporters"]
        municipalities.append(Municipality(row["id"], row["code"], town,
                                           await _login(conn, row["id"], password_hash)))
    first = municipalities[0].town
    classes = await _future_classes(conn, ids, first, WRITE_CLASSES + 1, now)
    for table in ("resident", "venue", "session", "registration", "visit"):
        await conn.execute(f"SELECT setval('{table}_id_seq', $1)", max(1, getattr(ids, table)))
    await conn.execute("VACUUM (ANALYZE)")
    return Dataset(municipalities, date_from, date_to, write_sessions=classes[:-1], rush_session=classes[-1],
                   rows=dict(stats.rows), seconds=time.perf_counter() - started)


def describe(dataset: Dataset) -> dict[str, Any]:
    return {"municipalities": len(dataset.municipalities), "period": [str(dataset.date_from),
                                                                      str(dataset.date_to)],
            "rows": dataset.rows, "seconds": round(dataset.seconds, 1)}
