"""What a resident asks the supporters to know (Resident.supportNeeds): entered at the counter,
read by the supporters of their sessions and by nobody else, every read audited, erased with
the rest of their data."""

from __future__ import annotations

import factories

from divide_support.audit.models import AuditEntry
from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.privacy import service as privacy
from divide_support.scheduling import service as scheduling

NEEDS = "字を大きくしてほしい。LINEで孫と話したい。"
CREATE = """mutation($input: CreateResidentInput!) {
  createResident(input: $input) { resident { id supportNeeds } errors { code field message } }
}"""
ATTENDEES = """query($id: ID!) { node(id: $id) { ... on Session {
  registrations { edges { node { resident { familyName supportNeeds } } } }
} } }"""


async def _resident_with_needs(gql) -> str:
    data = await gql(Role.COORDINATOR).data(CREATE, {"input": {
        "familyName": "参加", "givenName": "花子", "supportNeeds": NEEDS}})
    assert data["createResident"]["errors"] == []
    assert data["createResident"]["resident"]["supportNeeds"] == NEEDS
    return data["createResident"]["resident"]["id"]


async def test_the_supporters_of_their_session_read_it_and_the_read_is_audited(gql, town):
    resident_id = await _resident_with_needs(gql)
    me, token = await factories.supporter_login(town)
    mine = await factories.session(town.coordinator, factories.at(days=2, hour=10))
    await scheduling.assign_supporter(actor=town.coordinator, session_id=mine.id,
                                      supporter_id=me.id)
    from divide_support.core.ids import parse_global_id

    await scheduling.register(actor=town.coordinator, session_id=mine.id,
                              resident_id=parse_global_id(resident_id)[1])
    data = await gql(token=token).data(ATTENDEES, {"id": to_global_id("Session", mine.id)})
    [edge] = data["node"]["registrations"]["edges"]
    assert edge["node"]["resident"] == {"familyName": "参加", "supportNeeds": NEEDS}
    reads = await AuditEntry.filter(action="resident.pii_read").order_by("-id").first()
    assert reads.details["fields"] == ["supportNeeds"]
    assert reads.actor_user_id is not None


async def test_a_supporter_of_another_session_reaches_nobody(gql, town):
    resident_id = await _resident_with_needs(gql)
    _, token = await factories.supporter_login(town)
    data = await gql(token=token)("query($id: ID!) { node(id: $id) { ... on Resident "
                                  "{ supportNeeds } } }", {"id": resident_id})
    assert (data.get("data") or {}).get("node") is None


async def test_too_long_a_text_is_refused_at_its_field(gql, town):
    data = await gql(Role.COORDINATOR).data(CREATE, {"input": {
        "familyName": "参加", "givenName": "花子", "supportNeeds": "あ" * 501}})
    [error] = data["createResident"]["errors"]
    assert error["field"] == ["input", "supportNeeds"]
    assert "支援員に伝えたいこと" in error["message"]
    assert data["createResident"]["resident"] is None


async def test_erasure_removes_it(gql, town):
    resident_id = await _resident_with_needs(gql)
    from divide_support.core.ids import parse_global_id
    from divide_support.people.models import Resident

    pk = parse_global_id(resident_id)[1]
    await privacy.erase_resident(actor=town.admin, resident_id=pk)
    assert (await Resident.get(id=pk)).support_needs is None
