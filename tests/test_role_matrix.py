"""The role matrix: every query field and every mutation of the schema, run as each role
(ADMIN, COORDINATOR, SUPPORTER, PLANNER, anonymous) and as an ADMIN of another municipality,
against what the matrix below allows; then who reads which personal field. A field added to
the schema without an entry here fails `test_the_matrix_covers_the_whole_schema`.

The same matrix, in words, is in README.md ("Who may do what").
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from importlib.resources import files

import factories
import pytest
from conftest import GraphQLClient
from factories import at

from divide_support.accounts import service as accounts
from divide_support.api.schema import schema
from divide_support.audit.models import AuditEntry
from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.followups import service as followups
from divide_support.followups.models import FollowUpChannel
from divide_support.messaging import service as messaging
from divide_support.messaging.models import Message, MessageStatus
from divide_support.people import service as people
from divide_support.people.models import Resident, Supporter, SupporterAffiliation
from divide_support.reports.models import Survey
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    Assignment,
    CourseTopic,
    Registration,
    RegistrationSource,
    Session,
    SessionKind,
    VisitOutcome,
)
from divide_support.seed import load_reference_data

ADMIN, COORDINATOR, SUPPORTER, PLANNER = "ADMIN", "COORDINATOR", "SUPPORTER", "PLANNER"
ANONYMOUS, FOREIGN = "anonymous", "foreign admin"
LOGGED_IN = {ADMIN, COORDINATOR, SUPPORTER, PLANNER}
STAFF = {ADMIN, COORDINATOR}
ANALYSTS = {ADMIN, COORDINATOR, PLANNER}

# Who may run what (everyone else is refused: FORBIDDEN, or UNAUTHENTICATED without a login).
QUERY_MATRIX = {
    "node": LOGGED_IN, "me": LOGGED_IN, "venues": LOGGED_IN, "courses": LOGGED_IN,
    "sessions": LOGGED_IN, "understaffedSessions": LOGGED_IN,
    "residents": STAFF, "supporters": STAFF | {SUPPORTER}, "followUps": STAFF,
    "auditLog": {ADMIN}, "users": {ADMIN}, "messages": STAFF, "residentsToPhone": STAFF, "residentsToPhoneSoon": STAFF,
    "smsUsage": ANALYSTS, "callUsage": ANALYSTS,
    "smsReplies": STAFF, "surveys": ANALYSTS, "activityReport": ANALYSTS,
    "topicReport": ANALYSTS, "participationReport": ANALYSTS, "exportResident": {ADMIN},
}
MUTATION_MATRIX = {
    "login": LOGGED_IN | {ANONYMOUS},
    "createVenue": STAFF, "createCourse": STAFF, "scheduleSession": STAFF,
    "rescheduleSession": STAFF, "cancelSession": STAFF, "createSupporter": STAFF,
    "updateSupporter": STAFF, "updateVenue": STAFF,
    "assignSupporter": STAFF, "unassignSupporter": STAFF, "createResident": STAFF,
    "updateResident": STAFF, "register": STAFF, "cancelRegistration": STAFF,
    # a supporter, at the sessions they help at
    "recordAttendance": STAFF | {SUPPORTER}, "recordVisit": STAFF | {SUPPORTER},
    "scheduleFollowUp": STAFF, "completeFollowUp": STAFF, "resendMessage": STAFF,
    "setSmsConsent": STAFF, "setCallConsent": STAFF, "setSmsOptOut": STAFF, "markReplyReviewed": STAFF,
    # a supporter, for their own links
    "rotateCalendarFeedToken": STAFF | {SUPPORTER},
    "importSurvey": {ADMIN}, "revokeUserTokens": {ADMIN}, "setUserActive": {ADMIN},
    "eraseResident": {ADMIN}, "createUser": {ADMIN}, "resetPassword": {ADMIN},
    "unlockLogin": {ADMIN},
    # one's own password, given the current one
    "changePassword": LOGGED_IN,
    "logout": LOGGED_IN,
}

# Every field of the types that carry people's data, by what it is: "pii" fields are checked
# per role in FIELD_CASES below; "link" fields open data without a login (capability URLs).
SENSITIVE_TYPES = {
    "Resident": {"pii": {"phone", "landline", "birthDate", "birthYear", "notes"},
                 # whoever may see the resident as an attendee reads these (supportNeeds is
                 # audited on every read: tests/test_resident_support_needs.py)
                 "public": {"id", "familyName", "givenName", "kana", "contactPreference",
                            "smsConsent", "smsOptedOut", "callConsent",
                            "callConsentRecordedAt", "callConsentRecordedBy", "device", "district", "supportNeeds",
                            "registrations", "followUps", "messages"}},
    "Supporter": {"pii": {"phone"}, "link": {"calendarFeedUrl"},
                  "public": {"id", "displayName", "kana", "affiliation", "organisation",
                             "skills", "certified", "active", "assignments"}},
    "Visit": {"pii": {"notes"}, "public": {"id", "session", "resident", "ageAtVisit", "topic",
                                           "outcome", "helpedBy"}},
    "FollowUp": {"pii": {"notes"}, "public": {"id", "resident", "registration", "visit",
                                              "dueOn", "channel", "status", "purpose",
                                              "outcome", "assignedTo", "completedAt"}},
    "Message": {"pii": {"to"}, "public": {"id", "resident", "registration", "kind", "body",
                                          "segments", "encoding", "sendAfter", "status",
                                          "providerId", "errorCode", "attempts", "sentAt",
                                          "deliveredAt", "skipReason", "skipReasonText",
                                          "channel", "voiceScript", "callOutcome",
                                          "callOutcomeText", "callSeconds"}},
    "InboundMessage": {"pii": {"fromNumber"}, "public": {"id", "body", "action", "needsReview",
                                                         "receivedAt", "resident"}},
    "Registration": {"link": {"inviteUrl"}, "public": {
        "id", "resident", "session", "status", "waitlistPosition", "source", "attendance",
        # the slip's address names only the registration's ID; the file itself is staff-only
        # (tests/test_paper.py)
        "checkedInAt", "createdAt", "confirmationSlipUrl"}},
    "Assignment": {"link": {"inviteUrl"}, "public": {"id", "supporter", "session", "role"}},
}


def _gid(kind: str, pk: int) -> str:
    return to_global_id(kind, pk)


async def _world(town) -> dict:
    """Town A with one of everything each operation needs, plus objects only one operation
    touches (so the order of the runs does not matter)."""
    await load_reference_data()
    actor = town.coordinator
    supporter, supporter_token = await factories.supporter_login(town, name="役割 支援員")
    colleague = await people.create_supporter(
        actor=actor, display_name="同僚 支援員", affiliation=SupporterAffiliation.NPO,
        phone="090-2222-9999", certified=True)
    resident = await factories.resident(actor, "役割住民", sms=True, phone="090-1212-3434",
                                        landline="0463-55-6677", birth_date=date(1947, 5, 5),
                                        notes="玄関の段差に注意")
    newcomer = await factories.resident(actor, "新規住民")
    leaver = await factories.resident(actor, "取消住民")
    walk_in = await factories.resident(actor, "当日住民")
    to_erase = await factories.resident(actor, "消去住民")
    future = await factories.session(actor, at(days=5, hour=10), capacity=10)
    to_cancel = await factories.session(actor, at(days=6, hour=10), capacity=10)
    running = await factories.session(actor, at() - timedelta(minutes=30), hours=3,
                                      kind=SessionKind.HELP_SESSION, capacity=10)
    for session in (future, running):
        await scheduling.assign_supporter(actor=actor, session_id=session.id,
                                          supporter_id=supporter.id)
    second_duty = await scheduling.assign_supporter(actor=actor, session_id=future.id,
                                                    supporter_id=colleague.id)
    seat = await scheduling.register(actor=actor, session_id=future.id, resident_id=resident.id)
    leaving = await scheduling.register(actor=actor, session_id=future.id, resident_id=leaver.id)
    at_door = await scheduling.register(actor=actor, session_id=running.id,
                                        resident_id=walk_in.id,
                                        source=RegistrationSource.WALK_IN)
    visit = await scheduling.record_visit(actor=actor, data=scheduling.VisitInput(
        session_id=running.id, topic=CourseTopic.OTHER, outcome=VisitOutcome.RESOLVED,
        resident_id=walk_in.id, notes="付き添いの家族あり"))
    follow_up = await followups.schedule_follow_up(
        actor=actor, resident_id=resident.id, due_on=date.today() + timedelta(days=3),
        channel=FollowUpChannel.PHONE_CALL, notes="家族に電話")
    failed = await Message.filter(registration_id=seat.id).order_by("id").first()
    await Message.filter(id=failed.id).update(status=MessageStatus.FAILED, error_code="30003")
    inbound, _ = await messaging.receive_reply(
        provider_id="SM-matrix", from_number="+819012123434", body="了解です",
        municipality_code=town.municipality.code)
    extra = await accounts.create_user(email="extra@example.jp", role=Role.COORDINATOR,
                                       municipality_code=town.municipality.code,
                                       password="correct-horse-battery")
    survey = await Survey.get(municipality_id=town.municipality.id,
                              key="hiratsuka-2020-internet-use")
    session_row = await Session.get(id=future.id)
    ids = {
        "venue": _gid("Venue", session_row.venue_id), "course": _gid("Course", session_row.course_id),
        "future": _gid("Session", future.id), "toCancel": _gid("Session", to_cancel.id),
        "running": _gid("Session", running.id), "supporter": _gid("Supporter", supporter.id),
        "colleague": _gid("Supporter", colleague.id),
        "secondDuty": _gid("Assignment", second_duty.id),
        "resident": _gid("Resident", resident.id), "newcomer": _gid("Resident", newcomer.id),
        "toErase": _gid("Resident", to_erase.id), "seat": _gid("Registration", seat.id),
        "leaving": _gid("Registration", leaving.id), "atDoor": _gid("Registration", at_door.id),
        "visit": _gid("Visit", visit.id), "followUp": _gid("FollowUp", follow_up.id),
        "failed": _gid("Message", failed.id), "reply": _gid("InboundMessage", inbound.id),
        "extraUser": _gid("User", extra.id), "survey": _gid("Survey", survey.id),
        "walkIn": _gid("Resident", walk_in.id),
    }
    return {"ids": ids, "supporter_token": supporter_token, "markers": [
        "役割住民", "新規住民", "取消住民", "当日住民", "消去住民", "同僚", "役割 支援員",
        "1212", "2222-9999", "玄関", "付き添い", "家族に電話", "了解です",
        *[v for k, v in ids.items() if k not in ("survey",)]]}


SURVEY_DOCUMENT = files("divide_support.seeds").joinpath(
    "surveys/hiratsuka-2020-internet-use.yaml").read_text(encoding="utf-8")
PERIOD = '{from: "2026-01-01", to: "2027-12-31"}'

QUERIES = {
    "node": ('query ($id: ID!) { node(id: $id) { id } }', {"id": "future"}),
    "me": ("{ me { id role } }", {}),
    "venues": ("{ venues { id name } }", {}),
    "courses": ("{ courses { id } }", {}),
    "sessions": ("{ sessions { totalCount edges { node { id title } } } }", {}),
    "understaffedSessions": ("{ understaffedSessions(weeks: 4) { id } }", {}),
    "residents": ("{ residents { totalCount edges { node { familyName } } } }", {}),
    "supporters": ("{ supporters { totalCount edges { node { displayName } } } }", {}),
    "followUps": ("{ followUps { totalCount } }", {}),
    "auditLog": ("{ auditLog(first: 5) { totalCount } }", {}),
    "users": ("{ users { totalCount edges { node { email active } } } }", {}),
    "messages": ("{ messages { totalCount } }", {}),
    "residentsToPhoneSoon": ("{ residentsToPhoneSoon { reason } }", {}),
    "residentsToPhone": ("query ($s: ID!) { residentsToPhone(sessionId: $s) { reason } }",
                         {"s": "future"}),
    "smsUsage": ("{ smsUsage { month messages } }", {}),
    "callUsage": ("{ callUsage { month calls minutes } }", {}),
    "smsReplies": ("{ smsReplies { totalCount } }", {}),
    "surveys": ("{ surveys { id title } }", {}),
    "activityReport": ('{ activityReport(from: "2026-01-01", to: "2027-12-31") '
                       "{ total { sessions } } }", {}),
    "topicReport": ('query ($s: ID!) { topicReport(surveyId: $s, from: "2026-01-01", '
                    'to: "2027-12-31") { band } }', {"s": "survey"}),
    "participationReport": ('query ($s: ID!) { participationReport(surveyId: $s, '
                            f'metric: "internet_use.using", filter: {PERIOD}) '
                            "{ total { suppressed } } }", {"s": "survey"}),
    "exportResident": ("query ($r: ID!) { exportResident(residentId: $r) }", {"r": "resident"}),
}

MUTATIONS = {
    "login": ("login(input: {email: $email, password: $password}) { token errors { code } }",
              "$email: String!, $password: String!",
              {"email": "=hiratsuka-planner@example.jp", "password": "=correct-horse-battery"}),
    "createVenue": ('createVenue(input: {name: "役割の会場", kind: OTHER}) { venue { id } errors { code } }',
                    "", {}),
    "createCourse": ('createCourse(input: {title: "役割の講座", topic: OTHER, durationMinutes: 60}) '
                     "{ course { id } errors { code } }", "", {}),
    "scheduleSession": ('scheduleSession(input: {kind: CLASS, venueId: $v, courseId: $c, '
                        'startsAt: "2030-02-01T10:00:00+09:00", endsAt: "2030-02-01T12:00:00+09:00"}) '
                        "{ sessions { id } errors { code } }", "$v: ID!, $c: ID!",
                        {"v": "venue", "c": "course"}),
    "rescheduleSession": ("rescheduleSession(input: {sessionId: $s, capacity: 12}) "
                          "{ session { id } errors { code } }", "$s: ID!", {"s": "future"}),
    "cancelSession": ('cancelSession(input: {sessionId: $s, reason: "台風"}) '
                      "{ session { id } errors { code } }", "$s: ID!", {"s": "toCancel"}),
    "createSupporter": ('createSupporter(input: {displayName: "新しい支援員", affiliation: NPO}) '
                        "{ supporter { id } errors { code } }", "", {}),
    "updateSupporter": ("updateSupporter(input: {supporterId: $p, certified: true}) "
                        "{ supporter { id } errors { code } }", "$p: ID!", {"p": "colleague"}),
    "updateVenue": ("updateVenue(input: {venueId: $v, hasWifi: true}) "
                    "{ venue { id } errors { code } }", "$v: ID!", {"v": "venue"}),
    "assignSupporter": ("assignSupporter(input: {sessionId: $s, supporterId: $p}) "
                        "{ assignment { id } errors { code } }", "$s: ID!, $p: ID!",
                        {"s": "toCancel", "p": "colleague"}),
    "unassignSupporter": ("unassignSupporter(input: {assignmentId: $a}) "
                          "{ assignment { id } errors { code } }", "$a: ID!", {"a": "secondDuty"}),
    "createResident": ('createResident(input: {familyName: "新しい", givenName: "住民"}) '
                       "{ resident { id } errors { code } }", "", {}),
    "updateResident": ('updateResident(input: {residentId: $r, district: "旭"}) '
                       "{ resident { id } errors { code } }", "$r: ID!", {"r": "resident"}),
    "register": ("register(input: {sessionId: $s, residentId: $r}) "
                 "{ registration { id } errors { code } }", "$s: ID!, $r: ID!",
                 {"s": "future", "r": "newcomer"}),
    "cancelRegistration": ("cancelRegistration(input: {registrationId: $g}) "
                           "{ registration { id } errors { code } }", "$g: ID!", {"g": "leaving"}),
    "recordAttendance": ("recordAttendance(input: {registrationId: $g, attendance: ATTENDED}) "
                         "{ registration { id } errors { code } }", "$g: ID!", {"g": "atDoor"}),
    "recordVisit": ("recordVisit(input: {sessionId: $s, residentId: $r, topic: OTHER, "
                    "outcome: RESOLVED}) { visit { id } errors { code } }", "$s: ID!, $r: ID!",
                    {"s": "running", "r": "walkIn"}),
    "scheduleFollowUp": ('scheduleFollowUp(input: {residentId: $r, dueOn: "2030-01-01", '
                         "channel: PHONE_CALL}) { followUp { id } errors { code } }", "$r: ID!",
                         {"r": "resident"}),
    "completeFollowUp": ("completeFollowUp(input: {followUpId: $f, outcome: DECLINED}) "
                         "{ followUp { id } errors { code } }", "$f: ID!", {"f": "followUp"}),
    "resendMessage": ("resendMessage(input: {messageId: $m}) { message { id } errors { code } }",
                      "$m: ID!", {"m": "failed"}),
    "setSmsConsent": ("setSmsConsent(input: {residentId: $r, consent: true}) "
                      "{ resident { id } errors { code } }", "$r: ID!", {"r": "resident"}),
    "setCallConsent": ("setCallConsent(input: {residentId: $r, consent: false}) "
                       "{ resident { id } errors { code } }", "$r: ID!", {"r": "resident"}),
    "setSmsOptOut": ("setSmsOptOut(input: {residentId: $r, optedOut: false}) "
                     "{ resident { id } errors { code } }", "$r: ID!", {"r": "resident"}),
    "markReplyReviewed": ("markReplyReviewed(input: {replyId: $i}) { reply { id } errors { code } }",
                          "$i: ID!", {"i": "reply"}),
    "rotateCalendarFeedToken": ("rotateCalendarFeedToken(input: {supporterId: $p}) "
                                "{ supporter { id } errors { code } }", "$p: ID!",
                                {"p": "supporter"}),
    "importSurvey": ("importSurvey(input: {document: $d}) { survey { id } errors { code } }",
                     "$d: String!", {"d": "=" + SURVEY_DOCUMENT}),
    "revokeUserTokens": ("revokeUserTokens(input: {userId: $u}) { revokedCount errors { code } }",
                         "$u: ID!", {"u": "extraUser"}),
    "setUserActive": ("setUserActive(input: {userId: $u, active: false}) { user { id } errors { code } }",
                      "$u: ID!", {"u": "extraUser"}),
    "eraseResident": ("eraseResident(input: {residentId: $r}) { resident { id } errors { code } }",
                      "$r: ID!", {"r": "toErase"}),
    "createUser": ("createUser(input: {email: $e, role: COORDINATOR}) "
                   "{ user { id } generatedPassword errors { code } }", "$e: String!",
                   {"e": "=matrix-new@example.jp"}),
    "resetPassword": ("resetPassword(input: {userId: $u}) { generatedPassword errors { code } }",
                      "$u: ID!", {"u": "extraUser"}),
    "unlockLogin": ("unlockLogin(input: {email: $e}) { lockedCount errors { code } }",
                    "$e: String!", {"e": "=extra@example.jp"}),
    "changePassword": ("changePassword(input: {currentPassword: $c, newPassword: $n}) "
                       "{ user { id } errors { code } }", "$c: String!, $n: String!",
                       {"c": "=correct-horse-battery", "n": "=another-horse-battery"}),
    "logout": ("logout { revoked errors { code } }", "", {}),
}


def _variables(spec: dict[str, str], ids: dict[str, str]) -> dict[str, str]:
    # "=value" is a literal; anything else names an object of the world.
    return {k: v[1:] if v.startswith("=") else ids[v] for k, v in spec.items()}


def _outcome(body: dict, name: str, *, foreign: bool = False) -> str:
    errors = body.get("errors") or []
    codes = {e.get("extensions", {}).get("code") for e in errors}
    assert "INTERNAL" not in codes, body
    if foreign and codes <= {"NOT_FOUND"}:
        return "ok"  # another municipality's ID is, to them, nothing
    if "UNAUTHENTICATED" in codes:
        return "unauthenticated"
    if "FORBIDDEN" in codes:
        return "refused"
    payload = (body.get("data") or {}).get(name)
    if isinstance(payload, dict) and isinstance(payload.get("errors"), list):
        if any(e["code"] == "FORBIDDEN" for e in payload["errors"]):
            return "refused"
    assert not errors, body
    return "ok"


def _expected(allowed: set[str], role: str) -> str:
    if role in allowed:
        return "ok"
    return "unauthenticated" if role == ANONYMOUS else "refused"


def test_the_matrix_covers_the_whole_schema():
    graphql_schema = schema._schema
    assert set(graphql_schema.query_type.fields) == set(QUERY_MATRIX) == set(QUERIES)
    assert set(graphql_schema.mutation_type.fields) == set(MUTATION_MATRIX) == set(MUTATIONS)
    for type_name, kinds in SENSITIVE_TYPES.items():
        classified = set().union(*kinds.values())
        assert set(graphql_schema.type_map[type_name].fields) == classified, type_name
    pii = {f"{t}.{f}" for t, kinds in SENSITIVE_TYPES.items() for f in kinds.get("pii", ())}
    links = {f"{t}.{f}" for t, kinds in SENSITIVE_TYPES.items() for f in kinds.get("link", ())}
    assert pii | links == set(FIELD_CASES)


async def _client(role: str, town, other_town, world, client) -> GraphQLClient:
    tokens = {ADMIN: town.tokens[Role.ADMIN], COORDINATOR: town.tokens[Role.COORDINATOR],
              PLANNER: town.tokens[Role.PLANNER], SUPPORTER: world["supporter_token"],
              ANONYMOUS: None, FOREIGN: other_town.tokens[Role.ADMIN]}
    return GraphQLClient(client, tokens[role])


@pytest.mark.parametrize("role", [ADMIN, COORDINATOR, SUPPORTER, PLANNER, ANONYMOUS])
async def test_every_operation_as_each_role(role, town, other_town, client):
    world = await _world(town)
    caller = await _client(role, town, other_town, world, client)
    wrong = []
    for name, (query, spec) in QUERIES.items():
        body = await caller(query, _variables(spec, world["ids"]))
        if _outcome(body, name) != _expected(QUERY_MATRIX[name], role):
            wrong.append((name, _outcome(body, name), body))
    for name, (field, declared, spec) in MUTATIONS.items():
        document = f"mutation{f'({declared})' if declared else ''} {{ {field} }}"
        body = await caller(document, _variables(spec, world["ids"]))
        if _outcome(body, name) != _expected(MUTATION_MATRIX[name], role):
            wrong.append((name, _outcome(body, name), body))
    assert wrong == [], json.dumps(wrong, ensure_ascii=False, indent=1)[:4000]


async def test_every_operation_as_an_admin_of_another_municipality(town, other_town, client):
    """Allowed or refused, the answer never carries town A's data and changes none of it."""
    world = await _world(town)
    caller = await _client(FOREIGN, town, other_town, world, client)
    before = {model.__name__: await model.filter(municipality_id=town.municipality.id).count()
              for model in (Resident, Supporter, Session, Registration, Assignment, Message)}
    snapshot = sorted((r.id, r.family_name, r.district, r.erased_at is None)
                      for r in await Resident.filter(municipality_id=town.municipality.id))
    leaks = []
    for name, (query, spec) in QUERIES.items():
        body = await caller(query, _variables(spec, world["ids"]))
        _outcome(body, name, foreign=True)
        leaks += [(name, m) for m in world["markers"] if m in json.dumps(body, ensure_ascii=False)]
    for name, (field, declared, spec) in MUTATIONS.items():
        if name == "logout":
            continue
        document = f"mutation{f'({declared})' if declared else ''} {{ {field} }}"
        body = await caller(document, _variables(spec, world["ids"]))
        _outcome(body, name, foreign=True)
        leaks += [(name, m) for m in world["markers"] if m in json.dumps(body, ensure_ascii=False)]
    assert leaks == []
    after = {model.__name__: await model.filter(municipality_id=town.municipality.id).count()
             for model in (Resident, Supporter, Session, Registration, Assignment, Message)}
    assert after == before
    assert sorted((r.id, r.family_name, r.district, r.erased_at is None)
                  for r in await Resident.filter(municipality_id=town.municipality.id)) == snapshot


@pytest.mark.parametrize("role", [ADMIN, COORDINATOR, SUPPORTER, PLANNER])
async def test_every_mutation_leaves_an_audit_row_of_its_request(role, town, other_town, client):
    """Done, refused or a no-op: each call is on the record, with the request's id."""
    world = await _world(town)
    caller = await _client(role, town, other_town, world, client)
    counts, forbidden = {}, set()
    for name, (field, declared, spec) in MUTATIONS.items():
        document = f"mutation{f'({declared})' if declared else ''} {{ {field} }}"
        response = await caller.post(document, _variables(spec, world["ids"]))
        assert response.status_code == 200
        rows = await AuditEntry.filter(request_id=response.headers["x-request-id"])
        counts[name] = sorted(row.action for row in rows)
        if any(r.action == "mutation.refused" and r.details["code"] == "FORBIDDEN" for r in rows):
            forbidden.add(name)
    missing = [name for name, actions in counts.items() if not actions]
    assert missing == [], counts
    refused = forbidden
    assert refused == {name for name, allowed in MUTATION_MATRIX.items() if role not in allowed}
    if role == ADMIN:  # the ones that did their work wrote what they did
        assert counts["register"] == ["registration.create"]
        assert counts["eraseResident"] == ["resident.erase"]
        assert counts["login"] == ["auth.login"]
        assert counts["rescheduleSession"] == ["session.reschedule"]


# --- who reads which personal field --------------------------------------------------------------

# Each case: the query, the path to the values (the first one found, where the session has
# other people too, is the world's resident), and per role what comes back:
# "value" (the data), "null" (the field is empty for them), "refused" (FORBIDDEN on the way),
# "hidden" (the object itself is null for them).
RESIDENT_PATH = """query ($s: ID!) { node(id: $s) { ... on Session { registrations { edges { node {
  inviteUrl resident { phone landline birthDate birthYear notes } } } } } } }"""
FIELD_CASES = {
    "Resident.phone": (RESIDENT_PATH, {"s": "future"}, "resident.phone"),
    "Resident.landline": (RESIDENT_PATH, {"s": "future"}, "resident.landline"),
    "Resident.birthDate": (RESIDENT_PATH, {"s": "future"}, "resident.birthDate"),
    "Resident.birthYear": (RESIDENT_PATH, {"s": "future"}, "resident.birthYear"),
    "Resident.notes": (RESIDENT_PATH, {"s": "future"}, "resident.notes"),
    "Registration.inviteUrl": (RESIDENT_PATH, {"s": "future"}, "inviteUrl"),
    "Visit.notes": ("""query ($s: ID!) { node(id: $s) { ... on Session {
        visits { edges { node { notes } } } } } }""", {"s": "running"}, "notes"),
    "FollowUp.notes": ("{ followUps { edges { node { notes } } } }", {}, "notes"),
    "Message.to": ("{ messages(status: FAILED) { edges { node { to } } } }", {}, "to"),
    "InboundMessage.fromNumber": ("{ smsReplies { edges { node { fromNumber } } } }", {},
                                  "fromNumber"),
    "Supporter.phone": ("query ($p: ID!) { node(id: $p) { ... on Supporter { phone } } }",
                        {"p": "colleague"}, "phone"),
    "Supporter.calendarFeedUrl": ("query ($p: ID!) { node(id: $p) { ... on Supporter { "
                                  "calendarFeedUrl } } }", {"p": "colleague"}, "calendarFeedUrl"),
    "Assignment.inviteUrl": ("""query ($s: ID!) { node(id: $s) { ... on Session {
        assignments { inviteUrl } } } }""", {"s": "future"}, "inviteUrl"),
}
FIELD_MATRIX = {
    # field: (ADMIN, COORDINATOR, SUPPORTER, PLANNER)
    "Resident.phone": ("value", "value", "null", "refused"),
    "Resident.landline": ("value", "value", "null", "refused"),
    "Resident.birthDate": ("value", "value", "null", "refused"),
    "Resident.birthYear": ("value", "value", "null", "refused"),
    "Resident.notes": ("value", "value", "null", "refused"),
    "Registration.inviteUrl": ("value", "value", "null", "refused"),
    "Visit.notes": ("value", "value", "null", "refused"),
    "FollowUp.notes": ("value", "value", "refused", "refused"),
    "Message.to": ("value", "value", "refused", "refused"),
    "InboundMessage.fromNumber": ("value", "value", "refused", "refused"),
    "Supporter.phone": ("value", "value", "null", "hidden"),
    "Supporter.calendarFeedUrl": ("value", "value", "null", "hidden"),
    # the supporter's own duty link: a value; a colleague's: null (both are on the session)
    "Assignment.inviteUrl": ("value", "value", "own", "null"),
}


def _leaves(data: object, path: list[str]) -> list[object]:
    if isinstance(data, list):
        return [leaf for item in data for leaf in _leaves(item, path)]
    if isinstance(data, dict):
        if "edges" in data:
            return _leaves([e["node"] for e in data["edges"]], path)
        if not path:
            return [data]
        if path[0] in data:
            return _leaves(data[path[0]], path[1:])
        return [leaf for value in data.values() for leaf in _leaves(value, path)]
    return [data] if not path else []


@pytest.mark.parametrize("role", [ADMIN, COORDINATOR, SUPPORTER, PLANNER])
async def test_who_reads_which_personal_field(role, town, other_town, client):
    world = await _world(town)
    caller = await _client(role, town, other_town, world, client)
    column = [ADMIN, COORDINATOR, SUPPORTER, PLANNER].index(role)
    wrong = []
    for field, (query, spec, path) in FIELD_CASES.items():
        expected = FIELD_MATRIX[field][column]
        body = await caller(query, _variables(spec, world["ids"]))
        codes = {e["extensions"]["code"] for e in body.get("errors") or []}
        if codes:
            got = "refused" if codes == {"FORBIDDEN"} else f"error {codes}"
        elif body["data"].get("node", True) is None:
            got = "hidden"
        else:
            values = _leaves(body["data"], path.split("."))
            assert values, (field, body)
            if field.startswith(("Resident.", "Registration.")):
                values = values[:1]
            if all(v not in (None, "") for v in values):
                got = "value"
            elif all(v in (None, "") for v in values):
                got = "null"
            else:
                got = "own"
        if got != expected:
            wrong.append((field, expected, got, body))
    assert wrong == [], json.dumps(wrong, ensure_ascii=False, indent=1)[:4000]
