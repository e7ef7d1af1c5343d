"""Listing sessions costs a constant number of SQL statements, whatever the page size.

The absolute numbers are recorded in query_counts.json (as NetBox does): a change that
adds a statement per request shows up here and has to be accepted on purpose, by
editing that file with a reason.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import factories
import pytest
from factories import at
from pg_wire import counting_statements

from divide_support.audit.models import AuditEntry
from divide_support.core.ids import to_global_id
from divide_support.messaging.models import Message, MessageKind, MessageStatus
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import AssignmentRole

RECORDED = json.loads((Path(__file__).parent / "query_counts.json").read_text(encoding="utf-8"))

SESSIONS = """query ($first: Int!) {
  sessions(first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id title startsAt endsAt status capacity
      seatsTaken seatsLeft waitlistLength requiredSupporters understaffed hasCertifiedLead
      venue { id name capacity }
      course { id title topic }
      assignments { id role supporter { id displayName certified skills } }
    } }
  }
}"""

SESSIONS_WITH_ATTENDEES = """query ($first: Int!) {
  sessions(first: $first) {
    edges { node {
      id seatsTaken understaffed
      venue { name } course { title }
      assignments { role supporter { displayName } }
      registrations { totalCount edges { node { id status resident { id familyName givenName } } } }
    } }
  }
}"""


@pytest.fixture
async def fifty_sessions(town):
    """50 classes on 50 days, each with its own venue and course, a certified LEAD and an
    assistant (out of 4 supporters) and 3 registered residents: every relation is populated."""
    actor = town.coordinator
    supporters = [await factories.supporter(actor, certified=True) for _ in range(4)]
    residents = [await factories.resident(actor, given=f"花子{i}") for i in range(6)]
    for day in range(50):
        session = await factories.session(actor, at(days=1 + day, hour=10), capacity=10)
        await scheduling.assign_supporter(actor=actor, session_id=session.id,
                                          supporter_id=supporters[day % 4].id,
                                          role=AssignmentRole.LEAD)
        await scheduling.assign_supporter(actor=actor, session_id=session.id,
                                          supporter_id=supporters[(day + 1) % 4].id)
        for offset in range(3):
            await scheduling.register(actor=actor, session_id=session.id,
                                      resident_id=residents[(day + offset) % 6].id)
    return town


async def _count(gql, count_queries, query: str, first: int) -> tuple[int, list[str], dict]:
    client = gql()
    with count_queries() as counter:
        body = await client(query, {"first": first})
    assert "errors" not in body, body
    return len(counter.statements), counter.statements, body["data"]


def _explain(statements: list[str]) -> str:
    return "\n".join(f"  {i + 1}. {s[:160]!r}" for i, s in enumerate(statements))


async def test_listing_sessions_is_a_constant_number_of_queries(fifty_sessions, gql, count_queries):
    small, _, small_data = await _count(gql, count_queries, SESSIONS, 5)
    large, large_sql, large_data = await _count(gql, count_queries, SESSIONS, 50)

    edges = large_data["sessions"]["edges"]
    assert len(small_data["sessions"]["edges"]) == 5
    assert len(edges) == 50
    assert all(len(e["node"]["assignments"]) == 2 for e in edges)
    assert all(e["node"]["seatsTaken"] == 3 and e["node"]["course"] for e in edges)
    assert len({e["node"]["venue"]["id"] for e in edges}) == 50

    assert small == large, (f"first:5 took {small} statements, first:50 took {large}:\n"
                            f"{_explain(large_sql)}")
    assert large == RECORDED["sessions_with_venue_course_assignments"], (
        f"{large} statements (recorded {RECORDED['sessions_with_venue_course_assignments']}); "
        f"if the change is intended, update tests/query_counts.json:\n{_explain(large_sql)}")


async def test_attendee_lists_are_a_constant_number_of_queries(fifty_sessions, gql, count_queries):
    small, _, _ = await _count(gql, count_queries, SESSIONS_WITH_ATTENDEES, 5)
    large, large_sql, data = await _count(gql, count_queries, SESSIONS_WITH_ATTENDEES, 50)
    assert all(e["node"]["registrations"]["totalCount"] == 3 for e in data["sessions"]["edges"])
    assert small == large, _explain(large_sql)
    assert large == RECORDED["sessions_with_registrations_and_residents"], (
        f"{large} statements; if the change is intended, update tests/query_counts.json:\n"
        f"{_explain(large_sql)}")


async def test_page_two_costs_the_same(fifty_sessions, gql, count_queries):
    first_page, _, data = await _count(gql, count_queries, SESSIONS, 20)
    client = gql()
    after = data["sessions"]["pageInfo"]["endCursor"]
    query = SESSIONS.replace("($first: Int!)", "($first: Int!, $after: String)").replace(
        "sessions(first: $first)", "sessions(first: $first, after: $after)")
    with count_queries() as counter:
        body = await client(query, {"first": 20, "after": after})
    assert "errors" not in body
    assert len(body["data"]["sessions"]["edges"]) == 20
    assert len(counter.statements) == first_page


MESSAGES = """query ($first: Int!) {
  messages(first: $first) {
    totalCount
    edges { node { id kind status to body segments sendAfter
                   resident { id familyName givenName }
                   registration { id status session { id title venue { name } } } } }
  }
}"""


async def test_listing_messages_is_a_constant_number_of_queries(fifty_sessions, gql, count_queries):
    """150 registrations planned 450 messages (most SKIPPED: the residents prefer calls)."""
    small, _, _ = await _count(gql, count_queries, MESSAGES, 5)
    large, large_sql, data = await _count(gql, count_queries, MESSAGES, 50)
    edges = data["messages"]["edges"]
    assert data["messages"]["totalCount"] == 450 and len(edges) == 50
    assert all(e["node"]["registration"]["session"]["venue"]["name"] for e in edges)
    assert small == large, _explain(large_sql)
    assert large == RECORDED["messages_with_resident_registration_session"], (
        f"{large} statements; if the change is intended, update tests/query_counts.json:\n"
        f"{_explain(large_sql)}")


DAY_VIEW = (Path(__file__).resolve().parent.parent / "graphql" / "examples" / "10_day_view.graphql").read_text("utf-8")


@pytest.fixture
async def busy_week(town):
    """The staff day view's week (issue 12): one venue with 110 classes in 7 days, each with a
    course, a certified LEAD and an assistant; the first ten have residents, one a waitlist."""
    actor = town.coordinator
    place = await factories.venue(actor, name="平塚市中央公民館")
    supporters = [await factories.supporter(actor) for _ in range(4)]
    residents = [await factories.resident(actor, given=f"花子{i}") for i in range(3)]
    sessions = []
    for i in range(110):
        session = await factories.session(actor, at(days=1 + i // 16, hour=8, minutes=0)
                                          + timedelta(minutes=30 * (i % 16)),
                                          hours=0.5, capacity=1 if i == 0 else 10,
                                          venue_obj=place)
        sessions.append(session)
        await scheduling.assign_supporter(actor=actor, session_id=session.id,
                                          supporter_id=supporters[i % 4].id,
                                          role=AssignmentRole.LEAD)
        await scheduling.assign_supporter(actor=actor, session_id=session.id,
                                          supporter_id=supporters[(i + 1) % 4].id)
    for session in sessions[:10]:
        for person in residents:
            await scheduling.register(actor=actor, session_id=session.id, resident_id=person.id)
    return {"venueId": to_global_id("Venue", place.id), "from": at(days=0).isoformat(),
            "to": at(days=8).isoformat()}


async def test_day_view_statements_postgresql_receives_do_not_grow_with_page_size(
        busy_week, gql, service_database):
    """Counted on the wire (tests/pg_wire.py), so connection resets and transaction statements
    count too, and the token check is part of the request."""
    client = gql()
    seen: dict[int, list[str]] = {}
    async with counting_statements(service_database) as wire:
        for first in (20, 100, 20, 100):  # the first two warm the connection's type cache
            wire.statements.clear()
            data = await client.data(DAY_VIEW, {**busy_week, "first": first})
            seen[first] = list(wire.statements)
            edges = data["sessions"]["edges"]
            assert data["sessions"]["totalCount"] == 110 and len(edges) == first
            assert all(len(e["node"]["assignments"]) == 2 for e in edges)
            assert all(e["node"]["course"]["title"] and e["node"]["venue"]["name"] == "平塚市中央公民館"
                       for e in edges)
    nodes = {e["node"]["startsAt"]: e["node"] for e in edges}
    first_class = nodes[min(nodes)]
    assert (first_class["capacity"], first_class["seatsLeft"], first_class["waitlistLength"]) == (
        1, 0, 2)
    assert {a["role"] for a in first_class["assignments"]} == {"LEAD", "ASSISTANT"}
    assert all(a["supporter"]["displayName"] for a in first_class["assignments"])

    small, large = len(seen[20]), len(seen[100])
    assert small == large, (f"first:20 sent {small} statements, first:100 sent {large}:\n"
                            f"{_explain(seen[100])}")
    assert large == RECORDED["day_view_on_the_wire"] <= 6, (
        f"{large} statements (recorded {RECORDED['day_view_on_the_wire']}, at most 6); if the "
        f"change is intended, update tests/query_counts.json:\n{_explain(seen[100])}")



REGISTER = """mutation ($s: ID!, $r: ID!) {
  register(input: {sessionId: $s, residentId: $r, source: PHONE}) {
    registration { id status waitlistPosition }
    errors { code message }
  }
}"""


@pytest.fixture
async def class_with_two_seats(town):
    """Issue 12's write path: a class in two days with two seats, and residents who can get an
    SMS (so each seat plans a confirmation and both reminders, each waitlist place a notice)."""
    actor = town.coordinator
    session = await factories.session(actor, at(days=2, hour=14), capacity=2)
    residents = [await factories.resident(actor, given=f"花子{i}", sms=True) for i in range(4)]
    return {"session": to_global_id("Session", session.id),
            "residents": [to_global_id("Resident", r.id) for r in residents]}


async def test_registering_sends_at_most_twelve_statements_on_the_wire(
        class_with_two_seats, gql, service_database):
    """register (the seat or waitlist place, its SMS planning, the audit row) counted by what
    PostgreSQL receives: the token check and BEGIN/COMMIT count; PostgreSQL's own foreign-key
    checks run inside the server and do not."""
    client = gql()
    session, residents = class_with_two_seats["session"], class_with_two_seats["residents"]
    seen: list[list[str]] = []
    results = []
    async with counting_statements(service_database) as wire:
        for resident in residents:  # the first warms the connection's type cache
            wire.statements.clear()
            data = await client.data(REGISTER, {"s": session, "r": resident})
            results.append(data["register"])
            seen.append(list(wire.statements))
    assert [r["errors"] for r in results] == [[]] * 4
    assert [(r["registration"]["status"], r["registration"]["waitlistPosition"])
            for r in results] == [("CONFIRMED", None), ("CONFIRMED", None), ("WAITLISTED", 1),
                                  ("WAITLISTED", 2)]
    planned = await Message.filter(status=MessageStatus.PENDING).order_by("id").values_list(
        "registration_id", "kind")
    seats = [MessageKind.CONFIRMATION, MessageKind.REMINDER_DAY_BEFORE,
             MessageKind.REMINDER_SAME_DAY]
    assert [kind for _, kind in planned] == [*seats, *seats, MessageKind.CONFIRMATION,
                                             MessageKind.CONFIRMATION]
    assert len({registration for registration, _ in planned}) == 4
    assert await AuditEntry.filter(action="registration.create").count() == 4

    seat, waiting = len(seen[1]), len(seen[2])
    assert seat == waiting == len(seen[3]), (
        f"a seat sent {seat} statements, a waitlist place {waiting}:\n{_explain(seen[1])}")
    assert seat == RECORDED["register_on_the_wire"] <= 12, (
        f"{seat} statements (recorded {RECORDED['register_on_the_wire']}, at most 12); if the "
        f"change is intended, update tests/query_counts.json:\n{_explain(seen[1])}")
