"""Reference data: the municipalities and the course catalogue, from seeds/*.yaml.

`divide-support seed` (and `serve` in embedded mode, on every start) calls
load_reference_data(), so loading is an idempotent upsert: municipalities by
code, courses by (municipality, title). Editing a YAML file and seeding again
updates the rows; nothing is ever duplicated, and rows the YAML no longer
mentions (a course a coordinator created, a renamed course that sessions still
point at) are left alone.

The YAML files live in the repository's seeds/ folder, installed as the package
divide_support.seeds, and are read with importlib.resources so an installed
wheel finds them too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib.resources import files
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.core.errors import DomainError
from divide_support.people import phones
from divide_support.people.models import Device
from divide_support.reports.service import load_seed_surveys, seed_documents
from divide_support.reports.surveys import parse_survey
from divide_support.scheduling.models import Course, CourseLevel, CourseTopic
from divide_support.scheduling.service import MAX_SESSION_HOURS

SEEDS_PACKAGE = "divide_support.seeds"
MUNICIPALITIES_FILE = "municipalities.yaml"
COURSES_FILE = "courses.yaml"

# Same bounds as scheduling.service.create_course, so a seeded course could have been typed in.
MIN_COURSE_MINUTES = 15
MAX_COURSE_MINUTES = MAX_SESSION_HOURS * 60

_CODE = re.compile(r"^\d{6}$")

E = TypeVar("E", CourseTopic, CourseLevel, Device)


@dataclass(frozen=True)
class MunicipalitySeed:
    code: str
    name: str
    timezone: str = "Asia/Tokyo"
    phone: str | None = None
    follow_up_days: int = 14
    sms_quiet_from_minute: int = 21 * 60
    sms_quiet_until_minute: int = 8 * 60
    sms_per_second: float = 1.0
    call_from_minute: int = 10 * 60
    call_until_minute: int = 19 * 60
    calls_per_minute: float = 6.0
    calls_on_closed_days: bool = False
    retention_years: int = 3
    erasure_keeps_birth_year: bool = False


_QUIET = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class CourseSeed:
    title: str
    topic: CourseTopic
    level: CourseLevel
    duration_minutes: int
    description: str | None = None
    target_device: Device | None = None


# --- reading and validating ----------------------------------------------------------------

class _Entry:
    """Validation helpers for one YAML entry; every error names the file and the entry."""

    def __init__(self, source: str, where: str, raw: object, allowed: tuple[str, ...]) -> None:
        self.source = source
        self.where = where
        if not isinstance(raw, Mapping):
            self.fail(f"expected a mapping of fields, got {type(raw).__name__}")
        self.raw: Mapping[str, Any] = raw
        unknown = sorted(str(k) for k in raw if k not in allowed)
        if unknown:
            self.fail(f"unknown field(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})")

    def fail(self, message: str) -> NoReturn:
        raise ValueError(f"{self.source}: {self.where}: {message}")

    def text(self, key: str, max_length: int, *, required: bool) -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.fail(f"'{key}' is required")
            return None
        if not isinstance(value, str):
            self.fail(f"'{key}' must be text, got {type(value).__name__} {value!r}")
        value = value.strip()
        if not value:
            if required:
                self.fail(f"'{key}' must not be empty")
            return None
        if len(value) > max_length:
            self.fail(f"'{key}' is longer than {max_length} characters")
        return value

    def integer(self, key: str, low: int, high: int, *, default: int | None = None) -> int:
        value = self.raw.get(key, default)
        # bool is an int in Python; `yes` in YAML must not pass as 1.
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"'{key}' must be a whole number, got {value!r}")
        if not low <= value <= high:
            self.fail(f"'{key}' must be between {low} and {high}, got {value}")
        return value

    def choice(self, key: str, enum: type[E], *, required: bool) -> E | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.fail(f"'{key}' is required (one of {', '.join(e.value for e in enum)})")
            return None
        try:
            return enum(value)
        except ValueError:
            self.fail(f"'{key}' must be one of {', '.join(e.value for e in enum)}, got {value!r}")


def _entries(data: object, source: str, key: str) -> list[object]:
    if not isinstance(data, Mapping) or set(data) != {key}:
        raise ValueError(f"{source}: the file must hold one top-level key '{key}' with a list")
    entries = data[key]
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{source}: '{key}' must be a non-empty list")
    return entries


def parse_municipalities(data: object, source: str = MUNICIPALITIES_FILE) -> list[MunicipalitySeed]:
    allowed = ("code", "name", "timezone", "phone", "follow_up_days", "sms_quiet_hours",
               "sms_per_second", "call_hours", "calls_per_minute", "calls_on_closed_days",
               "retention_years", "erasure_keeps_birth_year")
    seeds: list[MunicipalitySeed] = []
    seen: set[str] = set()
    for index, raw in enumerate(_entries(data, source, "municipalities")):
        label = f"municipalities[{index}]"
        if isinstance(raw, Mapping) and raw.get("code") is not None:
            label += f" (code {raw.get('code')!r})"
        entry = _Entry(source, label, raw, allowed)
        code = raw.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            entry.fail("'code' must be quoted (\"092142\"): unquoted, YAML reads a number and "
                       "loses leading zeros")
        if not isinstance(code, str) or not _CODE.match(code):
            entry.fail(f"'code' must be the 6-digit 全国地方公共団体コード, got {code!r}")
        if code in seen:
            entry.fail(f"code {code} appears twice")
        seen.add(code)
        name = entry.text("name", 100, required=True)
        timezone = entry.text("timezone", 64, required=False) or "Asia/Tokyo"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            entry.fail(f"'timezone' {timezone!r} is not an IANA time zone")
        phone = entry.text("phone", 32, required=False)
        if phone is not None:
            try:
                phones.parse_any(phone, "phone")
            except DomainError:
                entry.fail(f"'phone' {phone!r} is not a valid Japanese phone number")
        follow_up_days = entry.integer("follow_up_days", 1, 365, default=14)
        quiet = entry.text("sms_quiet_hours", 11, required=False) or "21:00-08:00"
        matched = _QUIET.match(quiet)
        if not matched:
            entry.fail(f"'sms_quiet_hours' must look like \"21:00-08:00\", got {quiet!r}")
        h1, m1, h2, m2 = (int(g) for g in matched.groups())
        rate = entry.raw.get("sms_per_second", 1)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 100:
            entry.fail(f"'sms_per_second' must be a number from 0 (no limit) to 100, got {rate!r}")
        call_hours = entry.text("call_hours", 11, required=False) or "10:00-19:00"
        call_matched = _QUIET.match(call_hours)
        if not call_matched:
            entry.fail(f"'call_hours' must look like \"10:00-19:00\", got {call_hours!r}")
        c1, c2, c3, c4 = (int(g) for g in call_matched.groups())
        if c1 * 60 + c2 >= c3 * 60 + c4:
            entry.fail(f"'call_hours' must end after it starts (a daytime window), got {call_hours!r}")
        call_rate = entry.raw.get("calls_per_minute", 6)
        if isinstance(call_rate, bool) or not isinstance(call_rate, int | float) \
                or not 0 <= call_rate <= 60:
            entry.fail(f"'calls_per_minute' must be a number from 0 (no limit) to 60, got {call_rate!r}")
        closed_days = entry.raw.get("calls_on_closed_days", False)
        if not isinstance(closed_days, bool):
            entry.fail(f"'calls_on_closed_days' must be true or false, got {closed_days!r}")
        retention_years = entry.integer("retention_years", 1, 30, default=3)
        keeps_year = entry.raw.get("erasure_keeps_birth_year", False)
        if not isinstance(keeps_year, bool):
            entry.fail(f"'erasure_keeps_birth_year' must be true or false, got {keeps_year!r}")
        assert name is not None
        seeds.append(MunicipalitySeed(code=code, name=name, timezone=timezone, phone=phone,
                                      follow_up_days=follow_up_days,
                                      sms_quiet_from_minute=h1 * 60 + m1,
                                      sms_quiet_until_minute=h2 * 60 + m2,
                                      sms_per_second=float(rate),
                                      call_from_minute=c1 * 60 + c2,
                                      call_until_minute=c3 * 60 + c4,
                                      calls_per_minute=float(call_rate),
                                      calls_on_closed_days=closed_days,
                                      retention_years=retention_years,
                                      erasure_keeps_birth_year=keeps_year))
    return seeds


def parse_courses(data: object, source: str = COURSES_FILE) -> list[CourseSeed]:
    allowed = tuple(f.name for f in fields(CourseSeed))
    seeds: list[CourseSeed] = []
    seen: set[str] = set()
    for index, raw in enumerate(_entries(data, source, "courses")):
        label = f"courses[{index}]"
        if isinstance(raw, Mapping) and isinstance(raw.get("title"), str):
            label += f" ({raw['title'].strip()!r})"
        entry = _Entry(source, label, raw, allowed)
        title = entry.text("title", 200, required=True)
        assert title is not None
        if title in seen:
            entry.fail(f"title {title!r} appears twice")
        seen.add(title)
        topic = entry.choice("topic", CourseTopic, required=True)
        level = entry.choice("level", CourseLevel, required=True)
        assert topic is not None and level is not None
        seeds.append(CourseSeed(
            title=title,
            topic=topic,
            level=level,
            duration_minutes=entry.integer("duration_minutes", MIN_COURSE_MINUTES,
                                           MAX_COURSE_MINUTES),
            description=entry.text("description", 2000, required=False),
            target_device=entry.choice("target_device", Device, required=False),
        ))
    return seeds


def read_seed_file(name: str) -> object:
    """The parsed YAML of one file in divide_support.seeds."""
    try:
        text = files(SEEDS_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ValueError(f"{name}: seed file not found in {SEEDS_PACKAGE}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{name}: not valid YAML: {exc}") from exc


def municipality_seeds() -> list[MunicipalitySeed]:
    return parse_municipalities(read_seed_file(MUNICIPALITIES_FILE))


def course_seeds() -> list[CourseSeed]:
    return parse_courses(read_seed_file(COURSES_FILE))


# --- loading -------------------------------------------------------------------------------

def _changes(row: object, wanted: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in wanted.items() if getattr(row, key) != value}


async def _upsert_municipality(seed: MunicipalitySeed) -> Municipality:
    wanted = {"name": seed.name, "timezone": seed.timezone, "phone": seed.phone,
              "follow_up_days": seed.follow_up_days,
              "sms_quiet_from_minute": seed.sms_quiet_from_minute,
              "sms_quiet_until_minute": seed.sms_quiet_until_minute,
              "sms_per_second": seed.sms_per_second,
              "call_from_minute": seed.call_from_minute,
              "call_until_minute": seed.call_until_minute,
              "calls_per_minute": seed.calls_per_minute,
              "calls_on_closed_days": seed.calls_on_closed_days,
              "retention_years": seed.retention_years,
              "erasure_keeps_birth_year": seed.erasure_keeps_birth_year}
    row = await Municipality.filter(code=seed.code).select_for_update().first()
    if row is None:
        return await Municipality.create(code=seed.code, **wanted)
    changed = _changes(row, wanted)
    if changed:
        for key, value in changed.items():
            setattr(row, key, value)
        await row.save(update_fields=list(changed))
    return row


async def _upsert_courses(municipality: Municipality, seeds: list[CourseSeed]) -> None:
    existing = {
        course.title: course
        for course in await Course.filter(municipality_id=municipality.id).select_for_update()
    }
    for seed in seeds:
        wanted = {"topic": seed.topic, "level": seed.level, "description": seed.description,
                  "duration_minutes": seed.duration_minutes, "target_device": seed.target_device}
        row = existing.get(seed.title)
        if row is None:
            await Course.create(municipality_id=municipality.id, title=seed.title, **wanted)
            continue
        changed = _changes(row, wanted)
        if changed:
            for key, value in changed.items():
                setattr(row, key, value)
            await row.save(update_fields=list(changed))


async def load_reference_data() -> dict[str, int]:
    """Upsert the municipalities and, for each, the course catalogue; one transaction.

    Validates the files before touching the database (ValueError naming the file and
    entry). Tortoise must already be initialised. Returns how many municipalities, courses
    and surveys the files describe (all of them now present), e.g. {"municipalities": 4,
    "courses": 48, "surveys": 2}.
    """
    municipalities = municipality_seeds()
    courses = course_seeds()
    for name, text in seed_documents():  # a broken survey file stops the load before it starts
        try:
            parse_survey(text)
        except DomainError as error:
            raise ValueError(f"seeds/surveys/{name}: {error.message}") from error
    async with in_transaction():
        for seed in municipalities:
            municipality = await _upsert_municipality(seed)
            await _upsert_courses(municipality, courses)
        surveys = await load_seed_surveys()
    return {"municipalities": len(municipalities),
            "courses": len(municipalities) * len(courses), "surveys": surveys}
