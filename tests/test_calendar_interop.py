"""The calendar files read by independent implementations, as calendar apps read them:
vobject, recurring-ical-events, ical.js (Thunderbird's parser, under node), libical's iTIP
restriction check (Evolution's library, through PyGObject) and a real Radicale CalDAV server.

Every file is fetched over HTTP like an app does. What each reader gets must be the session's
times in Asia/Tokyo wall-clock (+09:00, never floating), the METHOD, UID, SEQUENCE and STATUS
the product means. Tools that are missing (node/npm or the npm registry, libical's GObject
bindings, Radicale) skip with the reason.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import factories
import httpx
import pytest
from factories import TOKYO
from node_tools import npm_folder

from divide_support.core.actor import Role
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import AssignmentRole, Session, SessionKind

NINE_HOURS = timedelta(hours=9)
KINDS = ("seat_request", "seat_tentative", "seat_cancel", "seat_cancel_session", "duty_request",
         "duty_cancel", "supporter_feed", "venue_feed", "municipality_feed")


# --- what every reader must get --------------------------------------------------------------

@dataclass(frozen=True)
class Expected:
    """One VEVENT as the product means it."""
    starts: datetime
    ends: datetime
    sequence: int
    status: str


@dataclass(frozen=True)
class Reading:
    """One VEVENT as a reader got it (aware datetimes in the zone the reader resolved)."""
    uid: str
    starts: datetime
    ends: datetime
    sequence: int
    status: str


@dataclass
class IcsFile:
    kind: str
    path: str  # the URL path it was fetched from
    method: str
    body: bytes
    events: dict[str, Expected]  # by UID


@dataclass
class Scenario:
    """平塚市, one venue, three sessions, seats and duties, and every file fetched over HTTP.

    - class_session: a class 10:00–12:00 Tokyo, capacity 2: 山田 and 佐藤 seated, 佐藤 gives
      the seat up (a CANCEL), so 鈴木 moves up from the waitlist and 高橋 stays waitlisted
      (TENTATIVE); supporter 田中 leads it.
    - help_session: a help session 08:30–10:30 Tokyo (the UTC date is the day before), 田中 leads.
    - cancelled_session: a class 13:00–15:00 Tokyo with 伊藤 seated and 田中 leading, then
      cancelled: the seat and the duty become CANCELs, the feeds mark it CANCELLED.
    """
    town: object
    client: httpx.AsyncClient
    class_session: object
    help_session: object
    cancelled_session: object
    seated: object  # 山田's registration (class_session, CONFIRMED)
    given_up: object  # 佐藤's (class_session, CANCELLED)
    waiting: object  # 高橋's (class_session, WAITLISTED)
    duty: object  # 田中 on class_session
    supporter: object
    files: dict[str, IcsFile] = field(default_factory=dict)
    given_up_request: bytes = b""  # 佐藤's seat file while it still held
    feed_uids: dict[str, dict[int, str]] = field(default_factory=dict)  # feed -> session id -> UID

    def uid(self, kind: str, pk: int) -> str:
        return f"{kind}-{pk}.{self.town.municipality.code}@divide-support"


async def _fetch(client: httpx.AsyncClient, path: str, token: str | None = None) -> tuple[str, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code, response.text[:200])
    content_type = response.headers["content-type"]
    assert content_type.startswith("text/calendar"), content_type
    method = next((p.split("=", 1)[1] for p in content_type.split("; ") if p.startswith("method=")),
                  "PUBLISH")
    return method, response.content


def _span(session) -> tuple[datetime, datetime]:
    return session.starts_at, session.ends_at


async def _build(town, client: httpx.AsyncClient) -> Scenario:
    actor = town.coordinator
    place = await factories.venue(actor)
    class_session = await factories.session(actor, factories.at(days=5, hour=10), capacity=2,
                                            venue_obj=place)
    help_session = await factories.session(actor, factories.at(days=7, hour=8, minutes=30),
                                           capacity=None, kind=SessionKind.HELP_SESSION,
                                           venue_obj=place)
    cancelled_session = await factories.session(actor, factories.at(days=6, hour=13), venue_obj=place)
    people = {name: await factories.resident(actor, name) for name in ("山田", "佐藤", "鈴木", "高橋", "伊藤")}
    registrations = {name: await scheduling.register(actor=actor, session_id=class_session.id,
                                                     resident_id=people[name].id)
                     for name in ("山田", "佐藤", "鈴木", "高橋")}
    doomed_seat = await scheduling.register(actor=actor, session_id=cancelled_session.id,
                                            resident_id=people["伊藤"].id)
    supporter = await factories.supporter(actor, name="田中 一郎")
    duties = {s.id: await scheduling.assign_supporter(actor=actor, session_id=s.id,
                                                      supporter_id=supporter.id,
                                                      role=AssignmentRole.LEAD)
              for s in (class_session, help_session, cancelled_session)}
    scenario = Scenario(town=town, client=client, class_session=class_session,
                        help_session=help_session, cancelled_session=cancelled_session,
                        seated=registrations["山田"], given_up=registrations["佐藤"],
                        waiting=registrations["高橋"], duty=duties[class_session.id],
                        supporter=supporter)
    given_up_path = f"/calendar/registrations/{scenario.given_up.calendar_token}.ics"
    _, scenario.given_up_request = await _fetch(client, given_up_path)
    await scheduling.cancel_registration(actor=actor, registration_id=scenario.given_up.id)
    await scheduling.cancel_session(actor=actor, session_id=cancelled_session.id)
    class_session = scenario.class_session = await Session.get(id=class_session.id)
    cancelled_session = scenario.cancelled_session = await Session.get(id=cancelled_session.id)
    assert cancelled_session.sequence == 1 and class_session.sequence == 0

    uid = scenario.uid
    held = Expected(*_span(class_session), 0, "CONFIRMED")
    called_off = Expected(*_span(cancelled_session), 1, "CANCELLED")
    wanted: dict[str, tuple[str, str, dict[str, Expected]]] = {
        "seat_request": ("REQUEST", f"/calendar/registrations/{scenario.seated.calendar_token}.ics",
                         {uid("seat", scenario.seated.id): held}),
        "seat_tentative": ("REQUEST", f"/calendar/registrations/{scenario.waiting.calendar_token}.ics",
                           {uid("seat", scenario.waiting.id): Expected(*_span(class_session), 0,
                                                                       "TENTATIVE")}),
        # a seat given up: above the REQUEST (SEQUENCE 0) that went out for it
        "seat_cancel": ("CANCEL", given_up_path,
                        {uid("seat", scenario.given_up.id): Expected(*_span(class_session), 1,
                                                                     "CANCELLED")}),
        "seat_cancel_session": ("CANCEL", f"/calendar/registrations/{doomed_seat.calendar_token}.ics",
                                {uid("seat", doomed_seat.id): called_off}),
        "duty_request": ("REQUEST", f"/calendar/assignments/{scenario.duty.calendar_token}.ics",
                         {uid("duty", scenario.duty.id): held}),
        "duty_cancel": ("CANCEL",
                        f"/calendar/assignments/{duties[cancelled_session.id].calendar_token}.ics",
                        {uid("duty", duties[cancelled_session.id].id): called_off}),
        "supporter_feed": ("PUBLISH", f"/calendar/supporters/{supporter.calendar_token}.ics", {
            uid("duty", duties[class_session.id].id): held,
            uid("duty", duties[help_session.id].id): Expected(*_span(help_session), 0, "CONFIRMED"),
            uid("duty", duties[cancelled_session.id].id): called_off}),
    }
    schedule = {uid("session", class_session.id): held,
                uid("session", help_session.id): Expected(*_span(help_session), 0, "CONFIRMED"),
                uid("session", cancelled_session.id): called_off}
    sessions = (class_session, help_session, cancelled_session)
    scenario.feed_uids = {"supporter_feed": {x.id: uid("duty", duties[x.id].id) for x in sessions},
                          "venue_feed": {x.id: uid("session", x.id) for x in sessions},
                          "municipality_feed": {x.id: uid("session", x.id) for x in sessions}}
    wanted["venue_feed"] = ("PUBLISH", f"/calendar/venues/{place.id}.ics", schedule)
    wanted["municipality_feed"] = ("PUBLISH", "/calendar/municipality.ics", dict(schedule))
    for kind, (method, path, events) in wanted.items():
        scenario.files[kind] = await _refetch(scenario, kind, path, method, events)
    assert tuple(scenario.files) == KINDS
    return scenario


async def _refetch(scenario: Scenario, kind: str, path: str, method: str,
                   events: dict[str, Expected]) -> IcsFile:
    token = scenario.town.tokens[Role.COORDINATOR] if kind == "municipality_feed" else None
    served, body = await _fetch(scenario.client, path, token)
    assert served == method, (kind, served)
    return IcsFile(kind, path, method, body, events)


@pytest.fixture
async def scenario(town, client) -> Scenario:
    return await _build(town, client)


def _wall(moment: datetime) -> datetime:
    return moment.astimezone(TOKYO).replace(tzinfo=None)


def _assert_tokyo(label: str, got: datetime, expected: datetime) -> None:
    assert isinstance(got, datetime), f"{label}: {got!r} is not a date-time"
    assert got.tzinfo is not None and got.utcoffset() is not None, f"{label}: floating time {got!r}"
    assert got.utcoffset() == NINE_HOURS, f"{label}: {got!r} is not at +09:00"
    assert got == expected, f"{label}: {got.isoformat()} is not {expected.astimezone(TOKYO).isoformat()}"
    assert got.replace(tzinfo=None) == _wall(expected), f"{label}: wall-clock {got!r}"


def _assert_reads(tool: str, file: IcsFile, method: str | None, readings: list[Reading]) -> None:
    label = f"{tool}, {file.kind}"
    if method is not None:
        assert method == file.method, f"{label}: METHOD {method!r}"
    uids = [r.uid for r in readings]
    assert sorted(uids) == sorted(file.events), f"{label}: UIDs {uids} not {list(file.events)}"
    for reading in readings:
        expected = file.events[reading.uid]
        where = f"{label}, {reading.uid}"
        _assert_tokyo(f"{where} DTSTART", reading.starts, expected.starts)
        _assert_tokyo(f"{where} DTEND", reading.ends, expected.ends)
        assert reading.sequence == expected.sequence, f"{where}: SEQUENCE {reading.sequence}"
        assert reading.status == expected.status, f"{where}: STATUS {reading.status}"


def _texts(body: bytes) -> dict[str, tuple[str, str, str]]:
    """SUMMARY, LOCATION and DESCRIPTION by UID as the producing library meant them: every
    reader must get the same Japanese text back, however the long lines were folded."""
    from icalendar import Calendar

    return {str(e["UID"]): (str(e["SUMMARY"]), str(e["LOCATION"]), str(e["DESCRIPTION"]))
            for e in Calendar.from_ical(body).walk("VEVENT")}


def _aware(local: datetime, unix: float) -> datetime:
    """A reader's wall-clock time and instant as one aware datetime (offset = their gap)."""
    utc = datetime.fromtimestamp(unix, UTC).replace(tzinfo=None)
    return local.replace(tzinfo=timezone(local - utc))


# --- vobject ---------------------------------------------------------------------------------

def _vobject_texts(body: bytes) -> dict[str, tuple[str, str, str]]:
    import vobject

    return {e.uid.value: (e.summary.value, e.location.value, e.description.value)
            for e in getattr(vobject.readOne(body.decode("utf-8")), "vevent_list", [])}


def _vobject(body: bytes) -> tuple[str | None, list[Reading]]:
    import vobject

    calendar = vobject.readOne(body.decode("utf-8"))
    method = calendar.method.value if hasattr(calendar, "method") else None
    readings = [Reading(uid=event.uid.value, starts=event.dtstart.value, ends=event.dtend.value,
                        sequence=int(event.sequence.value), status=event.status.value)
                for event in getattr(calendar, "vevent_list", [])]
    return method, readings


async def test_vobject_reads_every_file_in_tokyo_time(scenario):
    for file in scenario.files.values():
        method, readings = _vobject(file.body)
        _assert_reads("vobject", file, method, readings)
        for reading in readings:  # the VTIMEZONE in the file was used, not a guess
            assert reading.starts.tzname() == "JST", (file.kind, reading.starts.tzname())
        assert _vobject_texts(file.body) == _texts(file.body), file.kind


async def test_a_given_up_seat_is_a_cancel_above_its_last_request(scenario):
    before_method, [before] = _vobject(scenario.given_up_request)
    method, [after] = _vobject(scenario.files["seat_cancel"].body)
    assert (before_method, before.status) == ("REQUEST", "CONFIRMED")
    assert method == "CANCEL" and after.status == "CANCELLED"
    assert after.uid == before.uid and after.sequence > before.sequence
    assert (after.starts, after.ends) == (before.starts, before.ends)


# --- recurring-ical-events -------------------------------------------------------------------

async def test_recurring_ical_events_finds_the_sessions_at_tokyo_times(scenario):
    import recurring_ical_events
    from icalendar import Calendar

    s = scenario
    every = {s.class_session.id, s.help_session.id, s.cancelled_session.id}
    for kind in ("supporter_feed", "venue_feed", "municipality_feed"):
        file = s.files[kind]
        calendar = Calendar.from_ical(file.body)
        uid_of = s.feed_uids[kind]

        def found(start, end, calendar=calendar):
            return {str(e["UID"]): e for e in recurring_ical_events.of(calendar).between(start, end)}

        def ids(events, uid_of=uid_of):
            return {sid for sid, u in uid_of.items() if u in events}

        now = datetime.now(UTC)
        everything = found(now, now + timedelta(days=30))
        assert ids(everything) == every, kind
        readings = [Reading(uid, e.decoded("DTSTART"), e.decoded("DTEND"), int(e["SEQUENCE"]),
                            str(e["STATUS"])) for uid, e in everything.items()]
        _assert_reads("recurring-ical-events", file, None, readings)

        help_start = s.help_session.starts_at
        tokyo_day = _wall(help_start).date()
        assert help_start.astimezone(UTC).date() == tokyo_day - timedelta(days=1)
        # a day is a Tokyo day: the 08:30 help session is on its Tokyo date, not the UTC one
        assert ids(found(tokyo_day, tokyo_day + timedelta(days=1))) == {s.help_session.id}, kind
        assert s.help_session.id not in ids(found(tokyo_day - timedelta(days=1), tokyo_day)), kind
        # wall-clock windows are Tokyo wall-clock
        class_start = _wall(s.class_session.starts_at)
        window = found(class_start + timedelta(minutes=30), class_start + timedelta(minutes=45))
        assert ids(window) == {s.class_session.id}, kind
        assert not ids(found(class_start - timedelta(hours=2), class_start)), kind
        # and an instant is an instant: 10:00 Tokyo is 01:00 UTC, and 10:00 UTC is nothing
        utc_start = s.class_session.starts_at.astimezone(UTC)
        assert ids(found(utc_start, utc_start + timedelta(minutes=1))) == {s.class_session.id}, kind
        misread = class_start.replace(tzinfo=UTC)
        assert not ids(found(misread, misread + timedelta(hours=1))), kind


# --- ical.js under node ----------------------------------------------------------------------

NPM_PACKAGES = ["ical.js@2"]
NODE_TIMEOUT = 60

ICALJS_READER = """\
// Reads .ics files as Thunderbird's ical.js does and prints what a reader gets as JSON.
import { readFileSync } from 'node:fs';
import ICAL from 'ical.js';

function when(time) {
  const zone = time.zone;
  return {
    local: time.toString(),
    tzid: zone ? zone.tzid : null,
    floating: !zone || zone === ICAL.Timezone.localTimezone,
    isDate: time.isDate,
    utcOffset: time.utcOffset(),
    unix: time.toUnixTime(),
    utc: time.convertToZone(ICAL.Timezone.utcTimezone).toString(),
  };
}

const out = {};
for (const path of process.argv.slice(2)) {
  const calendar = new ICAL.Component(ICAL.parse(readFileSync(path, 'utf8')));
  const zones = [];
  for (const vtimezone of calendar.getAllSubcomponents('vtimezone')) {
    const zone = new ICAL.Timezone(vtimezone);
    ICAL.TimezoneService.register(zone);
    zones.push(zone.tzid);
  }
  const events = calendar.getAllSubcomponents('vevent').map((vevent) => {
    const event = new ICAL.Event(vevent);
    return {
      uid: event.uid,
      sequence: event.sequence,
      status: vevent.getFirstPropertyValue('status'),
      texts: [event.summary, event.location, event.description],
      start: when(event.startDate),
      end: when(event.endDate),
      stamp: when(vevent.getFirstPropertyValue('dtstamp')),
      organizer: event.organizer,
      attendees: event.attendees.map((a) => a.getFirstValue()),
      alarms: vevent.getAllSubcomponents('valarm').length,
    };
  });
  out[path] = { method: calendar.getFirstPropertyValue('method'), zones, events };
}
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="session")
def icaljs_reader(tmp_path_factory) -> tuple[str, Path]:
    """A temp folder with ical.js installed (once per test session) and the reader script."""
    return npm_folder(tmp_path_factory, "icaljs", NPM_PACKAGES, "read.mjs", ICALJS_READER,
                      "to read the files with ical.js")


def _write(folder: Path, files: dict[str, bytes]) -> dict[str, Path]:
    paths = {}
    for kind, body in files.items():
        paths[kind] = folder / f"{kind}.ics"
        paths[kind].write_bytes(body)
    return paths


def _run_json(command: list[str], cwd: Path | None = None) -> dict:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=NODE_TIMEOUT,
                          check=False)
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


def _icaljs_time(label: str, got: dict) -> datetime:
    assert not got["floating"] and not got["isDate"], f"{label}: floating or all-day {got}"
    assert got["tzid"] == "Asia/Tokyo", f"{label}: zone {got['tzid']}"
    assert got["utcOffset"] == 9 * 3600, f"{label}: utcOffset {got['utcOffset']}"
    local = datetime.fromisoformat(got["local"])
    assert got["utc"] == (local - NINE_HOURS).strftime("%Y-%m-%dT%H:%M:%SZ"), f"{label}: {got}"
    return _aware(local, got["unix"])


async def test_ical_js_reads_every_file_in_tokyo_time(scenario, icaljs_reader, tmp_path):
    node, reader = icaljs_reader
    paths = _write(tmp_path, {kind: f.body for kind, f in scenario.files.items()})
    out = await asyncio.to_thread(_run_json, [node, str(reader), *map(str, paths.values())],
                                  reader.parent)
    for kind, file in scenario.files.items():
        got = out[str(paths[kind])]
        assert got["zones"] == ["Asia/Tokyo"], (kind, got["zones"])
        readings = []
        for event in got["events"]:
            label = f"ical.js, {kind}, {event['uid']}"
            readings.append(Reading(event["uid"], _icaljs_time(f"{label} DTSTART", event["start"]),
                                    _icaljs_time(f"{label} DTEND", event["end"]),
                                    event["sequence"], event["status"]))
            assert event["stamp"]["tzid"] == "UTC" and not event["stamp"]["floating"], label
            assert event["organizer"] == "tel:+81463211111", label
            assert len(event["attendees"]) == (1 if file.method != "PUBLISH" else 0), label
            assert event["alarms"] == (1 if event["status"] != "CANCELLED" else 0), label
            assert tuple(event["texts"]) == _texts(file.body)[event["uid"]], label
        _assert_reads("ical.js", file, got["method"], readings)


# --- libical: iTIP restrictions (RFC 5546) ---------------------------------------------------

SYSTEM_PYTHON = "/usr/bin/python3"
LIBICAL_PROBE = ("import gi; gi.require_version('ICal', '3.0'); gi.require_version('ICalGLib', '3.0'); "
                 "from gi.repository import ICal, ICalGLib")

LIBICAL_CHECK = """\
import json, sys
import gi
gi.require_version('ICalGLib', '3.0')
from gi.repository import ICalGLib as I


def problems(component, found):
    prop = component.get_first_property(I.PropertyKind.XLICERROR_PROPERTY)
    while prop is not None:
        found.append(I.Component.kind_to_string(component.isa()) + ': ' + prop.get_xlicerror())
        prop = component.get_next_property(I.PropertyKind.XLICERROR_PROPERTY)
    sub = component.get_first_component(I.ComponentKind.ANY_COMPONENT)
    while sub is not None:
        problems(sub, found)
        sub = component.get_next_component(I.ComponentKind.ANY_COMPONENT)
    return found


def value(component, kind):
    prop = component.get_first_property(kind)
    return prop.get_value_as_string() if prop is not None else None


def when(moment):
    zone = moment.get_timezone()
    return {'local': moment.as_ical_string(), 'tzid': zone.get_tzid() if zone else None,
            'floating': bool(moment.is_floating()), 'utc': bool(moment.is_utc()),
            'unix': moment.as_timet_with_zone(zone) if zone else None}


out = {}
for path in sys.argv[1:]:
    with open(path, encoding='utf-8') as handle:
        calendar = I.Component.new_from_string(handle.read())
    parsed = problems(calendar, [])
    passed = bool(I.restriction_check(calendar))
    after = problems(calendar, [])
    events = []
    event = calendar.get_first_component(I.ComponentKind.VEVENT_COMPONENT)
    while event is not None:
        events.append({'uid': event.get_uid(), 'sequence': event.get_sequence(),
                       'status': value(event, I.PropertyKind.STATUS_PROPERTY),
                       'texts': [event.get_summary(), event.get_location(), event.get_description()],
                       'start': when(event.get_dtstart()), 'end': when(event.get_dtend())})
        event = calendar.get_next_component(I.ComponentKind.VEVENT_COMPONENT)
    out[path] = {'method': value(calendar, I.PropertyKind.METHOD_PROPERTY), 'parse_errors': parsed,
                 'restrictions_pass': passed,
                 'restriction_errors': [p for p in after if p not in parsed], 'events': events}
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def libical_python() -> str:
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"{SYSTEM_PYTHON} is needed for libical's GObject bindings")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", LIBICAL_PROBE], capture_output=True, text=True,
                           timeout=60, check=False)
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip("libical's GObject bindings are missing (apt-get install gir1.2-ical-3.0 "
                    f"python3-gi): {reason}")
    return SYSTEM_PYTHON


def _libical_time(label: str, got: dict) -> datetime:
    assert not got["floating"] and not got["utc"], f"{label}: not a zoned time: {got}"
    assert got["tzid"] == "Asia/Tokyo", f"{label}: zone {got['tzid']}"
    return _aware(datetime.strptime(got["local"], "%Y%m%dT%H%M%S"), got["unix"])


async def test_libical_itip_restriction_check_passes_for_every_method(scenario, libical_python,
                                                                     tmp_path):
    paths = _write(tmp_path, {kind: f.body for kind, f in scenario.files.items()})
    out = await asyncio.to_thread(_run_json, [libical_python, "-c", LIBICAL_CHECK,
                                              *map(str, paths.values())])
    report = []
    for kind, file in scenario.files.items():
        got = out[str(paths[kind])]
        if got["parse_errors"] or not got["restrictions_pass"] or got["restriction_errors"]:
            report.append(f"- {kind} (METHOD:{got['method']}): parse errors {got['parse_errors']}, "
                          f"restriction errors {got['restriction_errors']}")
            continue
        readings = [Reading(e["uid"], _libical_time(f"libical, {kind} DTSTART", e["start"]),
                            _libical_time(f"libical, {kind} DTEND", e["end"]), e["sequence"],
                            e["status"]) for e in got["events"]]
        _assert_reads("libical", file, got["method"], readings)
        assert {e["uid"]: tuple(e["texts"]) for e in got["events"]} == _texts(file.body), kind
    assert not report, "libical rejects files under RFC 5546 (iTIP):\n" + "\n".join(report)


async def test_libical_restriction_check_does_catch_a_broken_request(scenario, libical_python,
                                                                    tmp_path):
    """The check above is not vacuous: a REQUEST without its ORGANIZER fails it."""
    body = scenario.files["seat_request"].body
    broken = b"\r\n".join(line for line in body.split(b"\r\n") if not line.startswith(b"ORGANIZER"))
    paths = _write(tmp_path, {"broken": broken})
    out = await asyncio.to_thread(_run_json, [libical_python, "-c", LIBICAL_CHECK,
                                              str(paths["broken"])])
    got = out[str(paths["broken"])]
    assert not got["restrictions_pass"]
    assert any("ORGANIZER" in problem for problem in got["restriction_errors"]), got


# --- Radicale (CalDAV) -----------------------------------------------------------------------

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
RADICALE_USER = "interop"


@dataclass
class Radicale:
    url: str
    folder: Path

    def client(self) -> httpx.AsyncClient:
        # auth type none takes any user name; the owner_only rights give that user its home
        return httpx.AsyncClient(base_url=self.url, auth=(RADICALE_USER, "any"), timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def radicale(tmp_path_factory) -> Iterator[Radicale]:
    """One real Radicale 3 server for the test session, on a free loopback port."""
    if importlib.util.find_spec("radicale") is None:
        pytest.skip("Radicale is not installed (pip install radicale)")
    folder = tmp_path_factory.mktemp("radicale")
    port = _free_port()
    log = (folder / "radicale.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", "", "--auth-type", "none",
         "--rights-type", "owner_only", "--web-type", "none",
         "--storage-filesystem-folder", str(folder / "collections"),
         "--server-hosts", f"127.0.0.1:{port}", "--logging-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                log.flush()
                pytest.fail("Radicale did not start:\n"
                            + (folder / "radicale.log").read_text(errors="replace")[-2000:])
            try:
                if httpx.request("OPTIONS", f"{url}/", timeout=2).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("Radicale did not answer within 30 s")
            time.sleep(0.1)
        yield Radicale(url, folder)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _resources(body: bytes) -> list[bytes]:
    """What a CalDAV client stores for a file: one calendar object resource per UID (RFC 4791
    4.1), each with the VTIMEZONEs it needs, and no METHOD (RFC 4791 4.1: not allowed in stored
    objects). Done on the lines themselves, so the product's own text is what gets stored."""
    lines = body.decode("utf-8").split("\r\n")
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2:] == ["END:VCALENDAR", ""], lines[-3:]
    head: list[str] = []
    timezones: list[list[str]] = []
    events: list[list[str]] = []
    block: list[str] | None = None
    depth = 0
    skipping = False
    for line in lines[1:-2]:
        if block is None and line.startswith("BEGIN:"):
            block = []
            (timezones if line == "BEGIN:VTIMEZONE" else events).append(block)
        if block is not None:
            block.append(line)
            depth += line.startswith("BEGIN:") - line.startswith("END:")
            if depth == 0:
                block = None
            continue
        if line.startswith((" ", "\t")):  # a folded continuation line
            if not skipping:
                head.append(line)
            continue
        skipping = line.upper().startswith("METHOD:")
        if not skipping:
            head.append(line)
    assert events and all(e[0] == "BEGIN:VEVENT" for e in events), [e[0] for e in events]
    return [("\r\n".join(["BEGIN:VCALENDAR", *head, *(x for tz in timezones for x in tz), *event,
                          "END:VCALENDAR"]) + "\r\n").encode("utf-8")
            for event in events]


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _query(start: datetime, end: datetime) -> str:
    return f"""<?xml version="1.0" encoding="utf-8" ?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VEVENT"><C:time-range start="{_utc(start)}" end="{_utc(end)}"/></C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>"""


async def _report(dav: httpx.AsyncClient, collection: str, start: datetime, end: datetime
                  ) -> dict[str, list[Reading]]:
    """calendar-query REPORT: the href and the events (read with vobject) of every match."""
    response = await dav.request("REPORT", collection, content=_query(start, end).encode(),
                                 headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
    assert response.status_code == 207, (response.status_code, response.text[:500])
    found: dict[str, list[Reading]] = {}
    for item in ET.fromstring(response.content).iter(f"{{{DAV}}}response"):
        href = item.findtext(f"{{{DAV}}}href")
        data = item.find(f".//{{{CALDAV}}}calendar-data")
        if data is not None and data.text:
            method, readings = _vobject(data.text.encode("utf-8"))
            assert method is None, (href, method)
            found[href] = readings
    return found


async def test_radicale_stores_and_finds_every_event_at_tokyo_times(scenario, radicale):
    run = uuid.uuid4().hex[:8]
    async with radicale.client() as dav:
        for kind, file in scenario.files.items():
            collection = f"/{RADICALE_USER}/{run}-{kind.replace('_', '-')}/"
            made = await dav.request("MKCALENDAR", collection)
            assert made.status_code == 201, (kind, made.status_code, made.text)
            stored: dict[str, str] = {}  # href -> UID
            for n, resource in enumerate(_resources(file.body)):
                assert b"METHOD:" not in resource
                href = f"{collection}event-{n}.ics"
                put = await dav.put(href, content=resource,
                                    headers={"Content-Type": "text/calendar; charset=utf-8",
                                             "If-None-Match": "*"})
                assert put.status_code == 201, (kind, href, put.status_code, put.text)
                got = await dav.get(href)
                assert got.status_code == 200 and got.headers["content-type"].startswith("text/calendar")
                method, readings = _vobject(got.content)
                assert method is None and len(readings) == 1, (kind, href, method)
                stored[href] = readings[0].uid
            assert sorted(stored.values()) == sorted(file.events), kind
            # every event read back (GET) is the one sent, at its Tokyo times
            bodies = [(await dav.get(href)).content for href in stored]
            _assert_reads("Radicale GET", file, None, [r for b in bodies for r in _vobject(b)[1]])
            texts = {uid: text for b in bodies for uid, text in _texts(b).items()}
            assert texts == _texts(file.body), kind

            # the whole span: everything, with the same UIDs and times
            everything = await _report(dav, collection, datetime.now(UTC), datetime.now(UTC) + timedelta(days=30))
            assert {href: [r.uid for r in rs] for href, rs in everything.items()} == {
                href: [uid] for href, uid in stored.items()}, kind
            _assert_reads("Radicale REPORT", file, None, [r for rs in everything.values() for r in rs])
            # a window around each event's start, in Tokyo time, finds exactly that event
            for uid, expected in file.events.items():
                start = _wall(expected.starts)
                window_from = (start - timedelta(minutes=30)).replace(tzinfo=TOKYO)
                window_to = (start + timedelta(minutes=30)).replace(tzinfo=TOKYO)
                hits = await _report(dav, collection, window_from, window_to)
                assert [r.uid for rs in hits.values() for r in rs] == [uid], (kind, uid, hits)
                # the same wall-clock window read as UTC (a floating or UTC mix-up) finds nothing
                misread = await _report(dav, collection, window_from.replace(tzinfo=UTC),
                                        window_to.replace(tzinfo=UTC))
                assert uid not in {r.uid for rs in misread.values() for r in rs}, (kind, uid, misread)


def test_resources_split_a_feed_one_uid_each_without_method():
    body = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//JA\r\nMETHOD:PUBLISH\r\n"
            b"X-WR-CALNAME:a\r\n long name\r\nBEGIN:VTIMEZONE\r\nTZID:Asia/Tokyo\r\nBEGIN:STANDARD\r\n"
            b"DTSTART:19700101T000000\r\nTZOFFSETFROM:+0900\r\nTZOFFSETTO:+0900\r\nEND:STANDARD\r\n"
            b"END:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:a\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\r\n"
            b"END:VEVENT\r\nBEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    first, second = _resources(body)
    for resource, uid in ((first, b"UID:a"), (second, b"UID:b")):
        assert b"METHOD" not in resource and b"X-WR-CALNAME:a\r\n long name\r\n" in resource
        assert resource.count(b"BEGIN:VEVENT") == 1 and uid in resource
        assert resource.count(b"BEGIN:VTIMEZONE") == 1
        assert resource.startswith(b"BEGIN:VCALENDAR\r\n") and resource.endswith(b"END:VCALENDAR\r\n")
    assert b"BEGIN:VALARM" in first


# --- a moved session -------------------------------------------------------------------------

async def test_a_moved_session_moves_in_every_file_with_a_higher_sequence(scenario):
    s = scenario
    moved_uids = {s.uid("seat", s.seated.id), s.uid("seat", s.waiting.id), s.uid("seat", s.given_up.id),
                  s.uid("duty", s.duty.id), s.uid("session", s.class_session.id)}
    # 佐藤's seat sits on the class too: its CANCEL moves with it
    before = {kind: _vobject(f.body) for kind, f in s.files.items()}
    old_sequence = {r.uid: r.sequence for _, readings in before.values() for r in readings}
    assert moved_uids <= set(old_sequence)

    new_start = factories.at(days=9, hour=14)
    await scheduling.reschedule_session(actor=s.town.coordinator, session_id=s.class_session.id,
                                        starts_at=new_start)
    new_end = new_start + (s.class_session.ends_at - s.class_session.starts_at)
    seen = set()
    for kind, file in s.files.items():
        now = await _refetch(s, kind, file.path, file.method, file.events)
        method, readings = _vobject(now.body)
        assert method == file.method, (kind, method)
        assert sorted(r.uid for r in readings) == sorted(file.events), kind  # same UIDs
        for reading in readings:
            label = f"{kind}, {reading.uid}"
            if reading.uid in moved_uids:
                seen.add(reading.uid)
                _assert_tokyo(f"{label} DTSTART", reading.starts, new_start)
                _assert_tokyo(f"{label} DTEND", reading.ends, new_end)
                assert _wall(reading.starts).hour == 14, label
                assert reading.sequence == old_sequence[reading.uid] + 1, (label, reading.sequence)
            else:  # the other sessions did not move
                expected = file.events[reading.uid]
                _assert_tokyo(f"{label} DTSTART", reading.starts, expected.starts)
                assert reading.sequence == expected.sequence, label
    assert seen == moved_uids

    # giving up the seat after the move: a CANCEL above the moved REQUEST
    request_method, [request] = _vobject(s.files["seat_request"].body)
    last_method, [last_request] = _vobject((await _refetch(
        s, "seat_request", s.files["seat_request"].path, "REQUEST", {})).body)
    assert (request_method, last_method) == ("REQUEST", "REQUEST")
    await scheduling.cancel_registration(actor=s.town.coordinator, registration_id=s.seated.id)
    cancelled = await _refetch(s, "seat_request", s.files["seat_request"].path, "CANCEL", {})
    method, [cancel] = _vobject(cancelled.body)
    assert method == "CANCEL" and cancel.status == "CANCELLED"
    assert cancel.uid == last_request.uid == request.uid
    assert cancel.sequence > last_request.sequence > request.sequence
    _assert_tokyo("the CANCEL's DTSTART", cancel.starts, new_start)
