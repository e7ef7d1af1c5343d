"""A page of sessions (scheduling/pages.py) answers from one statement what the per-relation
DataLoaders answer one session at a time, and never more: the same venue, course, seats,
staffing and assignments, in the same order, and nothing of another municipality.

The same fields are asked of `sessions(...)` (the page's one JSON document, in which a venue,
course or supporter that recurs is written once) and of `node(id:)` for each session (the
loaders), and the answers must be equal. Also here: the API's answers, written by orjson,
are what json.dumps wrote. (Requests are still read by json.loads: orjson would read an
integer past 64 bits as a float, and GraphQL would answer a different error.)
"""

from __future__ import annotations

import json

import factories
import pytest
from factories import at
from tortoise import connections

from divide_support.api.http import encode_json
from divide_support.core.ids import to_global_id
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import AssignmentRole, SessionKind

FIELDS = """
  id kind title startsAt endsAt status capacity sequence cancelReason
  seatsTaken seatsLeft waitlistLength requiredSupporters understaffed hasCertifiedLead
  venue { id name kind address capacity hasWifi loanerDevices calendarUrl }
  course { id title topic level description targetDevice durationMinutes }
  assignments { id role inviteUrl supporter { id displayName kana affiliation certified
                                              skills active phone calendarFeedUrl } }
"""
PAGE = f"""query ($venueId: ID!, $from: DateTime!, $to: DateTime!) {{
  sessions(venueId: $venueId, from: $from, to: $to, first: 100) {{
    totalCount edges {{ node {{ {FIELDS} }} }} }} }}"""
ONE = f"query ($id: ID!) {{ node(id: $id) {{ ... on Session {{ {FIELDS} }} }} }}"


@pytest.fixture
async def week(town):
    """A venue's week: classes that share a course and supporters, a help session without a
    course, a cancelled class, a full class with a waitlist, a session without duties."""
    actor = town.coordinator
    venue = await factories.venue(actor, name="中央公民館")
    lead, helper, uncertified = (await factories.supporter(actor, name="佐藤 健"),
                                 await factories.supporter(actor, name="鈴木 花子"),
                                 await factories.supporter(actor, certified=False, name="高橋 学"))
    residents = [await factories.resident(actor, given=f"花子{i}") for i in range(3)]
    sessions = []
    for day in range(4):
        session = await factories.session(actor, at(days=1 + day, hour=10), capacity=2,
                                          venue_obj=venue)
        sessions.append(session)
    help_desk = await factories.session(actor, at(days=2, hour=14), kind=SessionKind.HELP_SESSION,
                                        capacity=None, venue_obj=venue)
    sessions.append(help_desk)
    empty = await factories.session(actor, at(days=3, hour=15), venue_obj=venue)
    sessions.append(empty)
    for i, session in enumerate(sessions[:5]):
        await scheduling.assign_supporter(actor=actor, session_id=session.id,
                                          supporter_id=lead.id, role=AssignmentRole.LEAD)
        await scheduling.assign_supporter(actor=actor, session_id=session.id,
                                          supporter_id=(helper if i % 2 else uncertified).id)
    for resident in residents:  # two confirmed and one waitlisted on the first class
        await scheduling.register(actor=actor, session_id=sessions[0].id, resident_id=resident.id)
    await scheduling.cancel_session(actor=actor, session_id=sessions[3].id, reason="講師の都合")
    return venue, sessions


def _variables(venue) -> dict:
    return {"venueId": to_global_id("Venue", venue.id), "from": at(days=0).isoformat(),
            "to": at(days=10).isoformat()}


async def test_a_page_answers_what_the_loaders_answer_session_by_session(week, gql):
    venue, sessions = week
    client = gql()
    page = await client.data(PAGE, _variables(venue))
    nodes = [edge["node"] for edge in page["sessions"]["edges"]]
    assert page["sessions"]["totalCount"] == len(sessions) == len(nodes)
    for node in nodes:
        alone = await client.data(ONE, {"id": node["id"]})
        assert alone["node"] == node
    # what the comparison covers: the shared supporter, the waitlist, the cancellation, a
    # help session without a course, a session without duties
    first = nodes[0]
    assert (first["seatsTaken"], first["seatsLeft"], first["waitlistLength"]) == (2, 0, 1)
    assert [a["role"] for a in first["assignments"]] == ["ASSISTANT", "LEAD"]
    assert {a["supporter"]["displayName"] for n in nodes for a in n["assignments"]} == {
        "佐藤 健", "鈴木 花子", "高橋 学"}
    assert {n["status"] for n in nodes} == {"SCHEDULED", "CANCELLED"}
    assert [n["course"] for n in nodes if n["kind"] == "HELP_SESSION"] == [None]
    assert [n["assignments"] for n in nodes if not n["assignments"]] == [[]]


async def test_a_supporter_of_another_municipality_never_shows_on_a_page(week, gql, other_town):
    """An assignment row pointing at another town's supporter (written behind the service's
    back) is left out of the page, as the loaders leave it out."""
    venue, sessions = week
    stranger = await factories.supporter(other_town.coordinator, name="焼津 太郎")
    await connections.get("default").execute_query(
        "INSERT INTO assignment (municipality_id, session_id, supporter_id, role, calendar_token,"
        " created_at) VALUES ($1, $2, $3, 'ASSISTANT', md5(random()::text), now())",
        [venue.municipality_id, sessions[5].id, stranger.id])
    response = await gql().post(PAGE, _variables(venue))
    assert response.status_code == 200
    assert "焼津" not in response.text
    nodes = [edge["node"] for edge in response.json()["data"]["sessions"]["edges"]]
    assert [n["assignments"] for n in nodes if n["id"] == to_global_id("Session", sessions[5].id)
            ] == [[]]


@pytest.mark.parametrize("payload", [
    {"data": {"title": "スマホ教室 「はじめて」", "n": 1, "ok": True, "none": None}},
    {"errors": [{"message": "改行\nタブ\t引用\"バックスラッシュ\\ \u2028 \x1f \x7f",
                 "extensions": {"code": "BAD_USER_INPUT"}}]},
    {"data": {"ratio": 0.125, "big": 2**70, "list": [1, [2, []], {}]}},
])
def test_answers_are_written_as_json_dumps_wrote_them(payload):
    assert encode_json(payload) == json.dumps(payload, ensure_ascii=False,
                                              separators=(",", ":")).encode()


def test_a_tiny_float_is_the_same_number_in_another_notation():
    payload = {"data": {"share": 1e-05, "other": 2.5e-07}}
    assert encode_json(payload) == b'{"data":{"share":0.00001,"other":2.5e-7}}'
    assert json.loads(encode_json(payload)) == payload


async def test_a_huge_integer_variable_is_a_graphql_error_not_unreadable_json(gql):
    response = await gql().client.post(
        "/graphql", content='{"query": "query ($n: Int) { sessions(first: $n) { totalCount } }",'
                            ' "variables": {"n": 99999999999999999999999}}',
        headers={"Content-Type": "application/json",
                 "Authorization": f"Bearer {gql().token}"})
    body = response.json()
    assert "request body is not valid JSON" not in response.text
    assert body["errors"] and "Int" in body["errors"][0]["message"]
