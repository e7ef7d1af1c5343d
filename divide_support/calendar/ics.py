"""RFC 5545 files with the icalendar package, following RFC 5546 per method.

- REQUEST (a seat, a duty): ORGANIZER, ATTENDEE, DTSTAMP, DTSTART, DTEND, SUMMARY, UID,
  SEQUENCE, STATUS TENTATIVE or CONFIRMED, and a reminder the day before.
- CANCEL: the same UID with a higher SEQUENCE, STATUS CANCELLED, no VALARM.
- PUBLISH (feeds): ORGANIZER and never an ATTENDEE: a feed never lists other people.

Every time is a ZoneInfo-aware datetime with a VTIMEZONE for the zone (icalendar 7 adds
none by itself: add_missing_timezones(), then nothing may be missing). UIDs are stored
identities, never Event.new()'s invented ones, so they survive a session being moved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event, vCalAddress, vText

from divide_support.people import phones

PRODID = "-//divide-support//スマホ教室 予定表//JA"
UID_DOMAIN = "divide-support"


@dataclass(frozen=True)
class Organizer:
    name: str  # e.g. 平塚市 スマホ教室
    phone: str | None  # the centre's number, national format


@dataclass(frozen=True)
class EventFacts:
    uid: str
    summary: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    location: str
    description: str
    sequence: int
    cancelled: bool = False
    tentative: bool = False


@dataclass(frozen=True)
class Attendee:
    name: str
    uri: str  # a non-mail URI: residents need no e-mail address
    accepted: bool = True


def _address(organizer: Organizer) -> vCalAddress:
    # A tel: URI (RFC 3966, global form): the centre is reached by phone, not e-mail.
    uri = f"tel:{phones.parse_any(organizer.phone, 'phone')}" if organizer.phone else \
        f"urn:{UID_DOMAIN}:organizer"
    address = vCalAddress(uri)
    address.params["CN"] = vText(organizer.name)
    return address


def _attendee(attendee: Attendee) -> vCalAddress:
    address = vCalAddress(attendee.uri)
    address.params["CN"] = vText(attendee.name)
    address.params["ROLE"] = vText("REQ-PARTICIPANT")
    address.params["CUTYPE"] = vText("INDIVIDUAL")
    address.params["PARTSTAT"] = vText("ACCEPTED" if attendee.accepted else "TENTATIVE")
    return address


def _event(facts: EventFacts, organizer: Organizer, *, status: str,
           attendee: Attendee | None, alarm: bool, stamp: datetime) -> Event:
    tz = ZoneInfo(facts.timezone)
    event = Event()
    event.add("uid", facts.uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", facts.starts_at.astimezone(tz))
    event.add("dtend", facts.ends_at.astimezone(tz))
    event.add("sequence", facts.sequence)
    event.add("status", status)
    event.add("summary", facts.summary)
    event.add("location", facts.location)
    event.add("description", facts.description)
    event.add("organizer", _address(organizer))
    event.add("transp", "OPAQUE")
    if attendee is not None:
        event.add("attendee", _attendee(attendee))
    if alarm:
        reminder = Alarm()
        reminder.add("action", "DISPLAY")
        reminder.add("description", f"明日: {facts.summary}")
        reminder.add("trigger", timedelta(days=-1))
        event.add_component(reminder)
    return event


def _calendar(method: str, name: str | None, events: Iterable[Event]) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    if name:
        calendar.add("x-wr-calname", name)
        calendar.add("name", name)
        # Subscribers look again hourly, so moved or cancelled sessions show up soon.
        calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", "PT1H")
    for event in events:
        calendar.add_component(event)
    calendar.add_missing_timezones()
    missing = calendar.get_missing_tzids()
    if missing:  # never ship a TZID a reader cannot resolve
        raise ValueError(f"VTIMEZONE missing for {sorted(missing)}")
    return calendar.to_ical()


def invite(facts: EventFacts, organizer: Organizer, attendee: Attendee, *,
           now: datetime) -> tuple[str, bytes]:
    """A seat or a duty: (method, file). REQUEST while it holds, CANCEL once it does not."""
    if facts.cancelled:
        event = _event(facts, organizer, status="CANCELLED", attendee=attendee, alarm=False,
                       stamp=now)
        return "CANCEL", _calendar("CANCEL", None, [event])
    status = "TENTATIVE" if facts.tentative else "CONFIRMED"
    event = _event(facts, organizer, status=status, attendee=attendee, alarm=True, stamp=now)
    return "REQUEST", _calendar("REQUEST", None, [event])


def feed(name: str, organizer: Organizer, events: Iterable[EventFacts], *,
         now: datetime) -> bytes:
    """A subscription feed (METHOD:PUBLISH): cancelled sessions stay, marked CANCELLED."""
    built = [
        _event(facts, organizer, status="CANCELLED" if facts.cancelled else "CONFIRMED",
               attendee=None, alarm=not facts.cancelled, stamp=now)
        for facts in events
    ]
    return _calendar("PUBLISH", name, built)
