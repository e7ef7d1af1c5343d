"""A centre's day through GraphQL: log in, set up a class, register residents, staff it,
record attendance and follow up. Everything goes through the ASGI app."""

from __future__ import annotations

from datetime import datetime, timedelta

import factories
import pytest
from conftest import PASSWORD
from factories import TOKYO, at

from divide_support.core.ids import to_global_id
from divide_support.people.models import Resident, Supporter
from divide_support.scheduling.models import Registration, Session

LOGIN = """mutation ($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    token expiresAt user { email role }
    errors { code message field }
  }
}"""

CREATE_VENUE = """mutation ($input: CreateVenueInput!) {
  createVenue(input: $input) { venue { id name kind capacity hasWifi loanerDevices } errors { code field } }
}"""

CREATE_COURSE = """mutation ($input: CreateCourseInput!) {
  createCourse(input: $input) { course { id title topic durationMinutes } errors { code field } }
}"""

SCHEDULE = """mutation ($input: ScheduleSessionInput!) {
  scheduleSession(input: $input) {
    sessions { id title kind startsAt endsAt capacity status sequence seatsTaken seatsLeft
               waitlistLength requiredSupporters understaffed venue { id } course { id } }
    errors { code message field }
  }
}"""

CREATE_RESIDENT = """mutation ($input: CreateResidentInput!) {
  createResident(input: $input) {
    resident { id familyName givenName phone birthDate contactPreference smsConsent }
    errors { code message field }
  }
}"""

REGISTER = """mutation ($sessionId: ID!, $residentId: ID!, $source: RegistrationSource) {
  register(input: {sessionId: $sessionId, residentId: $residentId, source: $source}) {
    registration { id status waitlistPosition source attendance }
    errors { code message field }
  }
}"""

CANCEL = """mutation ($id: ID!) {
  cancelRegistration(input: {registrationId: $id, reason: "体調不良"}) {
    registration { id status waitlistPosition } errors { code field }
  }
}"""

SESSION = """query ($id: ID!) {
  node(id: $id) {
    ... on Session {
      id seatsTaken seatsLeft waitlistLength requiredSupporters understaffed hasCertifiedLead
      assignments { role supporter { id displayName certified } }
      registrations { totalCount edges { node { id status waitlistPosition resident { id } } } }
      waitlist: registrations(status: WAITLISTED) { edges { node { id waitlistPosition } } }
    }
  }
}"""

ASSIGN = """mutation ($sessionId: ID!, $supporterId: ID!, $role: AssignmentRole) {
  assignSupporter(input: {sessionId: $sessionId, supporterId: $supporterId, role: $role}) {
    assignment { id role supporter { id } session { id } } errors { code field }
  }
}"""

ATTENDANCE = """mutation ($id: ID!, $attendance: Attendance!) {
  recordAttendance(input: {registrationId: $id, attendance: $attendance}) {
    registration { id attendance checkedInAt } errors { code field }
  }
}"""


def _gid(kind: str, pk: int) -> str:
    return to_global_id(kind, pk)


def _iso(moment: datetime) -> str:
    return moment.astimezone(TOKYO).isoformat()


async def _class_session(gql, *, starts: datetime, capacity: int = 3, **extra) -> dict:
    venue = (await gql.data(CREATE_VENUE, {"input": {
        "name": f"公民館{starts.timestamp()}", "kind": "COMMUNITY_CENTRE", "capacity": 30}}))
    course = (await gql.data(CREATE_COURSE, {"input": {
        "title": f"はじめてのスマホ{starts.timestamp()}", "topic": "DEVICE_BASICS",
        "durationMinutes": 120}}))
    data = await gql.data(SCHEDULE, {"input": {
        "kind": "CLASS", "venueId": venue["createVenue"]["venue"]["id"],
        "courseId": course["createCourse"]["course"]["id"], "startsAt": _iso(starts),
        "endsAt": _iso(starts + timedelta(hours=2)), "capacity": capacity, **extra}})
    assert data["scheduleSession"]["errors"] == []
    return data["scheduleSession"]["sessions"][0]


async def _resident(gql, family: str = "山田", given: str = "花子", **extra) -> str:
    data = await gql.data(CREATE_RESIDENT, {"input": {"familyName": family, "givenName": given,
                                                      **extra}})
    assert data["createResident"]["errors"] == []
    return data["createResident"]["resident"]["id"]


async def _register(gql, session_id: str, resident_id: str, source: str | None = None) -> dict:
    data = await gql.data(REGISTER, {"sessionId": session_id, "residentId": resident_id,
                                     "source": source})
    return data["register"]


# --- login -------------------------------------------------------------------------------

async def test_login_returns_a_bearer_token(gql, town):
    anonymous = gql(None)
    data = await anonymous.data(LOGIN, {"email": "Hiratsuka-Coordinator@example.jp ",
                                        "password": PASSWORD})
    login = data["login"]
    assert login["errors"] == []
    assert login["token"] and len(login["token"]) >= 32
    expires = datetime.fromisoformat(login["expiresAt"])
    assert expires.utcoffset() == timedelta(hours=9)  # shown in the municipality's zone
    assert timedelta(hours=11) < expires - datetime.now(TOKYO) <= timedelta(hours=12)
    assert login["user"] == {"email": "hiratsuka-coordinator@example.jp", "role": "COORDINATOR"}

    me = await gql(token=login["token"]).data("{ me { email role municipality { code name } } }")
    assert me["me"] == {"email": "hiratsuka-coordinator@example.jp", "role": "COORDINATOR",
                        "municipality": {"code": "142034", "name": "平塚市"}}


async def test_login_payload_user_resolves_its_municipality(gql, town):
    # graphql/examples/01_login.graphql asks for this. The login request has no actor yet,
    # so the (municipality-scoped) loaders must not be what resolves the new user's fields.
    data = await gql(None)("""mutation ($email: String!, $password: String!) {
      login(input: {email: $email, password: $password}) {
        token user { displayName role municipality { code name } } errors { code }
      }
    }""", {"email": "hiratsuka-coordinator@example.jp", "password": PASSWORD})
    assert "errors" not in data, data
    assert data["data"]["login"]["user"]["municipality"] == {"code": "142034", "name": "平塚市"}


async def test_wrong_password_gives_invalid_credentials_and_no_token(gql, town):
    data = await gql(None).data(LOGIN, {"email": "hiratsuka-admin@example.jp",
                                        "password": "wrong-password-1"})
    login = data["login"]
    assert login["token"] is None
    assert login["expiresAt"] is None
    assert login["user"] is None
    assert login["errors"][0]["code"] == "INVALID_CREDENTIALS"
    # An unknown address looks exactly the same.
    data = await gql(None).data(LOGIN, {"email": "nobody@example.jp", "password": PASSWORD})
    assert data["login"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert data["login"]["token"] is None


async def test_five_failures_lock_the_email_even_for_the_right_password(gql, town):
    anonymous = gql(None)
    email = "hiratsuka-admin@example.jp"
    for _ in range(5):
        data = await anonymous.data(LOGIN, {"email": email, "password": "guess-guess-guess"})
        assert data["login"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    data = await anonymous.data(LOGIN, {"email": email, "password": PASSWORD})
    assert data["login"]["token"] is None
    assert data["login"]["errors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    # Case and spaces do not get around the lock.
    data = await anonymous.data(LOGIN, {"email": " HIRATSUKA-ADMIN@example.jp", "password": PASSWORD})
    assert data["login"]["errors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    # Other accounts are not affected.
    data = await anonymous.data(LOGIN, {"email": "hiratsuka-planner@example.jp",
                                        "password": PASSWORD})
    assert data["login"]["token"]


async def test_a_success_before_the_limit_resets_the_count(gql, town):
    anonymous = gql(None)
    email = "hiratsuka-admin@example.jp"
    for _ in range(4):
        await anonymous.data(LOGIN, {"email": email, "password": "guess-guess-guess"})
    data = await anonymous.data(LOGIN, {"email": email, "password": PASSWORD})
    assert data["login"]["token"]
    for _ in range(4):
        await anonymous.data(LOGIN, {"email": email, "password": "guess-guess-guess"})
    data = await anonymous.data(LOGIN, {"email": email, "password": PASSWORD})
    assert data["login"]["token"], data


# --- venues, courses, sessions -----------------------------------------------------------

async def test_create_venue_course_and_weekly_series(gql):
    coordinator = gql()
    venue = (await coordinator.data(CREATE_VENUE, {"input": {
        "name": " 中央公民館 第1会議室 ", "kind": "COMMUNITY_CENTRE", "address": "平塚市浅間町1-1",
        "capacity": 24, "hasWifi": True, "loanerDevices": 6}}))["createVenue"]
    assert venue["errors"] == []
    assert venue["venue"]["name"] == "中央公民館 第1会議室"
    assert venue["venue"]["capacity"] == 24 and venue["venue"]["loanerDevices"] == 6

    course = (await coordinator.data(CREATE_COURSE, {"input": {
        "title": "LINEを始めよう", "topic": "MESSAGING_SNS", "durationMinutes": 90}}))["createCourse"]
    assert course["errors"] == []

    first_day = (datetime.now(TOKYO) + timedelta(days=10)).date()
    starts = datetime(first_day.year, first_day.month, first_day.day, 10, 0, tzinfo=TOKYO)
    data = await coordinator.data(SCHEDULE, {"input": {
        "kind": "CLASS", "venueId": venue["venue"]["id"], "courseId": course["course"]["id"],
        "startsAt": starts.isoformat(), "endsAt": (starts + timedelta(minutes=90)).isoformat(),
        "capacity": 12, "repeatWeekly": 3, "keepClosedDays": True}})
    payload = data["scheduleSession"]
    assert payload["errors"] == []
    sessions = payload["sessions"]
    assert len(sessions) == 4
    for week, session in enumerate(sessions):
        local = datetime.fromisoformat(session["startsAt"])
        assert local.utcoffset() == timedelta(hours=9)
        assert local.date() == first_day + timedelta(weeks=week)
        assert (local.hour, local.minute) == (10, 0)
        assert datetime.fromisoformat(session["endsAt"]) - local == timedelta(minutes=90)
        assert session["title"] == "LINEを始めよう"  # the course title by default
        assert session["status"] == "SCHEDULED"
        assert session["sequence"] == 0
        assert session["seatsTaken"] == 0 and session["seatsLeft"] == 12
        assert session["venue"]["id"] == venue["venue"]["id"]
        assert session["course"]["id"] == course["course"]["id"]
    assert len({s["id"] for s in sessions}) == 4

    venues = await coordinator.data("{ venues { id name } courses { id title } }")
    assert [v["id"] for v in venues["venues"]] == [venue["venue"]["id"]]
    assert course["course"]["id"] in [c["id"] for c in venues["courses"]]


async def test_schedule_validation_errors_change_nothing(gql):
    coordinator = gql()
    venue = (await coordinator.data(CREATE_VENUE, {"input": {
        "name": "図書館", "kind": "LIBRARY", "capacity": 10}}))["createVenue"]["venue"]
    starts = at(days=5, hour=14)
    cases = [
        ({"endsAt": _iso(starts - timedelta(hours=1))}, "INVALID_TIME_RANGE", ["input", "endsAt"]),
        ({"capacity": 11}, "CAPACITY_EXCEEDS_VENUE", ["input", "capacity"]),
        ({"kind": "CLASS"}, "COURSE_REQUIRED", ["input", "courseId"]),
        ({"repeatWeekly": 53}, "BAD_USER_INPUT", ["input", "repeatWeekly"]),
        ({"venueId": "bm9wZQ"}, "NOT_FOUND", ["input", "venueId"]),
    ]
    for override, code, field in cases:
        data = await coordinator.data(SCHEDULE, {"input": {
            "kind": "HELP_SESSION", "venueId": venue["id"], "startsAt": _iso(starts),
            "endsAt": _iso(starts + timedelta(hours=2)), **override}})
        payload = data["scheduleSession"]
        assert payload["sessions"] == []
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)], override
    assert await Session.all().count() == 0


# --- residents ---------------------------------------------------------------------------

async def test_create_resident_normalises_the_phone_number(gql):
    data = await gql().data(CREATE_RESIDENT, {"input": {
        "familyName": "山田", "givenName": "花子", "phone": "０９０-1234-5678",
        "birthDate": "1948-04-02", "contactPreference": "SMS", "smsConsent": True}})
    payload = data["createResident"]
    assert payload["errors"] == []
    resident = payload["resident"]
    assert resident["phone"] == "090-1234-5678"
    assert resident["birthDate"] == "1948-04-02"
    assert resident["contactPreference"] == "SMS"
    stored = await Resident.get()
    assert stored.phone == "+819012345678"


async def test_a_bad_phone_number_is_a_user_error_and_creates_nobody(gql):
    for typed in ("0463-21-1111", "090-1234", "でんわ"):
        data = await gql().data(CREATE_RESIDENT, {"input": {
            "familyName": "山田", "givenName": "太郎", "phone": typed}})
        payload = data["createResident"]
        assert payload["resident"] is None
        [error] = payload["errors"]
        assert error["code"] == "INVALID_PHONE", typed
        assert error["field"] == ["input", "phone"]
        assert error["message"]
    assert await Resident.all().count() == 0
    residents = await gql().data("{ residents { totalCount } }")
    assert residents["residents"]["totalCount"] == 0


@pytest.mark.parametrize(("mutation", "input_type", "base", "field", "limit"), [
    ("createResident", "CreateResidentInput", {"familyName": "山田", "givenName": "花子"}, "kana", 100),
    ("createResident", "CreateResidentInput", {"familyName": "山田", "givenName": "花子"}, "district", 100),
    ("createSupporter", "CreateSupporterInput", {"displayName": "佐藤", "affiliation": "NPO"}, "kana", 100),
    ("createSupporter", "CreateSupporterInput", {"displayName": "佐藤", "affiliation": "NPO"},
     "organisation", 200),
    ("createSupporter", "CreateSupporterInput", {"displayName": "佐藤", "affiliation": "NPO"}, "email", 254),
])
async def test_overlong_text_is_a_user_error_not_an_internal_error(gql, mutation, input_type, base, field,
                                                                   limit):
    """Issue 2: validation problems come back as UserError codes in the payload and change nothing."""
    query = f"mutation ($input: {input_type}!) {{ {mutation}(input: $input) {{ errors {{ code field }} }} }}"

    def text(length: int) -> str:
        return "a" * (length - 8) + "@test.jp" if field == "email" else "ア" * length

    body = await gql()(query, {"input": {**base, field: text(limit + 1)}})
    assert "errors" not in body, body  # today: INTERNAL (tortoise ValidationError from the model)
    assert body["data"][mutation]["errors"] == [{"code": "TOO_LONG", "field": ["input", field]}]
    assert await Resident.all().count() + await Supporter.all().count() == 0
    fits = await gql().data(query, {"input": {**base, field: text(limit)}})
    assert fits[mutation]["errors"] == []


# --- registrations, waitlist, staffing ---------------------------------------------------

async def test_register_until_full_then_waitlist_and_promotion(gql):
    coordinator = gql()
    session = await _class_session(coordinator, starts=at(days=7, hour=10), capacity=2)
    residents = [await _resident(coordinator, given=f"花子{i}") for i in range(5)]

    results = [await _register(coordinator, session["id"], r) for r in residents[:4]]
    assert [r["registration"]["status"] for r in results] == [
        "CONFIRMED", "CONFIRMED", "WAITLISTED", "WAITLISTED"]
    assert [r["registration"]["waitlistPosition"] for r in results] == [None, None, 1, 2]
    assert all(r["registration"]["source"] == "PHONE" for r in results)

    again = await _register(coordinator, session["id"], residents[0])
    assert again["registration"] is None
    assert again["errors"][0]["code"] == "ALREADY_REGISTERED"

    state = (await coordinator.data(SESSION, {"id": session["id"]}))["node"]
    assert (state["seatsTaken"], state["seatsLeft"], state["waitlistLength"]) == (2, 0, 2)
    assert state["registrations"]["totalCount"] == 4
    assert [e["node"]["waitlistPosition"] for e in state["waitlist"]["edges"]] == [1, 2]

    # A confirmed seat is cancelled: the first on the waitlist takes it, the second moves up.
    cancelled = (await coordinator.data(CANCEL, {"id": results[0]["registration"]["id"]}))
    assert cancelled["cancelRegistration"]["registration"]["status"] == "CANCELLED"
    promoted = await coordinator.data(
        "query ($a: ID!, $b: ID!) { a: node(id: $a) { ... on Registration { status waitlistPosition } }"
        " b: node(id: $b) { ... on Registration { status waitlistPosition } } }",
        {"a": results[2]["registration"]["id"], "b": results[3]["registration"]["id"]})
    assert promoted["a"] == {"status": "CONFIRMED", "waitlistPosition": None}
    assert promoted["b"] == {"status": "WAITLISTED", "waitlistPosition": 1}

    state = (await coordinator.data(SESSION, {"id": session["id"]}))["node"]
    assert (state["seatsTaken"], state["seatsLeft"], state["waitlistLength"]) == (2, 0, 1)

    # The promoted resident has no SMS: staff get a phone call to make today.
    follow_ups = await coordinator.data(
        "{ followUps(status: OPEN) { totalCount edges { node { channel dueOn purpose "
        "registration { id } } } } }")
    [edge] = follow_ups["followUps"]["edges"]
    assert edge["node"]["channel"] == "PHONE_CALL"
    assert edge["node"]["dueOn"] == datetime.now(TOKYO).date().isoformat()
    assert edge["node"]["registration"]["id"] == results[2]["registration"]["id"]

    # Cancelling a waitlist place closes the gap; a fifth person queues behind.
    late = await _register(coordinator, session["id"], residents[4])
    assert late["registration"]["waitlistPosition"] == 2
    await coordinator.data(CANCEL, {"id": results[3]["registration"]["id"]})
    row = await Registration.get(id=int(_pk(late["registration"]["id"])))
    assert row.waitlist_position == 1

    twice = await coordinator.data(CANCEL, {"id": results[0]["registration"]["id"]})
    assert twice["cancelRegistration"]["errors"][0]["code"] == "ALREADY_CANCELLED"


def _pk(global_id: str) -> int:
    from divide_support.core.ids import parse_global_id

    parsed = parse_global_id(global_id)
    assert parsed is not None
    return parsed[1]


async def test_staffing_numbers_and_understaffed_lists(gql, town):
    coordinator = gql()
    soon = await _class_session(coordinator, starts=at(days=3, hour=10), capacity=10)
    later = await _class_session(coordinator, starts=at(days=9, hour=13), capacity=10)
    far = await _class_session(coordinator, starts=at(days=45, hour=10), capacity=10)
    assert soon["requiredSupporters"] == 1 and soon["understaffed"] is True

    for i in range(5):
        await _register(coordinator, soon["id"], await _resident(coordinator, given=f"次郎{i}"))
    state = (await coordinator.data(SESSION, {"id": soon["id"]}))["node"]
    assert state["seatsTaken"] == 5 and state["seatsLeft"] == 5 and state["waitlistLength"] == 0
    assert state["requiredSupporters"] == 2  # 1 per 4 confirmed attendees, rounded up
    assert state["understaffed"] is True

    certified = await factories.supporter(town.coordinator, certified=True, name="佐藤 健")
    helper = await factories.supporter(town.coordinator, certified=False, name="鈴木 花")
    helper_id = _gid("Supporter", helper.id)
    certified_id = _gid("Supporter", certified.id)

    # An uncertified supporter cannot lead; an assistant alone leaves the class without a LEAD.
    refused = await coordinator.data(ASSIGN, {"sessionId": soon["id"], "supporterId": helper_id,
                                              "role": "LEAD"})
    assert refused["assignSupporter"]["errors"][0]["code"] == "LEAD_NOT_CERTIFIED"
    data = await coordinator.data(ASSIGN, {"sessionId": soon["id"], "supporterId": helper_id,
                                           "role": "ASSISTANT"})
    assert data["assignSupporter"]["errors"] == []
    state = (await coordinator.data(SESSION, {"id": soon["id"]}))["node"]
    assert state["understaffed"] is True and state["hasCertifiedLead"] is False

    data = await coordinator.data(ASSIGN, {"sessionId": soon["id"], "supporterId": certified_id,
                                           "role": "LEAD"})
    assignment = data["assignSupporter"]["assignment"]
    assert assignment["role"] == "LEAD"
    assert assignment["supporter"]["id"] == certified_id
    assert assignment["session"]["id"] == soon["id"]
    state = (await coordinator.data(SESSION, {"id": soon["id"]}))["node"]
    assert state["understaffed"] is False and state["hasCertifiedLead"] is True
    assert sorted(a["role"] for a in state["assignments"]) == ["ASSISTANT", "LEAD"]

    # The LEAD is busy at that time now.
    clash = await _class_session(coordinator, starts=at(days=3, hour=11), capacity=10)
    data = await coordinator.data(ASSIGN, {"sessionId": clash["id"], "supporterId": certified_id,
                                           "role": "LEAD"})
    assert data["assignSupporter"]["errors"][0]["code"] == "SUPPORTER_DOUBLE_BOOKED"

    listed = await coordinator.data(
        "{ sessions(understaffed: true) { totalCount edges { node { id understaffed } } } }")
    ids = [e["node"]["id"] for e in listed["sessions"]["edges"]]
    assert soon["id"] not in ids
    assert {later["id"], far["id"], clash["id"]} <= set(ids)
    assert all(e["node"]["understaffed"] for e in listed["sessions"]["edges"])
    staffed = await coordinator.data("{ sessions(understaffed: false) { edges { node { id } } } }")
    assert [e["node"]["id"] for e in staffed["sessions"]["edges"]] == [soon["id"]]

    coming = await coordinator.data(
        "{ understaffedSessions(weeks: 4) { id startsAt requiredSupporters understaffed } }")
    coming_ids = [s["id"] for s in coming["understaffedSessions"]]
    assert coming_ids == [clash["id"], later["id"]]  # soonest first; 45 days out is beyond 4 weeks
    assert far["id"] not in coming_ids

    refused = await coordinator("{ understaffedSessions(weeks: 0) { id } }")
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_explicit_required_supporters_raises_the_number(gql):
    session = await _class_session(gql(), starts=at(days=4, hour=10), capacity=8,
                                   requiredSupporters=3)
    assert session["requiredSupporters"] == 3


# --- on the day and afterwards -----------------------------------------------------------

async def test_past_session_from_paper_walk_ins_attendance_and_follow_up(gql, town):
    coordinator = gql()
    session_date = (datetime.now(TOKYO) - timedelta(days=2)).date()
    starts = datetime(session_date.year, session_date.month, session_date.day, 10, tzinfo=TOKYO)
    session = await _class_session(coordinator, starts=starts, capacity=10)
    assert session["status"] == "COMPLETED"
    resident = await _resident(coordinator, "高橋", "一郎", phone="080-1111-2222",
                               contactPreference="SMS", smsConsent=True)
    other = await _resident(coordinator, "田中", "和子")

    # Only walk-ins (from the paper sign-in sheet) go into a session that has started.
    refused = await _register(coordinator, session["id"], resident, "PHONE")
    assert refused["registration"] is None
    assert refused["errors"][0]["code"] == "SESSION_NOT_OPEN"
    walk_in = await _register(coordinator, session["id"], resident, "WALK_IN")
    assert walk_in["errors"] == []
    assert walk_in["registration"]["status"] == "CONFIRMED"
    assert walk_in["registration"]["source"] == "WALK_IN"
    no_show = await _register(coordinator, session["id"], other, "WALK_IN")

    data = await coordinator.data(ATTENDANCE, {"id": walk_in["registration"]["id"],
                                               "attendance": "ATTENDED"})
    recorded = data["recordAttendance"]
    assert recorded["errors"] == []
    assert recorded["registration"]["attendance"] == "ATTENDED"
    assert datetime.fromisoformat(recorded["registration"]["checkedInAt"]).utcoffset() == \
        timedelta(hours=9)
    data = await coordinator.data(ATTENDANCE, {"id": no_show["registration"]["id"],
                                               "attendance": "NO_SHOW"})
    assert data["recordAttendance"]["registration"]["attendance"] == "NO_SHOW"

    follow_ups = await coordinator.data("""{
      followUps(status: OPEN) { totalCount edges { node {
        id dueOn channel status outcome purpose resident { id familyName }
        registration { id attendance }
      } } }
    }""")
    assert follow_ups["followUps"]["totalCount"] == 1  # ATTENDED only, not the no-show
    node = follow_ups["followUps"]["edges"][0]["node"]
    assert node["dueOn"] == (session_date + timedelta(days=14)).isoformat()
    assert node["channel"] == "SMS"  # the resident's preferred channel
    assert node["status"] == "OPEN" and node["outcome"] is None
    assert node["resident"] == {"id": resident, "familyName": "高橋"}
    assert node["registration"]["id"] == walk_in["registration"]["id"]

    due_filter = await coordinator.data(
        "query ($d: Date!) { followUps(dueBefore: $d) { totalCount } }",
        {"d": (session_date + timedelta(days=14)).isoformat()})
    assert due_filter["followUps"]["totalCount"] == 0

    done = await coordinator.data("""mutation ($id: ID!) {
      completeFollowUp(input: {followUpId: $id, outcome: USES_INDEPENDENTLY,
                               notes: "LINEで家族と写真をやりとりできている"}) {
        followUp { id status outcome completedAt notes } errors { code field }
      }
    }""", {"id": node["id"]})
    completed = done["completeFollowUp"]
    assert completed["errors"] == []
    assert completed["followUp"]["status"] == "DONE"
    assert completed["followUp"]["outcome"] == "USES_INDEPENDENTLY"
    assert completed["followUp"]["completedAt"]
    assert "LINEで家族と写真" in completed["followUp"]["notes"]

    open_now = await coordinator.data("{ followUps(status: OPEN) { totalCount } }")
    assert open_now["followUps"]["totalCount"] == 0
    again = await coordinator.data("""mutation ($id: ID!) {
      completeFollowUp(input: {followUpId: $id, outcome: DECLINED}) { errors { code } }
    }""", {"id": node["id"]})
    assert again["completeFollowUp"]["errors"][0]["code"] == "FOLLOW_UP_CLOSED"


async def test_attendance_waits_for_the_start(gql):
    coordinator = gql()
    session = await _class_session(coordinator, starts=at(days=2, hour=10))
    registration = await _register(coordinator, session["id"], await _resident(coordinator))
    data = await coordinator.data(ATTENDANCE, {"id": registration["registration"]["id"],
                                               "attendance": "ATTENDED"})
    assert data["recordAttendance"]["registration"] is None
    assert data["recordAttendance"]["errors"][0]["code"] == "SESSION_NOT_STARTED"
    stored = await Registration.get(id=_pk(registration["registration"]["id"]))
    assert stored.attendance is None


# --- Relay connections -------------------------------------------------------------------

PAGE = """query ($first: Int, $after: String) {
  sessions(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id startsAt } }
  }
}"""


async def _many_sessions(gql, count: int) -> None:
    """`count` help sessions in weekly series (at most 53 per call)."""
    venue = (await gql.data(CREATE_VENUE, {"input": {"name": "デジタルステーション",
                                                     "kind": "DIGITAL_STATION"}}))
    venue_id = venue["createVenue"]["venue"]["id"]
    hour = 9
    while count > 0:
        batch = min(count, 53)
        starts = at(days=1, hour=hour)
        data = await gql.data(SCHEDULE, {"input": {
            "kind": "HELP_SESSION", "venueId": venue_id, "startsAt": _iso(starts),
            "endsAt": _iso(starts + timedelta(hours=1)), "repeatWeekly": batch - 1,
            "keepClosedDays": True}})
        assert data["scheduleSession"]["errors"] == []
        count -= batch
        hour += 1


async def test_connections_page_with_first_and_after(gql):
    coordinator = gql()
    await _many_sessions(coordinator, 7)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        data = (await coordinator.data(PAGE, {"first": 3, "after": after}))["sessions"]
        pages += 1
        assert data["totalCount"] == 7
        assert data["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert data["pageInfo"]["startCursor"] == data["edges"][0]["cursor"]
        assert data["pageInfo"]["endCursor"] == data["edges"][-1]["cursor"]
        seen += [e["node"]["id"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    everything = (await coordinator.data(PAGE, {"first": 10}))["sessions"]
    assert [e["node"]["id"] for e in everything["edges"]] == seen
    times = [datetime.fromisoformat(e["node"]["startsAt"]) for e in everything["edges"]]
    assert times == sorted(times)
    assert everything["pageInfo"]["hasNextPage"] is False

    # The default page is 20; zero items is allowed; a page past the end is empty.
    empty = (await coordinator.data(PAGE, {"first": 0}))["sessions"]
    assert empty["edges"] == [] and empty["totalCount"] == 7
    beyond = (await coordinator.data(PAGE, {"first": 5, "after": everything["edges"][-1]["cursor"]}))
    assert beyond["sessions"]["edges"] == []
    assert beyond["sessions"]["pageInfo"]["hasNextPage"] is False


async def test_page_size_is_capped_at_100(gql):
    coordinator = gql()
    await _many_sessions(coordinator, 106)
    data = (await coordinator.data(PAGE, {"first": 1000}))["sessions"]
    assert data["totalCount"] == 106
    assert len(data["edges"]) == 100
    assert data["pageInfo"]["hasNextPage"] is True
    rest = (await coordinator.data(PAGE, {"first": 1000, "after": data["pageInfo"]["endCursor"]}))
    assert len(rest["sessions"]["edges"]) == 6
    default = (await coordinator.data(PAGE, {}))["sessions"]
    assert len(default["edges"]) == 20


async def test_negative_first_and_bad_cursors_are_errors(gql):
    coordinator = gql()
    await _many_sessions(coordinator, 2)
    for variables in ({"first": -1}, {"after": "not-a-cursor"}, {"after": "b2Zmc2V0Oi01"}):
        body = await coordinator(PAGE, variables)
        assert body["data"] is None, variables
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", variables
        assert body["errors"][0]["path"] == ["sessions"]


async def test_nested_connections_page_too(gql, town):
    coordinator = gql()
    session = await _class_session(coordinator, starts=at(days=6, hour=10), capacity=30)
    for i in range(5):
        await _register(coordinator, session["id"], await _resident(coordinator, given=f"三郎{i}"))
    query = """query ($id: ID!, $after: String) { node(id: $id) { ... on Session {
      registrations(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor }
                                               edges { node { id } } } } } }"""
    first = (await coordinator.data(query, {"id": session["id"]}))["node"]["registrations"]
    assert first["totalCount"] == 5 and len(first["edges"]) == 2 and first["pageInfo"]["hasNextPage"]
    second = (await coordinator.data(query, {"id": session["id"],
                                             "after": first["pageInfo"]["endCursor"]}))
    ids = [e["node"]["id"] for e in first["edges"] + second["node"]["registrations"]["edges"]]
    assert len(set(ids)) == 4
