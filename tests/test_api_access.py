"""Who may see and do what through the API: authentication, roles, tenancy, the PII audit trail."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import factories
import pytest
from conftest import PASSWORD
from factories import at
from tortoise import connections

from divide_support.accounts import service as accounts
from divide_support.accounts.models import AuthToken, User
from divide_support.api.schema import schema
from divide_support.audit.models import AuditEntry
from divide_support.core import timeutil
from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.followups.models import FollowUp, FollowUpStatus
from divide_support.people import service as people
from divide_support.people.models import Resident, SupporterAffiliation
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    Assignment,
    Attendance,
    Registration,
    RegistrationSource,
    RegistrationStatus,
    Session,
    SessionStatus,
    Venue,
)


def _gid(kind: str, pk: int) -> str:
    return to_global_id(kind, pk)


def _code(body: dict) -> str:
    return body["errors"][0]["extensions"]["code"]


# --- authentication ----------------------------------------------------------------------

# "eA" is base64 for "x": an ID that decodes to nothing, so no row is ever touched.
QUERIES = {
    "node": '{ node(id: "eA") { id } }',
    "me": "{ me { id } }",
    "venues": "{ venues { id } }",
    "courses": "{ courses { id } }",
    "sessions": "{ sessions { totalCount } }",
    "understaffedSessions": "{ understaffedSessions { id } }",
    "residents": "{ residents { totalCount } }",
    "supporters": "{ supporters { totalCount } }",
    "followUps": "{ followUps { totalCount } }",
    "auditLog": "{ auditLog { totalCount } }",
    "users": "{ users { totalCount } }",
    "residentsToPhoneSoon": "{ residentsToPhoneSoon { reason } }",
    "messages": "{ messages { totalCount } }",
    "residentsToPhone": '{ residentsToPhone(sessionId: "eA") { reason } }',
    "smsUsage": "{ smsUsage { month } }",
    "callUsage": "{ callUsage { month } }",
    "smsReplies": "{ smsReplies { totalCount } }",
    "surveys": "{ surveys { id } }",
    "activityReport": '{ activityReport(from: "2026-01-01", to: "2026-01-31") { csvUrl } }',
    "topicReport": '{ topicReport(surveyId: "eA", from: "2026-01-01", to: "2026-01-31") { band } }',
    "participationReport": '{ participationReport(surveyId: "eA", metric: "x", '
                           'filter: {from: "2026-01-01", to: "2026-01-31"}) { metric } }',
    "exportResident": '{ exportResident(residentId: "eA") }',
}
MUTATIONS = {
    "createVenue": 'createVenue(input: {name: "会場", kind: OTHER})',
    "createCourse": 'createCourse(input: {title: "講座", topic: OTHER, durationMinutes: 60})',
    "scheduleSession": 'scheduleSession(input: {kind: HELP_SESSION, venueId: "eA", '
                       'startsAt: "2030-01-01T10:00:00+09:00", endsAt: "2030-01-01T12:00:00+09:00"})',
    "rescheduleSession": 'rescheduleSession(input: {sessionId: "eA", capacity: 3})',
    "cancelSession": 'cancelSession(input: {sessionId: "eA"})',
    "createSupporter": 'createSupporter(input: {displayName: "支援員", affiliation: NPO})',
    "assignSupporter": 'assignSupporter(input: {sessionId: "eA", supporterId: "eA"})',
    "unassignSupporter": 'unassignSupporter(input: {assignmentId: "eA"})',
    "createResident": 'createResident(input: {familyName: "山田", givenName: "花子"})',
    "updateResident": 'updateResident(input: {residentId: "eA", givenName: "花"})',
    "register": 'register(input: {sessionId: "eA", residentId: "eA"})',
    "cancelRegistration": 'cancelRegistration(input: {registrationId: "eA"})',
    "recordAttendance": 'recordAttendance(input: {registrationId: "eA", attendance: ATTENDED})',
    "recordVisit": 'recordVisit(input: {sessionId: "eA", topic: OTHER, outcome: RESOLVED})',
    "scheduleFollowUp": 'scheduleFollowUp(input: {residentId: "eA", dueOn: "2030-01-01", '
                        'channel: PHONE_CALL})',
    "completeFollowUp": 'completeFollowUp(input: {followUpId: "eA", outcome: DECLINED})',
    "resendMessage": 'resendMessage(input: {messageId: "eA"})',
    "setSmsConsent": 'setSmsConsent(input: {residentId: "eA", consent: true})',
    "setCallConsent": 'setCallConsent(input: {residentId: "eA", consent: true})',
    "setSmsOptOut": 'setSmsOptOut(input: {residentId: "eA", optedOut: true})',
    "markReplyReviewed": 'markReplyReviewed(input: {replyId: "eA"})',
    "rotateCalendarFeedToken": 'rotateCalendarFeedToken(input: {supporterId: "eA"})',
    "importSurvey": 'importSurvey(input: {document: "x"})',
    "logout": "logout",
    "revokeUserTokens": 'revokeUserTokens(input: {userId: "eA"})',
    "eraseResident": 'eraseResident(input: {residentId: "eA"})',
    "setUserActive": 'setUserActive(input: {userId: "eA", active: false})',
    "updateSupporter": 'updateSupporter(input: {supporterId: "eA", certified: true})',
    "updateVenue": 'updateVenue(input: {venueId: "eA", hasWifi: true})',
    "createUser": 'createUser(input: {email: "new@example.jp", role: COORDINATOR})',
    "resetPassword": 'resetPassword(input: {userId: "eA"})',
    "changePassword": 'changePassword(input: {currentPassword: "a", newPassword: "b"})',
    "unlockLogin": 'unlockLogin(input: {email: "x@example.jp"})',
}


def test_every_root_field_is_covered_here():
    """A new operation must be added above, so its authentication is tested too."""
    graphql_schema = schema._schema
    assert set(graphql_schema.query_type.fields) == set(QUERIES)
    assert set(graphql_schema.mutation_type.fields) == set(MUTATIONS) | {"login"}


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_queries_need_a_token(gql, name):
    body = await gql(None)(QUERIES[name])
    assert _code(body) == "UNAUTHENTICATED", body
    assert body["errors"][0]["path"] == [name]


@pytest.mark.parametrize("name", sorted(MUTATIONS))
async def test_mutations_need_a_token(gql, name):
    body = await gql(None)(f"mutation {{ {MUTATIONS[name]} {{ errors {{ code }} }} }}")
    assert _code(body) == "UNAUTHENTICATED", body
    assert body["data"] is None


async def test_unauthenticated_mutation_changes_nothing(gql):
    await gql(None)(f"mutation {{ {MUTATIONS['createVenue']} {{ errors {{ code }} }} }}")
    await gql(None)(f"mutation {{ {MUTATIONS['createResident']} {{ errors {{ code }} }} }}")
    assert await Venue.all().count() == 0
    assert await Resident.all().count() == 0


async def test_login_and_introspection_need_no_token(gql, town):
    anonymous = gql(None)
    assert await anonymous.data("{ __schema { queryType { name } } }") == {
        "__schema": {"queryType": {"name": "Query"}}}
    assert await anonymous.data("{ __typename }") == {"__typename": "Query"}
    data = await anonymous.data("""mutation { login(input: {email: "hiratsuka-admin@example.jp",
                                   password: "correct-horse-battery"}) { token errors { code } } }""")
    assert data["login"]["token"]


@pytest.mark.parametrize("authorization", ["Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz",
                                           "bearer"])
async def test_bad_credentials_are_unauthenticated(client, town, authorization):
    response = await client.post("/graphql", json={"query": "{ me { id } }"},
                                 headers={"Authorization": authorization, "Accept": "application/json"})
    assert response.status_code == 200
    assert _code(response.json()) == "UNAUTHENTICATED"


async def test_expired_token_is_unauthenticated(gql, town):
    token = town.tokens[Role.COORDINATOR]
    assert (await gql(token=token).data("{ me { role } }"))["me"]["role"] == "COORDINATOR"
    updated = await AuthToken.filter(token_hash=accounts.hash_token(token)).update(
        expires_at=timeutil.now() - timedelta(seconds=1))
    assert updated == 1
    body = await gql(token=token)("{ me { role } }")
    assert _code(body) == "UNAUTHENTICATED"
    body = await gql(token=token)(f"mutation {{ {MUTATIONS['createVenue']} {{ errors {{ code }} }} }}")
    assert _code(body) == "UNAUTHENTICATED"
    assert await Venue.all().count() == 0


async def test_revoked_token_and_deactivated_user_are_unauthenticated(gql, town):
    coordinator, admin = town.tokens[Role.COORDINATOR], town.tokens[Role.ADMIN]
    data = await gql(token=coordinator).data("mutation { logout { revoked errors { code } } }")
    assert data["logout"] == {"revoked": True, "errors": []}
    assert _code(await gql(token=coordinator)("{ me { id } }")) == "UNAUTHENTICATED"
    await User.filter(id=town.admin.user_id).update(active=False)
    assert _code(await gql(token=admin)("{ me { id } }")) == "UNAUTHENTICATED"


async def test_tokens_and_passwords_are_stored_hashed(gql, town):
    data = await gql(None).data("""mutation { login(input: {email: "hiratsuka-planner@example.jp",
                                   password: "correct-horse-battery"}) { token } }""")
    tokens = [data["login"]["token"], *town.tokens.values()]
    conn = connections.get("default")
    rows = await conn.execute_query_dict("SELECT * FROM auth_token")
    assert len(rows) == 4
    dumped = repr(rows)
    for token in tokens:
        assert token not in dumped
    assert {row["token_hash"] for row in rows} == {
        hashlib.sha256(token.encode()).hexdigest() for token in tokens}
    users = await conn.execute_query_dict("SELECT password_hash FROM app_user")
    for user in users:
        assert user["password_hash"].startswith("$argon2")
        assert PASSWORD not in user["password_hash"]


# --- PLANNER -----------------------------------------------------------------------------

async def test_planner_sees_aggregates_but_no_people(gql, town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=5)
    resident = await factories.resident(town.coordinator, phone="090-2222-3333", sms=True)
    await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id)
    planner = gql(Role.PLANNER)

    data = await planner.data("{ sessions { totalCount edges { node { title capacity } } } }")
    assert data["sessions"]["edges"][0]["node"]["capacity"] == 5
    # One person in a session is a count of one: planners get it only through the reports.
    body = await planner("{ sessions { edges { node { seatsTaken } } } }")
    assert _code(body) == "FORBIDDEN"

    for query in ("{ residents { totalCount } }", "{ followUps { totalCount } }",
                  "{ auditLog { totalCount } }"):
        body = await planner(query)
        assert _code(body) == "FORBIDDEN", query
        assert body["data"] is None

    body = await planner("query ($id: ID!) { node(id: $id) { ... on Session { registrations "
                         "{ totalCount } } } }", {"id": _gid("Session", session.id)})
    assert _code(body) == "FORBIDDEN"
    body = await planner("query ($id: ID!) { node(id: $id) { id } }",
                         {"id": _gid("Resident", resident.id)})
    assert body == {"data": {"node": None}}
    assert await AuditEntry.filter(action="resident.pii_read").count() == 0


async def test_planner_mutations_are_forbidden_in_the_payload(gql, town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=5)
    resident = await factories.resident(town.coordinator)
    venue = await factories.venue(town.coordinator)
    planner = gql(Role.PLANNER)
    mutations = {
        "createResident": ('mutation { createResident(input: {familyName: "山田", givenName: "花子"}) '
                           '{ resident { id } errors { code field } } }', {}),
        "createVenue": (f"mutation {{ {MUTATIONS['createVenue']} {{ venue {{ id }} errors {{ code }} }} }}",
                        {}),
        "scheduleSession": ("""mutation ($v: ID!) { scheduleSession(input: {kind: HELP_SESSION, venueId: $v,
            startsAt: "2030-01-01T10:00:00+09:00", endsAt: "2030-01-01T12:00:00+09:00"})
            { sessions { id } errors { code } } }""", {"v": _gid("Venue", venue.id)}),
        "register": ("""mutation ($s: ID!, $r: ID!) { register(input: {sessionId: $s, residentId: $r})
            { registration { id } errors { code } } }""",
                     {"s": _gid("Session", session.id), "r": _gid("Resident", resident.id)}),
        "updateResident": ("""mutation ($r: ID!) { updateResident(input: {residentId: $r, givenName: "X"})
            { resident { id } errors { code } } }""", {"r": _gid("Resident", resident.id)}),
    }
    for name, (query, variables) in mutations.items():
        data = await planner.data(query, variables)
        payload = data[name]
        assert [e["code"] for e in payload["errors"]] == ["FORBIDDEN"], name
        assert all(v is None or v == [] for k, v in payload.items() if k != "errors"), name
    assert await Resident.all().count() == 1
    assert (await Resident.get()).given_name == resident.given_name
    assert await Registration.all().count() == 0
    assert await Session.all().count() == 1
    assert await Venue.all().count() == 2  # the factory session's venue and `venue`


# --- SUPPORTER ---------------------------------------------------------------------------

async def _supporter_login(town, **kwargs):
    return await factories.supporter_login(town, **kwargs)


ATTENDEES = """query ($id: ID!) { node(id: $id) { ... on Session {
  registrations { totalCount edges { node { id status resident {
    familyName givenName kana device phone landline birthDate birthYear notes } } } } } } }"""


async def test_supporter_sees_attendees_of_own_sessions_without_pii(gql, town):
    supporter, token = await _supporter_login(town)
    mine = await factories.session(town.coordinator, at(days=2, hour=10), capacity=5)
    other = await factories.session(town.coordinator, at(days=2, hour=14), capacity=5)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=mine.id,
                                      supporter_id=supporter.id)
    resident = await factories.resident(town.coordinator, "鈴木", "花子", phone="080-1234-5678",
                                        kana="ヤマダ ハナコ",
                                        sms=True, birth_date=factories.at(days=-365 * 78).date(),
                                        notes="耳が遠い", landline="0463-21-1111")
    mine_reg = await scheduling.register(actor=town.coordinator, session_id=mine.id,
                                         resident_id=resident.id)
    other_reg = await scheduling.register(actor=town.coordinator, session_id=other.id,
                                          resident_id=resident.id)
    helper = gql(token=token)

    data = await helper.data(ATTENDEES, {"id": _gid("Session", mine.id)})
    [edge] = data["node"]["registrations"]["edges"]
    person = edge["node"]["resident"]
    assert (person["familyName"], person["givenName"], person["kana"]) == ("鈴木", "花子", "ヤマダ ハナコ")
    for pii in ("phone", "landline", "birthDate", "birthYear", "notes"):
        assert person[pii] is None, pii

    body = await helper(ATTENDEES, {"id": _gid("Session", other.id)})
    assert _code(body) == "FORBIDDEN"
    assert body["errors"][0]["path"] == ["node", "registrations"]

    nodes = await helper.data(
        "query ($a: ID!, $b: ID!, $r: ID!) { a: node(id: $a) { id } b: node(id: $b) { id } "
        "r: node(id: $r) { id } }",
        {"a": _gid("Registration", mine_reg.id), "b": _gid("Registration", other_reg.id),
         "r": _gid("Resident", resident.id)})
    assert nodes["a"] == {"id": _gid("Registration", mine_reg.id)}
    assert nodes["b"] is None
    assert nodes["r"] is None  # residents are reached only through own sessions

    for query in ("{ residents { totalCount } }", "{ followUps { totalCount } }",
                  "{ auditLog { totalCount } }"):
        assert _code(await helper(query)) == "FORBIDDEN", query
    assert await AuditEntry.filter(action="resident.pii_read").count() == 0


async def test_supporter_sees_own_phone_but_not_a_colleagues(gql, town):
    supporter, token = await _supporter_login(town)
    colleague = await people.create_supporter(
        actor=town.coordinator, display_name="高橋 一", affiliation=SupporterAffiliation.NPO,
        phone="090-7777-8888")
    data = await gql(token=token).data(
        "query ($a: ID!, $b: ID!) { a: node(id: $a) { ... on Supporter { phone } } "
        "b: node(id: $b) { ... on Supporter { phone } } me { role supporter { id } } }",
        {"a": _gid("Supporter", supporter.id), "b": _gid("Supporter", colleague.id)})
    assert data["a"] == {"phone": "090-5555-6666"}
    assert data["b"] == {"phone": None}
    assert data["me"] == {"role": "SUPPORTER", "supporter": {"id": _gid("Supporter", supporter.id)}}
    staff = await gql().data("query ($b: ID!) { node(id: $b) { ... on Supporter { phone } } }",
                             {"b": _gid("Supporter", colleague.id)})
    assert staff["node"] == {"phone": "090-7777-8888"}
    planner = await gql(Role.PLANNER).data(
        "query ($b: ID!) { node(id: $b) { ... on Supporter { phone } } }",
        {"b": _gid("Supporter", colleague.id)})
    assert planner["node"] is None  # planners see no supporter at all (aggregates only)


async def test_supporter_records_attendance_only_where_assigned(gql, town):
    supporter, token = await _supporter_login(town)
    running = await factories.session(town.coordinator, at() - timedelta(minutes=30),
                                      hours=2, capacity=5)
    elsewhere = await factories.session(town.coordinator, at() - timedelta(minutes=30), hours=2,
                                        capacity=5)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=running.id,
                                      supporter_id=supporter.id)
    resident = await factories.resident(town.coordinator)
    here = await scheduling.register(actor=town.coordinator, session_id=running.id,
                                     resident_id=resident.id, source=RegistrationSource.WALK_IN)
    there = await scheduling.register(actor=town.coordinator, session_id=elsewhere.id,
                                      resident_id=resident.id, source=RegistrationSource.WALK_IN)
    query = """mutation ($id: ID!) { recordAttendance(input: {registrationId: $id, attendance: ATTENDED})
               { registration { attendance } errors { code } } }"""
    helper = gql(token=token)
    ok = await helper.data(query, {"id": _gid("Registration", here.id)})
    assert ok["recordAttendance"] == {"registration": {"attendance": "ATTENDED"}, "errors": []}
    refused = await helper.data(query, {"id": _gid("Registration", there.id)})
    assert refused["recordAttendance"]["errors"][0]["code"] == "FORBIDDEN"
    assert (await Registration.get(id=there.id)).attendance is None
    # Registering people is staff work.
    register = await helper.data(
        "mutation ($s: ID!, $r: ID!) { register(input: {sessionId: $s, residentId: $r, source: WALK_IN})"
        " { errors { code } } }",
        {"s": _gid("Session", running.id), "r": _gid("Resident", resident.id)})
    assert register["register"]["errors"][0]["code"] == "FORBIDDEN"


# --- PII audit ---------------------------------------------------------------------------

async def test_reading_resident_pii_is_audited(gql, town, client):
    first = await factories.resident(town.coordinator, "青木", phone="090-1111-2222", sms=True)
    second = await factories.resident(town.coordinator, "井上")
    before = await AuditEntry.filter(action="resident.pii_read").count()
    assert before == 0

    names = await gql().data("{ residents { edges { node { familyName kana device } } } }")
    assert len(names["residents"]["edges"]) == 2
    assert await AuditEntry.filter(action="resident.pii_read").count() == 0

    response = await gql().post("{ residents { edges { node { familyName phone } } } }",
                                **{"X-Request-ID": "audit-test-1"})
    phones = {e["node"]["familyName"]: e["node"]["phone"] for e in response.json()["data"]["residents"]["edges"]}
    assert phones == {"青木": "090-1111-2222", "井上": None}
    [entry] = await AuditEntry.filter(action="resident.pii_read")
    assert entry.municipality_id == town.municipality.id
    assert entry.actor_user_id == town.coordinator.user_id
    assert entry.actor_role == "COORDINATOR"
    assert entry.object_type == "Resident"
    assert entry.object_ids == sorted([first.id, second.id])
    assert entry.details == {"fields": ["phone"]}
    assert entry.request_id == response.headers["x-request-id"]

    await gql(Role.ADMIN).data(
        "query ($id: ID!) { node(id: $id) { ... on Resident { birthDate notes } } }",
        {"id": _gid("Resident", second.id)})
    latest = await AuditEntry.filter(action="resident.pii_read").order_by("-id").first()
    assert latest is not None and latest.id != entry.id
    assert latest.actor_role == "ADMIN"
    assert latest.object_ids == [second.id]
    assert latest.details == {"fields": ["birthDate", "notes"]}

    # The admin can read the trail through the API.
    log = await gql(Role.ADMIN).data(
        '{ auditLog(action: "resident.pii_read") { totalCount edges { node { action actorRole '
        "objectType objectIds requestId details } } } }")
    assert log["auditLog"]["totalCount"] == 2
    newest = log["auditLog"]["edges"][0]["node"]
    assert newest["actorRole"] == "ADMIN"
    assert newest["objectIds"] == [_gid("Resident", second.id)]
    assert log["auditLog"]["edges"][1]["node"]["requestId"] == entry.request_id


async def test_pii_hidden_from_planner_and_supporter_is_not_audited(gql, town):
    supporter, token = await _supporter_login(town)
    session = await factories.session(town.coordinator, at(days=2, hour=10), capacity=5)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                      supporter_id=supporter.id)
    resident = await factories.resident(town.coordinator, phone="090-3333-4444", sms=True)
    await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id)

    data = await gql(token=token).data(ATTENDEES, {"id": _gid("Session", session.id)})
    assert data["node"]["registrations"]["edges"][0]["node"]["resident"]["phone"] is None
    body = await gql(Role.PLANNER)("{ residents { edges { node { phone } } } }")
    assert _code(body) == "FORBIDDEN"
    assert await AuditEntry.filter(action="resident.pii_read").count() == 0


# --- audit log access --------------------------------------------------------------------

async def test_audit_log_is_admin_only_and_per_municipality(gql, town, other_town):
    await factories.resident(town.coordinator)
    await factories.resident(other_town.coordinator)
    data = await gql(Role.ADMIN).data(
        "{ auditLog(first: 100) { totalCount edges { node { action actorEmail objectType } } } }")
    entries = [e["node"] for e in data["auditLog"]["edges"]]
    assert data["auditLog"]["totalCount"] == len(entries)
    assert {"action": "resident.create", "actorEmail": "hiratsuka-coordinator@example.jp",
            "objectType": "Resident"} in entries
    assert not any((e["actorEmail"] or "").startswith("yaizu") for e in entries)
    own = await AuditEntry.filter(municipality_id=town.municipality.id).count()
    assert data["auditLog"]["totalCount"] == own
    for role in (Role.COORDINATOR, Role.PLANNER):
        body = await gql(role)("{ auditLog { totalCount } }")
        assert _code(body) == "FORBIDDEN", role


# --- tenancy -----------------------------------------------------------------------------

async def _foreign_world(other_town):
    actor = other_town.coordinator
    session = await factories.session(actor, at(days=4, hour=10), capacity=5)
    past = await factories.session(actor, at(days=-1, hour=10), capacity=5)
    resident = await factories.resident(actor, "外山")
    supporter = await factories.supporter(actor)
    registration = await scheduling.register(actor=actor, session_id=session.id,
                                             resident_id=resident.id)
    walk_in = await scheduling.register(actor=actor, session_id=past.id, resident_id=resident.id,
                                        source=RegistrationSource.WALK_IN)
    await scheduling.record_attendance(actor=actor, registration_id=walk_in.id,
                                       attendance=Attendance.ATTENDED)
    assignment = await scheduling.assign_supporter(actor=actor, session_id=session.id,
                                                   supporter_id=supporter.id)
    follow_up = await FollowUp.get(registration_id=walk_in.id)
    venue = await Venue.get(id=session.venue_id)
    return {
        "Session": session, "Resident": resident, "Supporter": supporter, "Venue": venue,
        "Registration": registration, "Assignment": assignment, "FollowUp": follow_up,
    }


async def test_node_of_another_municipality_is_null(gql, town, other_town):
    foreign = await _foreign_world(other_town)
    ids = {kind: _gid(kind, row.id) for kind, row in foreign.items()}
    ids["Municipality"] = _gid("Municipality", other_town.municipality.id)
    ids["User"] = _gid("User", other_town.admin.user_id)
    query = "query (" + ", ".join(f"${k}: ID!" for k in ids) + ") { " + " ".join(
        f"{k}: node(id: ${k}) {{ id }}" for k in ids) + " }"
    for role in (Role.ADMIN, Role.COORDINATOR, Role.PLANNER):
        data = await gql(role).data(query, ids)
        assert data == dict.fromkeys(ids), role
    # The owner sees them (the IDs are real).
    owner = await gql(token=other_town.tokens[Role.ADMIN]).data(query, ids)
    assert all(owner[kind] == {"id": ids[kind]} for kind in ids if kind != "Municipality")


async def test_lists_show_only_the_callers_municipality(gql, town, other_town):
    foreign = await _foreign_world(other_town)
    own_session = await factories.session(town.coordinator, at(days=4, hour=10), capacity=5)
    data = await gql().data(
        "{ sessions { totalCount edges { node { id } } } residents { totalCount } "
        "supporters { totalCount } venues { id } followUps { totalCount } "
        "understaffedSessions { id } }")
    assert [e["node"]["id"] for e in data["sessions"]["edges"]] == [_gid("Session", own_session.id)]
    assert data["sessions"]["totalCount"] == 1
    assert data["residents"]["totalCount"] == 0
    assert data["supporters"]["totalCount"] == 0
    assert data["venues"] == [{"id": _gid("Venue", own_session.venue_id)}]
    assert data["followUps"]["totalCount"] == 0
    assert [s["id"] for s in data["understaffedSessions"]] == [_gid("Session", own_session.id)]
    by_venue = await gql().data("query ($v: ID!) { sessions(venueId: $v) { totalCount } }",
                                {"v": _gid("Venue", foreign["Venue"].id)})
    assert by_venue["sessions"]["totalCount"] == 0


async def test_mutations_with_foreign_ids_are_not_found_and_change_nothing(gql, town, other_town):
    foreign = await _foreign_world(other_town)
    own_session = await factories.session(town.coordinator, at(days=5, hour=10), capacity=5)
    own_resident = await factories.resident(town.coordinator)
    f = {kind: _gid(kind, row.id) for kind, row in foreign.items()}
    own = {"Session": _gid("Session", own_session.id), "Resident": _gid("Resident", own_resident.id)}
    audit_before = await AuditEntry.all().count()
    snapshot = {
        "session": await Session.get(id=foreign["Session"].id),
        "resident": await Resident.get(id=foreign["Resident"].id),
    }

    cases = [
        ("register", f'sessionId: "{f["Session"]}", residentId: "{own["Resident"]}"', ["input", "sessionId"]),
        ("register", f'sessionId: "{own["Session"]}", residentId: "{f["Resident"]}"', ["input", "residentId"]),
        ("cancelRegistration", f'registrationId: "{f["Registration"]}"', ["input", "registrationId"]),
        ("recordAttendance", f'registrationId: "{f["Registration"]}", attendance: NO_SHOW',
         ["input", "registrationId"]),
        ("assignSupporter", f'sessionId: "{own["Session"]}", supporterId: "{f["Supporter"]}"',
         ["input", "supporterId"]),
        ("assignSupporter", f'sessionId: "{f["Session"]}", supporterId: "{f["Supporter"]}"',
         ["input", "sessionId"]),
        ("unassignSupporter", f'assignmentId: "{f["Assignment"]}"', ["input", "assignmentId"]),
        ("rescheduleSession", f'sessionId: "{f["Session"]}", startsAt: "2030-01-01T10:00:00+09:00"',
         ["input", "sessionId"]),
        ("cancelSession", f'sessionId: "{f["Session"]}"', ["input", "sessionId"]),
        ("updateResident", f'residentId: "{f["Resident"]}", familyName: "乗っ取り"', ["input", "residentId"]),
        ("scheduleSession", f'kind: HELP_SESSION, venueId: "{f["Venue"]}", '
                            'startsAt: "2030-01-01T10:00:00+09:00", endsAt: "2030-01-01T12:00:00+09:00"',
         ["input", "venueId"]),
        ("recordVisit", f'sessionId: "{f["Session"]}", topic: OTHER, outcome: RESOLVED', ["input", "sessionId"]),
        ("scheduleFollowUp", f'residentId: "{f["Resident"]}", dueOn: "2030-01-01", channel: PHONE_CALL',
         ["input", "residentId"]),
        ("completeFollowUp", f'followUpId: "{f["FollowUp"]}", outcome: DECLINED', ["input", "followUpId"]),
    ]
    for role in (Role.COORDINATOR, Role.ADMIN):
        for name, arguments, field in cases:
            data = await gql(role).data(f"mutation {{ {name}(input: {{{arguments}}}) "
                                        "{ errors { code field } } }")
            assert data[name]["errors"] == [{"code": "NOT_FOUND", "field": field}], (role, name)

    # Nothing changed; each refused attempt is on the record, in the caller's municipality.
    assert await AuditEntry.exclude(action="mutation.refused").count() == audit_before
    refused = await AuditEntry.filter(action="mutation.refused")
    assert len(refused) == 2 * len(cases)
    assert {e.municipality_id for e in refused} == {town.municipality.id}
    assert {e.details["code"] for e in refused} == {"NOT_FOUND"}
    session = await Session.get(id=foreign["Session"].id)
    assert (session.starts_at, session.status, session.sequence) == (
        snapshot["session"].starts_at, SessionStatus.SCHEDULED, snapshot["session"].sequence)
    assert (await Resident.get(id=foreign["Resident"].id)).family_name == "外山"
    registration = await Registration.get(id=foreign["Registration"].id)
    assert registration.status == RegistrationStatus.CONFIRMED and registration.attendance is None
    assert await Assignment.filter(id=foreign["Assignment"].id).exists()
    assert (await FollowUp.get(id=foreign["FollowUp"].id)).status == FollowUpStatus.OPEN
    assert await Registration.filter(session_id=own_session.id).count() == 0
    assert await Session.filter(municipality_id=town.municipality.id).count() == 1
    assert await FollowUp.filter(municipality_id=town.municipality.id).count() == 0


async def test_users_are_visible_to_admins_and_to_themselves(gql, town):
    ids = {"coordinator": _gid("User", town.coordinator.user_id),
           "planner": _gid("User", town.planner.user_id)}
    query = ("query ($c: ID!, $p: ID!) { c: node(id: $c) { ... on User { email role } } "
             "p: node(id: $p) { ... on User { email role } } }")
    variables = {"c": ids["coordinator"], "p": ids["planner"]}
    as_coordinator = await gql().data(query, variables)
    assert as_coordinator["c"] == {"email": "hiratsuka-coordinator@example.jp", "role": "COORDINATOR"}
    assert as_coordinator["p"] is None
    as_admin = await gql(Role.ADMIN).data(query, variables)
    assert as_admin["p"] == {"email": "hiratsuka-planner@example.jp", "role": "PLANNER"}
    for role in Role.ADMIN, Role.COORDINATOR, Role.PLANNER:
        me = await gql(role).data("{ me { role municipality { code } supporter { id } } }")
        assert me["me"] == {"role": role.value, "municipality": {"code": "142034"}, "supporter": None}
