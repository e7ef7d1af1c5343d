"""What the console's session page asks the API before and after a change: whom a change
would tell and how (Session.noticePreview), and who got a freed seat (cancelRegistration's
promoted)."""

from __future__ import annotations

import factories
from factories import at

from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.scheduling import service as scheduling

PREVIEW = """query ($id: ID!, $capacity: Int) {
  node(id: $id) { ... on Session {
    all: noticePreview { bySms byPhone }
    grown: noticePreview(capacity: $capacity) { bySms byPhone }
  } }
}"""

CANCEL = """mutation ($id: ID!) {
  cancelRegistration(input: {registrationId: $id}) {
    registration { id status }
    promoted { id status resident { familyName } }
    errors { code message }
  }
}"""


async def _full_class(town):
    """Two seats: one holder reached by SMS, one not; two on the waitlist (neither by SMS,
    then one by SMS)."""
    actor = town.coordinator
    session = await factories.session(actor, at(days=5, hour=10), capacity=2)
    seats = []
    for family, sms in (("青木", True), ("井上", False), ("上田", False), ("江藤", True)):
        resident = await factories.resident(actor, family, sms=sms)
        seats.append(await scheduling.register(actor=actor, session_id=session.id,
                                               resident_id=resident.id))
    return session, seats


async def test_notice_preview_counts_sms_and_calls_for_each_kind_of_change(gql, town):
    session, _ = await _full_class(town)
    data = await gql().data(PREVIEW, {"id": to_global_id("Session", session.id),
                                      "capacity": 3})
    # Moving or cancelling tells all four holders; one more seat tells only 上田 (no SMS).
    assert data["node"]["all"] == {"bySms": 2, "byPhone": 2}
    assert data["node"]["grown"] == {"bySms": 0, "byPhone": 1}
    data = await gql().data(PREVIEW, {"id": to_global_id("Session", session.id),
                                      "capacity": 10})
    assert data["node"]["grown"] == {"bySms": 1, "byPhone": 1}


async def test_notice_preview_is_for_staff_of_the_session_s_municipality(gql, town, other_town):
    session, _ = await _full_class(town)
    body = await gql(Role.PLANNER)(PREVIEW, {"id": to_global_id("Session", session.id)})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    foreign = await factories.session(other_town.coordinator, at(days=5, hour=10))
    body = await gql()(PREVIEW, {"id": to_global_id("Session", foreign.id)})
    assert body["data"]["node"] is None


async def test_notice_preview_tells_nobody_once_the_session_has_started(gql, town):
    session = await factories.session(town.coordinator, at(days=-0.02), capacity=2)
    resident = await factories.resident(town.coordinator, sms=True)
    await scheduling.register(actor=town.coordinator, session_id=session.id,
                              resident_id=resident.id, source=scheduling.RegistrationSource.WALK_IN)
    data = await gql().data(PREVIEW, {"id": to_global_id("Session", session.id)})
    assert data["node"]["all"] == {"bySms": 0, "byPhone": 0}


async def test_cancelling_a_seat_names_who_was_promoted(gql, town):
    _, seats = await _full_class(town)
    data = await gql().data(CANCEL, {"id": to_global_id("Registration", seats[0].id)})
    payload = data["cancelRegistration"]
    assert payload["errors"] == []
    assert payload["registration"]["status"] == "CANCELLED"
    assert [(p["resident"]["familyName"], p["status"]) for p in payload["promoted"]] == [
        ("上田", "CONFIRMED")]
    # A waitlist place given up frees no seat: nobody is promoted.
    data = await gql().data(CANCEL, {"id": to_global_id("Registration", seats[3].id)})
    assert data["cancelRegistration"]["promoted"] == []
