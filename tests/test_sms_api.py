"""The SMS outbox through GraphQL: what staff see, who may see it, what they can do."""

from __future__ import annotations

import factories
from sms_helpers import RecordingBackend, no_quiet_hours

from divide_support.audit.models import AuditEntry
from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.core.settings import Settings
from divide_support.messaging.backends import Outcome
from divide_support.messaging.dispatcher import Dispatcher
from divide_support.messaging.models import InboundMessage, Message, MessageKind, MessageStatus
from divide_support.people.models import Resident
from divide_support.scheduling import service as scheduling

MESSAGES = """query ($status: MessageStatus, $kind: MessageKind, $sessionId: ID) {
  messages(status: $status, kind: $kind, sessionId: $sessionId, first: 50) {
    totalCount
    edges { node { id kind status to body segments encoding sendAfter attempts errorCode
                   skipReason skipReasonText resident { familyName } registration { id } } }
  }
}"""


async def _seated(town, *, sms: bool = True):
    await no_quiet_hours(town.municipality.id)
    session = await factories.session(town.coordinator, factories.at(days=5, hour=14))
    resident = await factories.resident(town.coordinator, "山田", "花子", sms=sms)
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id)
    return session, resident, registration


async def test_staff_see_the_outbox_with_numbers_and_reasons(town, gql):
    session, resident, registration = await _seated(town)
    data = await gql().data(MESSAGES, {"kind": "CONFIRMATION"})
    assert data["messages"]["totalCount"] == 1
    node = data["messages"]["edges"][0]["node"]
    assert node["status"] == "PENDING" and node["kind"] == "CONFIRMATION"
    assert node["to"].startswith("090-")  # national format for staff
    assert "山田 花子様" in node["body"] and node["encoding"] == "UCS-2"
    assert node["segments"] == 2 and node["sendAfter"].endswith("+09:00")
    assert node["registration"]["id"] == to_global_id("Registration", registration.id)
    by_session = await gql().data(MESSAGES, {"sessionId": to_global_id("Session", session.id)})
    assert by_session["messages"]["totalCount"] == 3
    # reading the number is personal data: audited
    assert await AuditEntry.filter(action="resident.pii_read", object_ids=[resident.id]).count() == 2


async def test_planners_cannot_read_the_outbox(town, gql):
    await _seated(town)
    body = await gql(Role.PLANNER)(MESSAGES)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_another_municipality_sees_none_of_it(town, other_town, client):
    from conftest import GraphQLClient

    await _seated(town)
    data = await GraphQLClient(client, other_town.tokens[Role.COORDINATOR]).data(MESSAGES)
    assert data["messages"]["totalCount"] == 0


async def test_a_residents_messages_and_skipped_reasons(town, gql):
    _, resident, _ = await _seated(town, sms=False)
    data = await gql().data("""query ($id: ID!) { node(id: $id) { ... on Resident {
        messages { totalCount edges { node { status skipReason skipReasonText to } } } } } }""",
                            {"id": to_global_id("Resident", resident.id)})
    edges = data["node"]["messages"]["edges"]
    assert data["node"]["messages"]["totalCount"] == 3
    assert {e["node"]["status"] for e in edges} == {"SKIPPED"}
    assert {e["node"]["skipReason"] for e in edges} == {"NO_MOBILE"}
    assert edges[0]["node"]["skipReasonText"] == "携帯電話番号が登録されていません"
    assert edges[0]["node"]["to"] == ""


async def test_residents_to_phone_for_a_session(town, gql):
    session, _resident, _ = await _seated(town, sms=False)
    data = await gql().data("""query ($s: ID!) { residentsToPhone(sessionId: $s) {
        reason registration { resident { familyName givenName phone landline } } } }""",
                            {"s": to_global_id("Session", session.id)})
    [row] = data["residentsToPhone"]
    assert row["reason"] == "携帯電話番号が登録されていません"
    assert row["registration"]["resident"]["familyName"] == "山田"


async def test_resend_a_failed_message(town, gql):
    await _seated(town)
    await Dispatcher(RecordingBackend(Outcome.PERMANENT), Settings()).run_once()
    failed = await Message.get(kind=MessageKind.CONFIRMATION)
    assert failed.status == MessageStatus.FAILED
    data = await gql().data("""mutation ($id: ID!) { resendMessage(input: {messageId: $id}) {
        message { status } errors { code } } }""", {"id": to_global_id("Message", failed.id)})
    assert data["resendMessage"] == {"message": {"status": "PENDING"}, "errors": []}
    again = await gql().data("""mutation ($id: ID!) { resendMessage(input: {messageId: $id}) {
        message { status } errors { code message } } }""",
                             {"id": to_global_id("Message", failed.id)})
    assert again["resendMessage"]["errors"][0]["code"] == "NOT_RESENDABLE"
    assert "再送" in again["resendMessage"]["errors"][0]["message"]


async def test_staff_opt_a_resident_out_from_a_reply_and_back_in(town, gql):
    _, resident, _ = await _seated(town)
    reply = await InboundMessage.create(municipality_id=town.municipality.id,
                                        resident_id=resident.id, provider_id="SMreply1",
                                        from_number=resident.phone, body="もう送らないでください",
                                        needs_review=True)
    listed = await gql().data("{ smsReplies(needsReview: true) { totalCount edges { node { id body "
                              "needsReview resident { familyName } } } } }")
    assert listed["smsReplies"]["totalCount"] == 1
    reply_id = listed["smsReplies"]["edges"][0]["node"]["id"]
    data = await gql().data("""mutation ($r: ID!, $reply: ID) {
        setSmsOptOut(input: {residentId: $r, optedOut: true, replyId: $reply}) {
        resident { smsOptedOut } errors { code } } }""",
                            {"r": to_global_id("Resident", resident.id), "reply": reply_id})
    assert data["setSmsOptOut"] == {"resident": {"smsOptedOut": True}, "errors": []}
    await reply.refresh_from_db()
    assert reply.needs_review is False and reply.reviewed_at is not None
    await Dispatcher(RecordingBackend(), Settings()).run_once()
    confirmation = await Message.get(kind=MessageKind.CONFIRMATION)
    assert confirmation.status == MessageStatus.SKIPPED
    data = await gql().data("""mutation ($r: ID!) {
        setSmsOptOut(input: {residentId: $r, optedOut: false}) { resident { smsOptedOut } } }""",
                            {"r": to_global_id("Resident", resident.id)})
    assert data["setSmsOptOut"]["resident"]["smsOptedOut"] is False
    assert await AuditEntry.filter(action="resident.sms_opt_out").count() == 1
    assert await AuditEntry.filter(action="resident.sms_opt_in").count() == 1


async def test_set_sms_consent(town, gql):
    resident = await factories.resident(town.coordinator, sms=False)
    data = await gql().data("""mutation ($r: ID!) { setSmsConsent(input: {residentId: $r,
        consent: true}) { resident { smsConsent } errors { code field message } } }""",
                            {"r": to_global_id("Resident", resident.id)})
    assert data["setSmsConsent"]["resident"] is None
    assert data["setSmsConsent"]["errors"][0]["code"] == "NO_MOBILE"
    assert (await Resident.get(id=resident.id)).sms_consent is False


async def test_sms_usage_for_the_budget(town, gql):
    await _seated(town)
    await Dispatcher(RecordingBackend(), Settings()).run_once()
    data = await gql(Role.PLANNER).data("{ smsUsage { month messages segments "
                                        "municipality { name } } }")
    [row] = data["smsUsage"]
    assert row["messages"] == 1 and row["segments"] == 2
    assert row["municipality"]["name"] == "平塚市"
