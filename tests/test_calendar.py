"""Calendar files as calendar apps receive them: per-method rules of RFC 5546, stable UIDs,
Tokyo times with a VTIMEZONE, tokens that cannot be guessed, and the GraphQL links."""

from __future__ import annotations

from datetime import datetime, timedelta

import factories
import pytest
from factories import TOKYO
from icalendar import Calendar

from divide_support.calendar import service as calendar
from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.people.models import Supporter
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import Assignment, AssignmentRole, CourseTopic, Registration


async def _seat(town, *, capacity: int = 10, starts: datetime | None = None):
    session = await factories.session(town.coordinator, starts or factories.at(days=5, hour=10),
                                      capacity=capacity)
    resident = await factories.resident(town.coordinator, "山田", "花子", sms=True)
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id)
    return session, resident, registration


def _parse(body: bytes) -> tuple[Calendar, object]:
    parsed = Calendar.from_ical(body)
    [event] = [c for c in parsed.walk("VEVENT")]
    return parsed, event


# --- a seat --------------------------------------------------------------------------------

async def test_a_seat_is_a_request_with_everything_rfc5546_asks_for(town):
    session, _, registration = await _seat(town)
    found = await calendar.registration_file(registration.calendar_token)
    assert found.method == "REQUEST"
    body = found.body
    assert b"\r\n" in body and body.count(b"\n") == body.count(b"\r\n")  # CRLF only
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))  # folded
    parsed, event = _parse(body)
    assert parsed["METHOD"] == "REQUEST"
    for required in ("ORGANIZER", "ATTENDEE", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "UID",
                     "SEQUENCE", "STATUS", "LOCATION", "DESCRIPTION"):
        assert required in event, required
    assert event["STATUS"] == "CONFIRMED" and event["SEQUENCE"] == 0
    assert event["UID"] == f"seat-{registration.id}.142034@divide-support"
    start = event.decoded("DTSTART")
    assert start.tzinfo is not None and str(event["DTSTART"].params["TZID"]) == "Asia/Tokyo"
    assert start == session.starts_at and start.astimezone(TOKYO).hour == 10
    assert [tz["TZID"] for tz in parsed.walk("VTIMEZONE")] == ["Asia/Tokyo"]
    attendee = event["ATTENDEE"]
    assert attendee.params["CN"] == "山田 花子" and not str(attendee).startswith("mailto:")
    assert str(event["ORGANIZER"]) == "tel:+81463211111"
    assert event["ORGANIZER"].params["CN"] == "平塚市 スマホ教室"
    assert "中央公民館" in event["LOCATION"] and "平塚市浅間町1-1" in event["LOCATION"]
    description = str(event["DESCRIPTION"])
    assert "スマートフォン、充電器" in description and "0463-21-1111" in description
    [alarm] = event.walk("VALARM")
    assert alarm.decoded("TRIGGER") == timedelta(days=-1)


async def test_my_number_courses_ask_for_the_card(town):
    course = await scheduling.create_course(actor=town.coordinator, title="マイナンバーカードの申請",
                                            topic=CourseTopic.MY_NUMBER_CARD, duration_minutes=90)
    venue = await factories.venue(town.coordinator)
    starts = factories.at(days=5, hour=13)
    [session] = await scheduling.schedule_sessions(
        actor=town.coordinator, kind=scheduling.SessionKind.CLASS, venue_id=venue.id,
        course_id=course.id, starts_at=starts, ends_at=starts + timedelta(hours=1), capacity=5)
    resident = await factories.resident(town.coordinator)
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id)
    _, event = _parse((await calendar.registration_file(registration.calendar_token)).body)
    assert "マイナンバーカード" in str(event["DESCRIPTION"])


async def test_a_waitlisted_seat_is_tentative(town):
    session, _, _ = await _seat(town, capacity=1)
    other = await factories.resident(town.coordinator)
    waiting = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                        resident_id=other.id)
    _, event = _parse((await calendar.registration_file(waiting.calendar_token)).body)
    assert event["STATUS"] == "TENTATIVE"
    assert event["ATTENDEE"].params["PARTSTAT"] == "TENTATIVE"
    assert "キャンセル待ち（1番目）" in str(event["DESCRIPTION"])


async def test_a_cancelled_seat_is_a_cancel_above_the_last_request(town):
    _, _, registration = await _seat(town)
    _, before = _parse((await calendar.registration_file(registration.calendar_token)).body)
    await scheduling.cancel_registration(actor=town.coordinator, registration_id=registration.id)
    found = await calendar.registration_file(registration.calendar_token)
    assert found.method == "CANCEL"
    parsed, event = _parse(found.body)
    assert parsed["METHOD"] == "CANCEL"
    assert event["UID"] == before["UID"]
    assert event["SEQUENCE"] > before["SEQUENCE"]
    assert event["STATUS"] == "CANCELLED"
    assert not event.walk("VALARM")


async def test_moving_a_session_keeps_the_uid_and_raises_the_sequence(town):
    session, _, registration = await _seat(town)
    _, before = _parse((await calendar.registration_file(registration.calendar_token)).body)
    new_start = factories.at(days=9, hour=14)
    await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id,
                                        starts_at=new_start)
    _, after = _parse((await calendar.registration_file(registration.calendar_token)).body)
    assert after["UID"] == before["UID"]
    assert after["SEQUENCE"] == before["SEQUENCE"] + 1
    assert after.decoded("DTSTART") == new_start
    assert after.decoded("DTSTART").astimezone(TOKYO).hour == 14
    _, venue_event = _parse((await calendar.venue_feed(session.venue_id)).body)
    assert venue_event["UID"] == f"session-{session.id}.142034@divide-support"
    assert venue_event["SEQUENCE"] == 1 and venue_event.decoded("DTSTART") == new_start


async def test_cancelling_the_session_turns_seats_into_cancels_and_feeds_mark_it(town):
    session, _, registration = await _seat(town)
    await scheduling.cancel_session(actor=town.coordinator, session_id=session.id)
    seat = await calendar.registration_file(registration.calendar_token)
    assert seat.method == "CANCEL"
    _, event = _parse(seat.body)
    assert event["SEQUENCE"] == 1 and event["STATUS"] == "CANCELLED"
    assert "中止" in str(event["DESCRIPTION"])
    feed, listed = _parse((await calendar.venue_feed(session.venue_id)).body)
    assert feed["METHOD"] == "PUBLISH"
    assert listed["STATUS"] == "CANCELLED" and not listed.walk("VALARM")


# --- duties and feeds ----------------------------------------------------------------------

async def _duty(town):
    session, _, _ = await _seat(town)
    supporter = await factories.supporter(town.coordinator, name="鈴木 一郎")
    assignment = await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                                   supporter_id=supporter.id,
                                                   role=AssignmentRole.LEAD)
    return session, supporter, assignment


async def test_a_duty_is_a_request_to_the_supporter(town):
    session, _, assignment = await _duty(town)
    found = await calendar.assignment_file(assignment.calendar_token)
    assert found.method == "REQUEST"
    _, event = _parse(found.body)
    assert event["ATTENDEE"].params["CN"] == "鈴木 一郎"
    assert "講師" in str(event["DESCRIPTION"])
    assert event["UID"] == f"duty-{assignment.id}.142034@divide-support"
    await scheduling.cancel_session(actor=town.coordinator, session_id=session.id)
    assert (await calendar.assignment_file(assignment.calendar_token)).method == "CANCEL"


async def test_a_duty_taken_off_the_supporter_becomes_a_cancel(town, client):
    _, supporter, assignment = await _duty(town)
    _, before = _parse((await calendar.assignment_file(assignment.calendar_token)).body)
    await scheduling.unassign_supporter(actor=town.coordinator, assignment_id=assignment.id)
    response = await client.get(f"/calendar/assignments/{assignment.calendar_token}.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8; method=CANCEL"
    _, after = _parse(response.content)
    assert after["UID"] == before["UID"] and after["SEQUENCE"] > before["SEQUENCE"]
    assert after["STATUS"] == "CANCELLED" and "取り消されました" in str(after["DESCRIPTION"])
    feed = Calendar.from_ical((await calendar.supporter_feed(supporter.calendar_token)).body)
    assert not feed.walk("VEVENT")  # the feed simply drops it


async def test_feeds_are_publish_with_an_organizer_and_no_people(town):
    session, supporter, assignment = await _duty(town)
    files = [await calendar.supporter_feed(supporter.calendar_token),
             await calendar.venue_feed(session.venue_id),
             await calendar.municipality_feed(town.coordinator)]
    for found in files:
        parsed = Calendar.from_ical(found.body)
        assert parsed["METHOD"] == "PUBLISH" and found.method == "PUBLISH"
        events = list(parsed.walk("VEVENT"))
        assert events
        for event in events:
            assert "ORGANIZER" in event and "ATTENDEE" not in event
            assert "山田" not in event.to_ical().decode()  # no resident appears anywhere
    [duty] = Calendar.from_ical(files[0].body).walk("VEVENT")
    assert duty["UID"] == f"duty-{assignment.id}.142034@divide-support"


async def test_the_supporter_feed_holds_only_their_duties(town):
    _, supporter, _ = await _duty(town)
    other_session = await factories.session(town.coordinator, factories.at(days=6, hour=10))
    other = await factories.supporter(town.coordinator)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=other_session.id,
                                      supporter_id=other.id)
    events = Calendar.from_ical((await calendar.supporter_feed(supporter.calendar_token)).body
                                ).walk("VEVENT")
    assert len(events) == 1


async def test_the_municipality_feed_is_for_staff(town):
    with pytest.raises(Exception) as caught:
        await calendar.municipality_feed(town.planner)
    assert getattr(caught.value, "code", None) == "FORBIDDEN"


# --- over HTTP -----------------------------------------------------------------------------

async def test_invite_endpoint_serves_text_calendar_with_the_method(town, client):
    _, _, registration = await _seat(town)
    response = await client.get(f"/calendar/registrations/{registration.calendar_token}.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8; method=REQUEST"
    assert 'filename="invite.ics"' in response.headers["content-disposition"]
    assert "no-store" in response.headers["cache-control"]
    assert response.content.startswith(b"BEGIN:VCALENDAR\r\n")
    await scheduling.cancel_registration(actor=town.coordinator, registration_id=registration.id)
    response = await client.get(f"/calendar/registrations/{registration.calendar_token}.ics")
    assert response.headers["content-type"] == "text/calendar; charset=utf-8; method=CANCEL"


@pytest.mark.parametrize("path", [
    "/calendar/registrations/{wrong}.ics", "/calendar/assignments/{wrong}.ics",
    "/calendar/supporters/{wrong}.ics", "/calendar/registrations/..%2F1.ics",
    "/calendar/registrations/1.ics", "/calendar/venues/999999.ics", "/calendar/venues/abc.ics",
])
async def test_unknown_tokens_get_a_plain_404_that_leaks_nothing(town, client, path):
    await _seat(town)
    response = await client.get(path.format(wrong="0" * 32))
    assert response.status_code == 404
    assert response.text.lower() == "not found"
    assert "BEGIN:VCALENDAR" not in response.text


async def test_a_rotated_feed_token_stops_working(town, client, gql):
    _, supporter, assignment = await _duty(town)
    old = supporter.calendar_token
    assert (await client.get(f"/calendar/supporters/{old}.ics")).status_code == 200
    data = await gql().data("""mutation ($s: ID!) { rotateCalendarFeedToken(input: {supporterId: $s})
        { supporter { calendarFeedUrl } errors { code } } }""",
                            {"s": to_global_id("Supporter", supporter.id)})
    new_url = data["rotateCalendarFeedToken"]["supporter"]["calendarFeedUrl"]
    new = (await Supporter.get(id=supporter.id)).calendar_token
    assert new != old and new_url.endswith(f"/calendar/supporters/{new}.ics")
    assert (await client.get(f"/calendar/supporters/{old}.ics")).status_code == 404
    response = await client.get(f"/calendar/supporters/{new}.ics")
    assert response.status_code == 200
    # the duty links were in the same hands: they change too
    old_duty = assignment.calendar_token
    assert (await client.get(f"/calendar/assignments/{old_duty}.ics")).status_code == 404
    fresh = await Assignment.get(id=assignment.id)
    assert (await client.get(f"/calendar/assignments/{fresh.calendar_token}.ics")).status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8; method=PUBLISH"
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H" in response.content


async def test_a_supporter_who_left_has_no_feed(town, client):
    from divide_support.people import service as people

    _, supporter, _ = await _duty(town)
    await people.set_supporter_active(supporter_id=supporter.id, active=False, actor=town.coordinator)
    assert (await client.get(f"/calendar/supporters/{supporter.calendar_token}.ics")).status_code == 404


async def test_the_municipality_feed_needs_a_staff_token(town, client):
    await _seat(town)
    assert (await client.get("/calendar/municipality.ics")).status_code == 401
    planner = await client.get("/calendar/municipality.ics",
                               headers={"Authorization": f"Bearer {town.tokens[Role.PLANNER]}"})
    assert planner.status_code == 403
    staff = await client.get("/calendar/municipality.ics",
                             headers={"Authorization": f"Bearer {town.tokens[Role.COORDINATOR]}"})
    assert staff.status_code == 200 and b"METHOD:PUBLISH" in staff.content


async def test_the_venue_schedule_is_public(town, client):
    session, _, _ = await _seat(town)
    response = await client.get(f"/calendar/venues/{session.venue_id}.ics")
    assert response.status_code == 200
    assert "public" in response.headers["cache-control"]


# --- GraphQL links -------------------------------------------------------------------------

async def test_graphql_gives_absolute_links_to_the_right_people(town, gql):
    session, supporter, assignment = await _duty(town)
    registration = await Registration.filter(session_id=session.id).first()
    data = await gql().data("""query ($r: ID!, $v: ID!, $s: ID!) {
        r: node(id: $r) { ... on Registration { inviteUrl } }
        v: node(id: $v) { ... on Venue { calendarUrl } }
        s: node(id: $s) { ... on Supporter { calendarFeedUrl assignments { inviteUrl } } } }""",
                            {"r": to_global_id("Registration", registration.id),
                             "v": to_global_id("Venue", session.venue_id),
                             "s": to_global_id("Supporter", supporter.id)})
    base = "http://127.0.0.1:8000"
    assert data["r"]["inviteUrl"] == (
        f"{base}/calendar/registrations/{registration.calendar_token}.ics")
    assert len(data["r"]["inviteUrl"]) < 90  # short enough for an SMS
    assert data["v"]["calendarUrl"] == f"{base}/calendar/venues/{session.venue_id}.ics"
    assert data["s"]["calendarFeedUrl"] == (
        f"{base}/calendar/supporters/{supporter.calendar_token}.ics")
    assert data["s"]["assignments"][0]["inviteUrl"] == (
        f"{base}/calendar/assignments/{assignment.calendar_token}.ics")
    # a planner sees the public schedule but no one's private links
    planner = await gql(Role.PLANNER).data("""query ($s: ID!, $v: ID!) {
        s: node(id: $s) { ... on Supporter { calendarFeedUrl } }
        v: node(id: $v) { ... on Venue { calendarUrl } } }""",
                                           {"s": to_global_id("Supporter", supporter.id),
                                            "v": to_global_id("Venue", session.venue_id)})
    assert planner["s"] is None  # nor the supporter at all
    assert planner["v"]["calendarUrl"].endswith(".ics")


def test_webcal_links_for_subscribing():
    assert calendar.webcal("https://support.example.jp/calendar/supporters/ab.ics") == (
        "webcal://support.example.jp/calendar/supporters/ab.ics")
