"""Benchmark of the participation report on a year of data for one city (not a test).

Creates a throw-away PostgreSQL database, applies the migrations, loads the reference data
(municipalities, courses, the Hiratsuka survey) and generates for 平塚市 (142034):

- residents skewed old, like the people who come to smartphone classes: most with a birth
  date, some with only a birth year, a few percent with no age at all;
- venues and a year of sessions (fiscal year 2025 by default, plus a few days either side so
  the period edges matter; classes and help sessions, ~2% cancelled, a few at 08:30 local,
  which is the previous day in UTC);
- registrations (CONFIRMED with ATTENDED / NO_SHOW / not recorded, some WAITLISTED, some
  CANCELLED, a few re-registered after cancelling: the partial unique index
  registration_one_active_per_resident holds), visits (some anonymous with only an age, a few
  younger than any survey band) and follow-ups (mostly DONE);
- a little data for another municipality, which the report must not see.

Everything goes in with COPY (asyncpg copy_records_to_table), then VACUUM (ANALYZE).
It then times participation_report() for a COORDINATOR of 平塚市 over the year against a
hand-written SQL GROUP BY computing the same per-band counts with asyncpg, checks that both
give the same counts in every band (exit 1 on a mismatch) and prints the timings; then the
three reports as a COORDINATOR against the same as a PLANNER, whose counts the cell key method
perturbs (record keys hashed in SQL: what that costs).

    .venv/bin/python scripts/bench_report.py --residents 5000 --registrations 50000
    .venv/bin/python scripts/bench_report.py                       # 100,000 / 1,000,000
    .venv/bin/python scripts/bench_report.py --explain --keep-db
    .venv/bin/python scripts/bench_report.py --database-url postgres://user:pw@host:5432

The hand-written query follows the definitions in the docstring of
divide_support.reports.service, written independently of REPORT_SQL: an index-friendly UTC
range for the local period, age as the year difference less one before the birthday, a
resident's first participation by min(day), counts per age first and bands last. It runs on its
own connection with jit=off (--hand-jit: the server's setting; one run with it is shown anyway)
and plan_cache_mode=force_custom_plan. participation_report() runs as in production: through
the ORM's pool, whose connection keeps REPORT_SQL prepared, so from the sixth execution
PostgreSQL may use a generic plan (the plan counts are printed). The run takes about two
minutes at the default size on two cores, most of it COPY.
"""

from __future__ import annotations

import bisect
import math
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from divide_support.core.actor import Actor, Role
from divide_support.core.timeutil import age_on
from divide_support.people.service import _name_keys
from divide_support.reports.service import (
    UNKNOWN_LABEL,
    ReportFilter,
    participation_report,
)

TOWN_CODE = "142034"  # 平塚市
SURVEY_KEY = "hiratsuka-2020-internet-use"
METRIC = "internet_use.using"
OUTSIDE_LABEL = "調査の年齢区分外"
COUNTS = ("participants", "registrations", "attendances", "no_shows", "visits", "follow_ups_done",
          "uses_independently")
SHORT = {"participants": "partic", "registrations": "regs", "attendances": "attended", "no_shows": "no_show",
         "visits": "visits", "follow_ups_done": "fu_done", "uses_independently": "indep"}
UNKNOWN, OUTSIDE = -1, -2  # bucket keys next to the band positions 0..n-1
PAD_DAYS = 7  # sessions this many days before and after the period too

# Age at the start of the period: (from, to, weight) -- the people at smartphone classes.
AGE_WEIGHTS = [(16, 19, 1.0), (20, 29, 1.5), (30, 39, 2.5), (40, 49, 4.0), (50, 59, 9.0), (60, 69, 22.0),
               (70, 79, 38.0), (80, 89, 18.0), (90, 99, 4.0)]
# Names with their readings (residents are found by either at the counter).
FAMILY_KANA = {"佐藤": "サトウ", "鈴木": "スズキ", "高橋": "タカハシ", "田中": "タナカ", "伊藤": "イトウ",
               "渡辺": "ワタナベ", "山本": "ヤマモト", "中村": "ナカムラ", "小林": "コバヤシ", "加藤": "カトウ",
               "吉田": "ヨシダ", "山田": "ヤマダ", "佐々木": "ササキ", "山口": "ヤマグチ", "松本": "マツモト",
               "井上": "イノウエ", "木村": "キムラ", "林": "ハヤシ", "斎藤": "サイトウ", "清水": "シミズ",
               "山崎": "ヤマザキ", "森": "モリ", "池田": "イケダ", "橋本": "ハシモト", "阿部": "アベ",
               "石川": "イシカワ"}
GIVEN_KANA = {"和子": "カズコ", "幸子": "サチコ", "節子": "セツコ", "洋子": "ヨウコ", "恵子": "ケイコ",
              "京子": "キョウコ", "美智子": "ミチコ", "久子": "ヒサコ", "弘子": "ヒロコ", "清": "キヨシ",
              "茂": "シゲル", "博": "ヒロシ", "勝": "マサル", "稔": "ミノル", "実": "ミノル", "進": "ススム",
              "正": "タダシ", "修": "オサム", "隆": "タカシ", "明": "アキラ", "誠": "マコト", "浩": "ヒロシ",
              "順子": "ジュンコ", "悦子": "エツコ"}
FAMILY = list(FAMILY_KANA)
GIVEN = list(GIVEN_KANA)
DISTRICTS = ["崇善", "港", "花水", "松原", "八幡", "中原", "豊田", "城島", "岡崎", "金田", "土沢", "神田",
             "旭", "大野", "四之宮", "須賀", "金目", "吉沢", "南原", "真土"]
VENUE_KINDS = [("公民館", "COMMUNITY_CENTRE", 0.6), ("図書館", "LIBRARY", 0.15),
               ("デジタル相談室", "DIGITAL_STATION", 0.15), ("地区センター", "OTHER", 0.1)]
SLOTS = [(9, 30), (10, 0), (13, 0), (13, 30), (14, 0), (15, 30), (18, 30)]
EARLY_SLOT = (8, 30)  # 08:30 JST is 23:30 UTC the day before
TOPICS = ["DEVICE_BASICS", "MESSAGING_SNS", "CITY_ONLINE_SERVICES", "MY_NUMBER_CARD", "SECURITY", "CASHLESS",
          "OTHER"]
SOURCES = [("PHONE", 50), ("COUNTER", 20), ("ONLINE", 15), ("WALK_IN", 10), ("SUPPORTER", 5)]
OUTCOMES_DONE = [("USES_INDEPENDENTLY", 45), ("NEEDS_MORE_HELP", 25), ("NOT_REACHED", 20), ("DECLINED", 10)]


# --- the hand-written query ------------------------------------------------------------------

def age_sql(day: str, person: str) -> str:
    """Age on `day` from `person`'s birth date, else birth year (NULL when neither): the
    year difference, less one before the birthday, compared as (month, day)."""
    return (f"CASE WHEN {person}.birth_date IS NOT NULL "
            f"THEN date_part('year', {day})::int - date_part('year', {person}.birth_date)::int - CASE WHEN "
            f"(date_part('month', {day}), date_part('day', {day})) < (date_part('month', {person}.birth_date), "
            f"date_part('day', {person}.birth_date)) THEN 1 ELSE 0 END "
            f"ELSE date_part('year', {day})::int - {person}.birth_year END")


HAND_SQL = f"""
WITH bands AS (
    SELECT position, min_age, COALESCE(max_age, 2147483647) AS max_age
    FROM survey_band WHERE survey_id = $1
),
held AS NOT MATERIALIZED (  -- the town's sessions not cancelled whose local day is in the period
    SELECT id, kind, (starts_at AT TIME ZONE $3)::date AS day
    FROM session
    WHERE municipality_id = $2 AND status <> 'CANCELLED'
      AND starts_at >= ($4::date::timestamp AT TIME ZONE $3)
      AND starts_at < (($5::date + 1)::timestamp AT TIME ZONE $3)
),
registrations AS (
    SELECT {age_sql("h.day", "p")} AS age, count(*) AS registrations,
           count(*) FILTER (WHERE r.attendance = 'ATTENDED') AS attendances,
           count(*) FILTER (WHERE r.attendance = 'NO_SHOW') AS no_shows
    FROM registration r JOIN held h ON h.id = r.session_id JOIN resident p ON p.id = r.resident_id
    WHERE r.status <> 'CANCELLED'
    GROUP BY 1
),
visits AS (  -- the resident's age, else the age typed in at the visit (anonymous: always)
    SELECT COALESCE({age_sql("h.day", "p")}, v.age_at_visit) AS age, count(*) AS visits
    FROM visit v JOIN held h ON h.id = v.session_id LEFT JOIN resident p ON p.id = v.resident_id
    GROUP BY 1
),
took_part AS (  -- known residents attending a class or visiting
    SELECT r.resident_id, h.day FROM registration r JOIN held h ON h.id = r.session_id
    WHERE r.status <> 'CANCELLED' AND r.attendance = 'ATTENDED' AND h.kind = 'CLASS'
    UNION ALL
    SELECT v.resident_id, h.day FROM visit v JOIN held h ON h.id = v.session_id
    WHERE v.resident_id IS NOT NULL
),
first_day AS (
    SELECT resident_id, min(day) AS day FROM took_part GROUP BY resident_id
),
typed AS (  -- residents without birth data: an age typed in at a visit that day
    SELECT v.resident_id, h.day, min(v.age_at_visit) AS age
    FROM visit v JOIN held h ON h.id = v.session_id JOIN resident p ON p.id = v.resident_id
    WHERE p.birth_date IS NULL AND p.birth_year IS NULL AND v.age_at_visit IS NOT NULL
    GROUP BY 1, 2
),
participants AS (
    SELECT age, count(*) AS participants FROM (
        SELECT COALESCE({age_sql("f.day", "p")}, t.age) AS age
        FROM first_day f JOIN resident p ON p.id = f.resident_id
        LEFT JOIN typed t ON t.resident_id = f.resident_id AND t.day = f.day
        UNION ALL  -- every anonymous visit is one participant
        SELECT v.age_at_visit FROM visit v JOIN held h ON h.id = v.session_id WHERE v.resident_id IS NULL
    ) a GROUP BY age
),
follow_ups AS (  -- DONE, for a registration or else a visit counted above; the age of that one
    SELECT age, count(*) AS follow_ups_done,
           count(*) FILTER (WHERE outcome = 'USES_INDEPENDENTLY') AS uses_independently
    FROM (
        -- (a follow-up naming both: the registration's age, else the age typed in at the visit
        -- when that visit is counted too -- as the service does; the docstring does not say)
        SELECT COALESCE({age_sql("h.day", "p")}, v.age_at_visit) AS age, f.outcome
        FROM follow_up f JOIN registration r ON r.id = f.registration_id
        JOIN held h ON h.id = r.session_id JOIN resident p ON p.id = r.resident_id
        LEFT JOIN (visit v JOIN held hv ON hv.id = v.session_id) ON v.id = f.visit_id
        WHERE f.status = 'DONE' AND r.status <> 'CANCELLED'
        UNION ALL
        SELECT COALESCE({age_sql("h.day", "p")}, v.age_at_visit), f.outcome
        FROM follow_up f JOIN visit v ON v.id = f.visit_id
        JOIN held h ON h.id = v.session_id LEFT JOIN resident p ON p.id = v.resident_id
        WHERE f.status = 'DONE' AND (f.registration_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM registration r JOIN held h2 ON h2.id = r.session_id
            WHERE r.id = f.registration_id AND r.status <> 'CANCELLED'))
    ) d GROUP BY age
),
per_age AS (
    SELECT age, participants, 0 AS registrations, 0 AS attendances, 0 AS no_shows, 0 AS visits,
           0 AS follow_ups_done, 0 AS uses_independently FROM participants
    UNION ALL SELECT age, 0, registrations, attendances, no_shows, 0, 0, 0 FROM registrations
    UNION ALL SELECT age, 0, 0, 0, 0, visits, 0, 0 FROM visits
    UNION ALL SELECT age, 0, 0, 0, 0, 0, follow_ups_done, uses_independently FROM follow_ups
)
SELECT CASE WHEN a.age IS NULL THEN -1 ELSE COALESCE(b.position, -2) END AS bucket,
       sum(a.participants)::bigint AS participants, sum(a.registrations)::bigint AS registrations,
       sum(a.attendances)::bigint AS attendances, sum(a.no_shows)::bigint AS no_shows,
       sum(a.visits)::bigint AS visits, sum(a.follow_ups_done)::bigint AS follow_ups_done,
       sum(a.uses_independently)::bigint AS uses_independently
FROM per_age a
LEFT JOIN bands b ON a.age BETWEEN b.min_age AND b.max_age
GROUP BY 1
ORDER BY 1
"""


# --- data generation ---------------------------------------------------------------------------

@dataclass
class Ids:
    """Explicit primary keys (COPY gives them; the sequences are moved past them at the end)."""

    resident: int = 0
    venue: int = 0
    session: int = 0
    registration: int = 0
    visit: int = 0

    def take(self, name: str, count: int = 1) -> int:
        first = getattr(self, name) + 1
        setattr(self, name, first + count - 1)
        return first


@dataclass
class Town:
    municipality_id: int
    timezone: str
    courses: list[tuple[int, str, int]]  # id, title, duration_minutes
    residents: int
    registrations: int
    visits: int
    prefix: str = ""  # venue names
    sessions: int = 0  # 0: registrations / 20
    venues: int = 0  # 0: one per 1,000 sessions, at least 5
    # filled in by Generator.town: what the scenarios pick from
    resident_ids: list[int] = field(default_factory=list)
    venue_ids: list[int] = field(default_factory=list)
    session_rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Stats:
    rows: Counter = field(default_factory=Counter)
    build_seconds: float = 0.0
    copy_seconds: float = 0.0


def weighted(rng: random.Random, pairs: list[tuple[Any, float]]) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


class Generator:
    def __init__(self, conn: asyncpg.Connection, rng: random.Random, ids: Ids, date_from: date, date_to: date,
                 now: datetime, stats: Stats) -> None:
        self.conn = conn
        self.rng = rng
        self.ids = ids
        self.date_from = date_from
        self.date_to = date_to
        self.now = now
        self.stats = stats

    async def copy(self, table: str, columns: list[str], records: list[tuple]) -> None:
        if not records:
            return
        started = time.perf_counter()
        await self.conn.copy_records_to_table(table, columns=columns, records=records)
        self.stats.copy_seconds += time.perf_counter() - started
        self.stats.rows[table] += len(records)

    # residents ----------------------------------------------------------------------------

    def birth(self) -> tuple[date | None, int | None]:
        rng = self.rng
        low, high, _ = rng.choices(AGE_WEIGHTS, weights=[w for _, _, w in AGE_WEIGHTS])[0]
        age = rng.randint(low, high)
        born = self.date_from.replace(year=self.date_from.year - age) - timedelta(days=rng.randrange(365))
        u = rng.random()
        if u < 0.85:
            return born, None
        if u < 0.96:
            return None, born.year
        return None, None  # age unknown

    async def residents(self, town: Town) -> tuple[list[int], list[float], dict[int, tuple]]:
        """Returns resident ids, cumulative activity weights (for rng.choices) and births."""
        rng = self.rng
        started = time.perf_counter()
        first = self.ids.take("resident", town.residents)
        records, births, weights = [], {}, []
        for rid in range(first, first + town.residents):
            birth_date, birth_year = self.birth()
            births[rid] = (birth_date, birth_year)
            phone = f"+8190{rid % 100_000_000:08d}" if rng.random() < 0.6 else None
            landline = f"+81463{rid % 1_000_000:06d}" if rng.random() < 0.5 else None
            family, given = rng.choice(FAMILY), rng.choice(GIVEN)
            kana = f"{FAMILY_KANA[family]} {GIVEN_KANA[given]}"
            keys = _name_keys(family, given, kana)
            records.append((rid, town.municipality_id, family, given, kana, keys["name_key"], keys["given_key"],
                            keys["kana_key"], keys["kana_given_key"], phone, landline, birth_date, birth_year,
                            "PHONE_CALL" if phone is None else "SMS", phone is not None,
                            False, rng.choice(["IPHONE", "ANDROID", "ANDROID", "FEATURE_PHONE", "NONE"]),
                            rng.choice(DISTRICTS), self.now, self.now))
            # How often this resident comes: a few rarely, most now and then, some every week.
            weights.append(0.05 if rng.random() < 0.1 else min(8.0, rng.lognormvariate(0.0, 0.8)))
        cumulative, total = [], 0.0
        for w in weights:
            total += w
            cumulative.append(total)
        self.stats.build_seconds += time.perf_counter() - started
        await self.copy("resident", ["id", "municipality_id", "family_name", "given_name", "kana", "name_key",
                                     "given_key", "kana_key", "kana_given_key", "phone", "landline",
                                     "birth_date", "birth_year", "contact_preference", "sms_consent",
                                     "sms_opted_out", "device", "district", "created_at", "updated_at"], records)
        return list(range(first, first + town.residents)), cumulative, births

    def pick(self, ids: list[int], cumulative: list[float], k: int) -> list[int]:
        """k distinct residents, the active ones more often."""
        if k * 2 >= len(ids):
            return self.rng.sample(ids, k)
        chosen: dict[int, None] = {}
        while len(chosen) < k:
            for rid in self.rng.choices(ids, cum_weights=cumulative, k=k - len(chosen)):
                chosen[rid] = None
        return list(chosen)

    # venues and sessions ------------------------------------------------------------------

    async def venues(self, town: Town, count: int) -> list[tuple[int, int]]:
        records, venues = [], []
        for n in range(count):
            district = DISTRICTS[n % len(DISTRICTS)]
            label, kind, _ = weighted(self.rng, [(v, v[2]) for v in VENUE_KINDS])
            number = n // len(DISTRICTS)
            name = f"{town.prefix}{district}{label}" + (f" 第{number + 1}会場" if number else "")
            capacity = self.rng.choice([20, 24, 30, 40, 60])
            vid = self.ids.take("venue")
            venues.append((vid, capacity))
            records.append((vid, town.municipality_id, name, kind, f"{district}1-{n + 1}", capacity,
                            self.rng.random() < 0.8, self.rng.choice([0, 2, 5, 10]), self.now))
        await self.copy("venue", ["id", "municipality_id", "name", "kind", "address", "capacity", "has_wifi",
                                  "loaner_devices", "created_at"], records)
        return venues

    async def sessions(self, town: Town, venues: list[tuple[int, int]], count: int) -> list[dict[str, Any]]:
        rng = self.rng
        tz = ZoneInfo(town.timezone)
        days = (self.date_to - self.date_from).days + 1 + 2 * PAD_DAYS
        first_day = self.date_from - timedelta(days=PAD_DAYS)
        plan: list[tuple[date, tuple[int, int], str]] = []
        # The edges: 08:30 local on the first day is inside (the day before in UTC), 08:30 local
        # on the day after the period is outside (the last day in UTC).
        plan += [(self.date_from, EARLY_SLOT, "HELP_SESSION"), (self.date_to + timedelta(days=1), EARLY_SLOT,
                                                               "HELP_SESSION"),
                 (self.date_from - timedelta(days=1), (18, 30), "CLASS"), (self.date_to, (18, 30), "CLASS")]
        while len(plan) < count:
            kind = "CLASS" if rng.random() < 0.72 else "HELP_SESSION"
            slot = EARLY_SLOT if kind == "HELP_SESSION" and rng.random() < 0.05 else rng.choice(SLOTS)
            plan.append((first_day + timedelta(days=rng.randrange(days)), slot, kind))
        records, sessions = [], []
        for day, (hour, minute), kind in plan[:count]:
            venue_id, venue_capacity = rng.choice(venues)
            if kind == "CLASS":
                course_id, title, minutes = rng.choice(town.courses)
                capacity = min(venue_capacity, rng.choice([12, 16, 20, 24, 30]))
            else:
                course_id, title, minutes, capacity = None, "スマホ相談会", rng.choice([120, 180]), None
            starts = datetime.combine(day, dtime(hour, minute), tzinfo=tz).astimezone(UTC)
            ends = starts + timedelta(minutes=minutes)
            cancelled = rng.random() < 0.02
            sid = self.ids.take("session")
            created = starts - timedelta(days=rng.randint(20, 60))
            sessions.append({"id": sid, "kind": kind, "starts": starts, "day": day, "cancelled": cancelled,
                             "capacity": capacity})
            records.append((sid, town.municipality_id, kind, course_id, venue_id, title, starts, ends, capacity,
                            "CANCELLED" if cancelled else "SCHEDULED", 1 if cancelled else 0,
                            "講師の急病のため" if cancelled else None, created, created))
        await self.copy("session", ["id", "municipality_id", "kind", "course_id", "venue_id", "title", "starts_at",
                                    "ends_at", "capacity", "status", "sequence", "cancel_reason", "created_at",
                                    "updated_at"], records)
        return sessions

    # registrations, visits, follow-ups -----------------------------------------------------

    def spread(self, sessions: list[dict[str, Any]], total: int, limit: int) -> list[int]:
        """Registrations per session adding up to exactly `total` (each at most `limit`)."""
        rng = self.rng
        weights = [(s["capacity"] * rng.uniform(0.6, 1.15)) if s["kind"] == "CLASS" else rng.uniform(2, 8)
                   for s in sessions]
        scale = total / sum(weights)
        counts = [min(limit, int(w * scale)) for w in weights]
        short = total - sum(counts)
        open_ = [i for i, c in enumerate(counts) if c < limit]
        while short > 0 and open_:
            i = rng.choice(open_)
            counts[i] += 1
            short -= 1
            if counts[i] >= limit:
                open_.remove(i)
        return counts

    async def registrations(self, town: Town, sessions: list[dict[str, Any]], resident_ids: list[int],
                            cumulative: list[float]) -> dict[str, list[tuple[int, int, date]]]:
        """COPY in chunks; returns (registration id, resident id, day) of the rows follow-ups use."""
        rng = self.rng
        columns = ["id", "municipality_id", "session_id", "resident_id", "status", "waitlist_position", "source",
                   "attendance", "checked_in_at", "promoted_at", "cancelled_at", "cancel_reason", "created_at"]
        source_names = [s for s, _ in SOURCES]
        source_cum = list(_cumulate([w for _, w in SOURCES]))
        chosen: dict[str, list[tuple[int, int, date]]] = {"attended_class": [], "no_show": [], "waitlisted": [],
                                                          "cancelled": []}
        counts = self.spread(sessions, town.registrations, len(resident_ids))
        chunk: list[tuple] = []
        started = time.perf_counter()
        for session, k in zip(sessions, counts, strict=True):
            if k == 0:
                continue
            residents = self.pick(resident_ids, cumulative, k)
            statuses = []
            for _ in range(k):
                u = rng.random()
                statuses.append("CANCELLED" if u < 0.05 else "WAITLISTED" if u < 0.07 else "CONFIRMED")
            active = [i for i, s in enumerate(statuses) if s != "CANCELLED"]
            for j, status in enumerate(statuses):
                # Cancelled, then registered again: one CANCELLED and one active row, same resident.
                if status == "CANCELLED" and active and rng.random() < 0.2:
                    residents[rng.choice(active)] = residents[j]
            starts: datetime = session["starts"]
            made = [starts - timedelta(days=d) for d in (3, 10, 21)]
            checked_in = starts - timedelta(minutes=10)
            first_id = self.ids.take("registration", k)
            waitlist = 0
            for i, (rid, status) in enumerate(zip(residents, statuses, strict=True)):
                reg_id = first_id + i
                attendance = cancelled_at = position = None
                if status == "CONFIRMED" and not session["cancelled"]:
                    u = rng.random()
                    attendance = "ATTENDED" if u < 0.84 else "NO_SHOW" if u < 0.93 else None
                elif status == "WAITLISTED":
                    waitlist += 1
                    position = waitlist
                elif status == "CANCELLED":
                    cancelled_at = starts - timedelta(days=1)
                source = source_names[bisect.bisect_left(source_cum, rng.random() * source_cum[-1])]
                chunk.append((reg_id, town.municipality_id, session["id"], rid, status, position, source,
                              attendance, checked_in if attendance == "ATTENDED" else None, None, cancelled_at,
                              None, made[i % 3]))
                key = ("attended_class" if attendance == "ATTENDED" and session["kind"] == "CLASS"
                       else "no_show" if attendance == "NO_SHOW"
                       else "waitlisted" if status == "WAITLISTED"
                       else "cancelled" if status == "CANCELLED" else None)
                if key:
                    chosen[key].append((reg_id, rid, session["day"]))
            if len(chunk) >= 100_000:
                self.stats.build_seconds += time.perf_counter() - started
                await self.copy("registration", columns, chunk)
                chunk = []
                started = time.perf_counter()
        self.stats.build_seconds += time.perf_counter() - started
        await self.copy("registration", columns, chunk)
        return chosen

    async def visits(self, town: Town, sessions: list[dict[str, Any]], resident_ids: list[int],
                     cumulative: list[float], births: dict[int, tuple]
                     ) -> tuple[list[tuple[int, int, date]], dict[int, list[int]]]:
        """Returns (visit id, resident id, day) of the visits that need a follow-up, and the
        visits of each resident."""
        rng = self.rng
        started = time.perf_counter()
        help_sessions = [s for s in sessions if s["kind"] == "HELP_SESSION" and not s["cancelled"]]
        records, needing = [], []
        by_resident: dict[int, list[int]] = {}
        for _ in range(town.visits if help_sessions else 0):
            session = rng.choice(help_sessions)
            vid = self.ids.take("visit")
            if rng.random() < 0.55:
                rid = rng.choices(resident_ids, cum_weights=cumulative)[0]
                birth_date, birth_year = births[rid]
                # As record_visit does: the age from the resident's birth data on that day,
                # else what staff typed in (sometimes) -- the same number the report derives.
                age = age_on(birth_date, birth_year, session["day"])
                if age is None and rng.random() < 0.4:
                    age = rng.randint(65, 90)
                outcome = weighted(rng, [("RESOLVED", 60), ("PARTLY_RESOLVED", 28), ("NEEDS_FOLLOW_UP", 12)])
                if outcome == "NEEDS_FOLLOW_UP":
                    needing.append((vid, rid, session["day"]))
                by_resident.setdefault(rid, []).append(vid)
            else:
                rid = None
                u = rng.random()
                if u < 0.03:
                    age = None
                elif u < 0.035:
                    age = rng.randint(8, 15)  # a grandchild: younger than any survey band
                else:
                    low, high, _ = rng.choices(AGE_WEIGHTS, weights=[w for _, _, w in AGE_WEIGHTS])[0]
                    age = rng.randint(low, high)
                outcome = weighted(rng, [("RESOLVED", 70), ("PARTLY_RESOLVED", 30)])
            records.append((vid, town.municipality_id, session["id"], rid, age, rng.choice(TOPICS), outcome,
                            session["starts"] + timedelta(minutes=30)))
        self.stats.build_seconds += time.perf_counter() - started
        await self.copy("visit", ["id", "municipality_id", "session_id", "resident_id", "age_at_visit", "topic",
                                  "outcome", "created_at"], records)
        return needing, by_resident

    async def follow_ups(self, town: Town, registrations: dict[str, list[tuple[int, int, date]]],
                         visits: list[tuple[int, int, date]], visits_of: dict[int, list[int]],
                         resident_ids: list[int]) -> None:
        rng = self.rng
        started = time.perf_counter()
        records = []

        def add(purpose: str, rid: int, day: date, registration_id: int | None, visit_id: int | None,
                done_share: float = 0.8) -> None:
            due = day + timedelta(days=14)
            u = rng.random()
            status = "DONE" if u < done_share else "OPEN" if u < done_share + 0.12 else "CANCELLED"
            outcome = weighted(rng, OUTCOMES_DONE) if status == "DONE" else None
            completed = (datetime.combine(due, dtime(3, 0), tzinfo=UTC) if status == "DONE" else None)
            records.append((town.municipality_id, rid, registration_id, visit_id, purpose, due,
                            rng.choice(["PHONE_CALL", "PHONE_CALL", "SMS", "VISIT", "POST"]), status, outcome,
                            completed, self.now))

        for reg_id, rid, day in registrations["attended_class"]:
            if rng.random() < 0.12:
                add("AFTER_CLASS", rid, day, reg_id, None)
        for reg_id, rid, day in registrations["no_show"]:
            if rng.random() < 0.1:
                add("MANUAL", rid, day, reg_id, None)
        for reg_id, rid, day in registrations["waitlisted"]:
            if rng.random() < 0.3:
                add("SEAT_AVAILABLE", rid, day, reg_id, None, done_share=0.9)
        for reg_id, rid, day in registrations["cancelled"]:
            if rng.random() < 0.05:  # the registration was cancelled afterwards: not in the report
                add("SEAT_AVAILABLE", rid, day, reg_id, None, done_share=0.9)
        # schedule_follow_up may name both a registration and a visit of the resident: counted
        # once, for the registration when that one is in the report, else for the visit.
        for key in ("attended_class", "cancelled"):
            for reg_id, rid, day in registrations[key]:
                if rng.random() < 0.01 and visits_of.get(rid):
                    add("MANUAL", rid, day, reg_id, rng.choice(visits_of[rid]))
        for visit_id, rid, day in visits:
            add("AFTER_VISIT", rid, day, None, visit_id)
        for _ in range(max(1, len(resident_ids) // 100)):  # about nothing in particular: not in the report
            add("MANUAL", rng.choice(resident_ids), self.date_from + timedelta(days=rng.randrange(365)), None, None)
        self.stats.build_seconds += time.perf_counter() - started
        await self.copy("follow_up", ["municipality_id", "resident_id", "registration_id", "visit_id", "purpose",
                                      "due_on", "channel", "status", "outcome", "completed_at", "created_at"],
                        records)

    async def town(self, town: Town) -> None:
        resident_ids, cumulative, births = await self.residents(town)
        n_sessions = town.sessions or max(20, math.ceil(town.registrations / 20))
        venues = await self.venues(town, town.venues or max(5, math.ceil(n_sessions / 1000)))
        sessions = await self.sessions(town, venues, n_sessions)
        town.resident_ids, town.venue_ids = resident_ids, [v for v, _ in venues]
        town.session_rows = sessions
        registrations = await self.registrations(town, sessions, resident_ids, cumulative)
        needing, visits_of = await self.visits(town, sessions, resident_ids, cumulative, births)
        await self.follow_ups(town, registrations, needing, visits_of, resident_ids)


def _cumulate(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


async def describe_data(conn: asyncpg.Connection, municipality_id: int) -> list[str]:
    lines = []
    one = await conn.fetchrow(
        "SELECT count(*) AS n, count(birth_date) AS bd, count(*) FILTER (WHERE birth_date IS NULL "
        "AND birth_year IS NOT NULL) AS by FROM resident WHERE municipality_id = $1", municipality_id)
    lines.append(f"residents {one['n']:,} (birth date {one['bd']:,}, birth year only {one['by']:,}, "
                 f"unknown {one['n'] - one['bd'] - one['by']:,})")
    one = await conn.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE kind = 'CLASS') AS classes, "
        "count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled FROM session WHERE municipality_id = $1",
        municipality_id)
    venues = await conn.fetchval("SELECT count(*) FROM venue WHERE municipality_id = $1", municipality_id)
    lines.append(f"venues {venues:,}; sessions {one['n']:,} (classes {one['classes']:,}, help sessions "
                 f"{one['n'] - one['classes']:,}, cancelled {one['cancelled']:,})")
    rows = await conn.fetch("SELECT status, attendance, count(*) AS n FROM registration WHERE municipality_id = $1 "
                            "GROUP BY 1, 2 ORDER BY 1, 2", municipality_id)
    total = sum(r["n"] for r in rows)
    parts = ", ".join(f"{r['status']}/{r['attendance'] or '-'} {r['n']:,}" for r in rows)
    lines.append(f"registrations {total:,} ({parts})")
    one = await conn.fetchrow("SELECT count(*) AS n, count(*) FILTER (WHERE resident_id IS NULL) AS anon "
                              "FROM visit WHERE municipality_id = $1", municipality_id)
    lines.append(f"visits {one['n']:,} (anonymous {one['anon']:,})")
    rows = await conn.fetch("SELECT status, count(*) AS n FROM follow_up WHERE municipality_id = $1 GROUP BY 1 "
                            "ORDER BY 1", municipality_id)
    lines.append("follow-ups " + ", ".join(f"{r['status']} {r['n']:,}" for r in rows))
    return lines


# --- timing and checking -----------------------------------------------------------------------

def service_buckets(report: Any, band_count: int) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for index, row in enumerate(report.rows):
        if index < band_count and row.is_band:
            key = index
        elif row.label == UNKNOWN_LABEL:
            key = UNKNOWN
        elif row.label == OUTSIDE_LABEL:
            key = OUTSIDE
        else:
            raise RuntimeError(f"unexpected report row {row.label!r}")
        out[key] = {name: int(getattr(row, name) or 0) for name in COUNTS}
    return out


def hand_buckets(rows: list[asyncpg.Record]) -> dict[int, dict[str, int]]:
    return {r["bucket"]: {name: int(r[name]) for name in COUNTS} for r in rows}


async def cross_check(conn: asyncpg.Connection, hand_conn: asyncpg.Connection, town: Town, date_from: date,
                      date_to: date, repeat: int) -> dict[str, Any]:
    """participation_report() for a COORDINATOR over the year against HAND_SQL, runs
    alternating after one warm-up each: their median times and every band where they differ.
    `hand_conn` runs with jit=off and custom plans (JIT would spend seconds compiling the
    hand-written query, its generic plan is twice as slow)."""
    survey_id = await conn.fetchval("SELECT s.id FROM survey s WHERE s.municipality_id = $1 AND s.key = $2",
                                    town.municipality_id, SURVEY_KEY)
    bands = await conn.fetch("SELECT position, label FROM survey_band WHERE survey_id = $1 ORDER BY position",
                             survey_id)
    actor = Actor(municipality_id=town.municipality_id, role=Role.COORDINATOR, email="bench@example.invalid",
                  timezone=town.timezone)
    report_filter = ReportFilter(date_from=date_from, date_to=date_to)
    hand_args = [survey_id, town.municipality_id, town.timezone, date_from, date_to]
    service_times: list[float] = []
    hand_times: list[float] = []
    report = hand_rows = None
    for attempt in range(repeat + 1):
        t0 = time.perf_counter()
        report = await participation_report(actor=actor, survey_id=survey_id, metric=METRIC,
                                            report_filter=report_filter)
        t1 = time.perf_counter()
        hand_rows = await hand_conn.fetch(HAND_SQL, *hand_args)
        t2 = time.perf_counter()
        if attempt:
            service_times.append(t1 - t0)
            hand_times.append(t2 - t1)
    assert report is not None and hand_rows is not None
    service, hand = service_buckets(report, len(bands)), hand_buckets(hand_rows)
    labels = {b["position"]: b["label"] for b in bands} | {UNKNOWN: UNKNOWN_LABEL, OUTSIDE: OUTSIDE_LABEL}
    zero = dict.fromkeys(COUNTS, 0)
    mismatches = [f"{labels.get(key, key)} {name}: service {service.get(key, zero)[name]:,}, hand-written "
                  f"{hand.get(key, zero)[name]:,}"
                  for key in sorted(set(service) | set(hand)) for name in COUNTS
                  if service.get(key, zero)[name] != hand.get(key, zero)[name]]
    total = report.total
    return {"survey_id": survey_id, "service_ms": statistics.median(service_times) * 1000,
            "hand_written_ms": statistics.median(hand_times) * 1000,
            "ratio": statistics.median(service_times) / statistics.median(hand_times),
            "participants": int(total.participants or 0), "registrations": int(total.registrations or 0),
            "mismatches": mismatches}
