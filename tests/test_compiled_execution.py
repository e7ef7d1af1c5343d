"""Compiled completion (api/compiled.py) answers exactly what graphql-core answers.

Every query below runs twice over HTTP, with GRAPHQL_COMPILED on and off, and the two
response bodies must be identical byte for byte: data, errors, their paths and messages, for
each role (a PLANNER is refused seat counts and supporters, a SUPPORTER sees names only).
The refusals are the resolvers' own, so they hold on the compiled path too.
"""

from __future__ import annotations

import json
from pathlib import Path

import factories
import pytest
from factories import at

from divide_support.api import compiled
from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import AssignmentRole

DAY_VIEW = (Path(__file__).parents[1] / "graphql" / "examples" / "10_day_view.graphql"
            ).read_text("utf-8")

EVERYTHING_LISTED = """query ($first: Int!) {
  sessions(first: $first) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node {
      __typename id kind title startsAt endsAt status capacity sequence cancelReason
      seatsTaken seatsLeft waitlistLength requiredSupporters understaffed hasCertifiedLead
      venue { __typename id name kind address capacity hasWifi loanerDevices calendarUrl }
      course { id title topic level description targetDevice durationMinutes }
      assignments { id role inviteUrl supporter { id displayName certified skills } }
      registrations { totalCount edges { node { id status waitlistPosition source attendance
                                                resident { id familyName givenName } } } }
    } }
  }
}"""

FRAGMENTS_AND_ALIASES = """query ($id: ID!) {
  first: node(id: $id) { __typename ...Detail }
  again: node(id: $id) { ... on Session { id t: title venue { n: name } } }
  sessions(first: 3) { edges { node { ...Detail place: venue { name } } } }
}
fragment Detail on Session {
  id title starts: startsAt seatsLeft
  course { title } venue { id }
  assignments { role supporter { displayName } }
}"""

NOT_COMPILABLE_PARTS = """query ($first: Int!, $skip: Boolean!) {
  venues { id name sessions(first: 2) { totalCount edges { node { id seatsLeft } } } }
  sessions(first: $first) { edges { node { id title @skip(if: $skip) venue { name } } } }
}"""

RESIDENTS = """{
  residents(first: 5) { totalCount edges { node { id familyName givenName kana phone
                                                 birthYear contactPreference } } }
}"""


@pytest.fixture
async def busy_venue(town):
    """One venue with eight sessions this week: two supporters each (a certified LEAD), three
    residents on a 2-seat class (a waitlist); and a session elsewhere."""
    actor = town.coordinator
    venue = await factories.venue(actor, name="中央公民館")
    supporters = [await factories.supporter(actor, certified=i != 2) for i in range(3)]
    residents = [await factories.resident(actor, given=f"花子{i}") for i in range(4)]
    sessions = []
    for day in range(8):
        session = await factories.session(actor, at(days=1 + day, hour=10), capacity=2,
                                          venue_obj=venue)
        await scheduling.assign_supporter(actor=actor, session_id=session.id,
                                          supporter_id=supporters[day % 2].id,
                                          role=AssignmentRole.LEAD)
        await scheduling.assign_supporter(  # the uncertified one assists every other day
            actor=actor, session_id=session.id,
            supporter_id=supporters[2 if day % 2 else 1].id)
        for offset in range(3):
            await scheduling.register(actor=actor, session_id=session.id,
                                      resident_id=residents[(day + offset) % 4].id)
        sessions.append(session)
    await factories.session(actor, at(days=2, hour=14))  # no duties, another venue
    return venue, sessions


async def _both(gql, settings_env, role: Role, query: str, variables: dict | None = None,
                token: str | None = None) -> tuple[dict, dict]:
    answers = []
    for setting in ("false", "true"):
        settings_env(GRAPHQL_COMPILED=setting)
        answers.append(await gql(role, token=token)(query, variables or {}))
    uncompiled, compiled_answer = answers
    assert json.dumps(compiled_answer, ensure_ascii=False) == json.dumps(
        uncompiled, ensure_ascii=False)
    return compiled_answer, uncompiled


def _day_view_variables(venue) -> dict:
    return {"venueId": to_global_id("Venue", venue.id), "from": at(days=0).isoformat(),
            "to": at(days=10).isoformat(), "first": 20}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.COORDINATOR, Role.PLANNER])
async def test_the_day_view_is_the_same_compiled(busy_venue, gql, settings_env, role):
    venue, _ = busy_venue
    hits = compiled.plans.hits
    body, _ = await _both(gql, settings_env, role, DAY_VIEW, _day_view_variables(venue))
    if role == Role.PLANNER:  # refused the counts and the supporters, on both paths
        codes = {e["extensions"]["code"] for e in body["errors"]}
        assert codes == {"FORBIDDEN"}
        assert {e["path"][-1] for e in body["errors"]} >= {"seatsLeft", "waitlistLength"}
        assert "displayName" not in json.dumps(body["data"])  # no supporter reached them
        assert compiled.plans.gave_up > 0
    else:
        assert "errors" not in body
        edges = body["data"]["sessions"]["edges"]
        assert len(edges) == 8 and body["data"]["sessions"]["totalCount"] == 8
        assert all(e["node"]["seatsLeft"] == 0 and e["node"]["waitlistLength"] == 1
                   for e in edges)
        assert all(e["node"]["venue"]["name"] == "中央公民館" for e in edges)
        assert all([a["role"] for a in e["node"]["assignments"]] == ["ASSISTANT", "LEAD"]
                   or [a["role"] for a in e["node"]["assignments"]] == ["LEAD", "ASSISTANT"]
                   for e in edges)
        assert compiled.plans.hits > hits  # the compiled path answered


async def test_a_supporter_sees_the_same_compiled(busy_venue, town, gql, settings_env):
    venue, _ = busy_venue
    _, token = await factories.supporter_login(town)
    body, _ = await _both(gql, settings_env, None, DAY_VIEW, _day_view_variables(venue),
                          token=token)
    assert body["data"]["sessions"]["totalCount"] == 8


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.PLANNER])
async def test_every_listed_field_is_the_same_compiled(busy_venue, gql, settings_env, role):
    body, _ = await _both(gql, settings_env, role, EVERYTHING_LISTED, {"first": 20})
    if role == Role.PLANNER:  # registrations refused: the non-null connection nulls it all
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    else:
        assert body["data"]["sessions"]["totalCount"] == 9


async def test_fragments_aliases_and_nodes_are_the_same_compiled(busy_venue, gql, settings_env):
    _, sessions = busy_venue
    body, _ = await _both(gql, settings_env, Role.COORDINATOR, FRAGMENTS_AND_ALIASES,
                          {"id": to_global_id("Session", sessions[0].id)})
    assert body["data"]["first"]["__typename"] == "Session"
    assert body["data"]["again"]["venue"]["n"] == "中央公民館"
    # node() reaches a session without the page's relations: its resolvers return
    # DataLoaders' awaitables, which the compiled attempt hands back to graphql-core
    assert body["data"]["first"]["course"]["title"]


@pytest.mark.parametrize("skip", [True, False])
async def test_arguments_and_directives_are_left_to_graphql_core(busy_venue, gql, settings_env,
                                                                 skip):
    body, _ = await _both(gql, settings_env, Role.COORDINATOR, NOT_COMPILABLE_PARTS,
                          {"first": 5, "skip": skip})
    node = body["data"]["sessions"]["edges"][0]["node"]
    assert ("title" in node) is (not skip)


async def test_personal_data_reads_are_audited_the_same_compiled(busy_venue, gql, settings_env,
                                                                 town):
    from divide_support.audit.models import AuditEntry

    before = await AuditEntry.filter(action="resident.pii_read").count()
    await _both(gql, settings_env, Role.COORDINATOR, RESIDENTS)
    entries = await AuditEntry.filter(action="resident.pii_read").order_by("id")
    assert len(entries) == before + 2  # one per request, whichever path answered
    assert entries[-1].object_ids == entries[-2].object_ids
