"""Automated voice calls for residents SMS cannot reach, over HTTP end to end: the real
twilio client places the call at the fake Twilio on 127.0.0.1, and the test plays Twilio's
side of the call against our signed webhooks (the words, the key pressed, the call's end).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import factories
import pytest
from fake_twilio import (
    PUBLIC_BASE_URL,
    TWILIO_FROM,
    FakeTwilio,
    app_signed_by,
    dispatch,
    fake_twilio_server,  # noqa: F401  (the fake_twilio fixture)
)
from twilio.request_validator import RequestValidator

from divide_support.accounts.models import Municipality
from divide_support.audit.models import AuditEntry
from divide_support.core.actor import Role
from divide_support.messaging import service as messaging
from divide_support.messaging import timing
from divide_support.messaging.models import (
    CallOutcome,
    Channel,
    Message,
    MessageKind,
    MessageStatus,
    SkipReason,
)
from divide_support.messaging.voice import spoken_digits
from divide_support.people.models import ContactPreference, Resident
from divide_support.scheduling import notices
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import Registration, RegistrationStatus

LANDLINE = "0463-22-3333"
LANDLINE_E164 = "+81463223333"


@pytest.fixture
def call_town_env(monkeypatch, fake_twilio: FakeTwilio):
    """The app checks webhooks with the fake's auth token, for the public URL."""
    with app_signed_by(monkeypatch, fake_twilio.auth_token):
        yield


async def calls_any_time(municipality_id: int) -> None:
    """Calling at any hour of any day and without pacing, whatever the wall clock says (the
    window and the closed days have tests of their own below)."""
    await Municipality.filter(id=municipality_id).update(
        call_from_minute=0, call_until_minute=24 * 60 - 1, calls_on_closed_days=True,
        calls_per_minute=0, sms_per_second=0, sms_quiet_from_minute=0, sms_quiet_until_minute=0)


@pytest.fixture
async def call_town(town, call_town_env):
    await calls_any_time(town.municipality.id)
    return town


async def caller(town, family: str = "鈴木", **extra) -> Resident:
    """A resident with a landline and no mobile who agreed to automated calls."""
    resident = await factories.resident(town.coordinator, family, landline=LANDLINE, **extra)
    return await messaging.set_call_consent(actor=town.coordinator, resident_id=resident.id,
                                            consent=True)


async def booked(town, resident: Resident, *, capacity: int = 10, days: float = 3):
    session = await factories.session(town.coordinator, factories.at(days=days, hour=14),
                                      capacity=capacity)
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id)
    return session, registration


def twiml(response) -> ElementTree.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return ElementTree.fromstring(response.text)


def spoken(root: ElementTree.Element) -> str:
    return "".join("".join(say.itertext()) for say in root.iter("Say"))


async def placed_call(fake: FakeTwilio, town) -> tuple[dict, Message]:
    await dispatch(fake.settings())
    [record] = fake.calls
    message = await Message.get(provider_id=record["sid"])
    return record, message


# --- who gets a call, and what it says ----------------------------------------------------

async def test_a_landline_only_resident_who_consented_is_called_and_everyone_else_is_unchanged(
        call_town):
    calls = await caller(call_town)
    texter = await factories.resident(call_town.coordinator, "山田", sms=True)
    no_consent = await factories.resident(call_town.coordinator, "田中", landline=LANDLINE)
    session = await factories.session(call_town.coordinator, factories.at(days=3, hour=14))
    for person in (calls, texter, no_consent):
        await scheduling.register(actor=call_town.coordinator, session_id=session.id,
                                  resident_id=person.id)
    rows = {(m.resident_id, MessageKind(m.kind)): m for m in await Message.all()}
    for kind in (MessageKind.CONFIRMATION, MessageKind.REMINDER_DAY_BEFORE):
        assert rows[(calls.id, kind)].channel == Channel.VOICE
        assert rows[(calls.id, kind)].to == LANDLINE_E164
        assert rows[(calls.id, kind)].status == MessageStatus.PENDING
        assert rows[(texter.id, kind)].channel == Channel.SMS
        assert rows[(no_consent.id, kind)].channel == Channel.SMS
        assert rows[(no_consent.id, kind)].skip_reason == SkipReason.NO_MOBILE
    # Only the confirmation and the day-before reminder are calls.
    same_day = rows[(calls.id, MessageKind.REMINDER_SAME_DAY)]
    assert (same_day.channel, same_day.skip_reason) == (Channel.SMS, SkipReason.NO_MOBILE)
    # Staff still phone the one nobody reaches, not the one the calls reach.
    to_phone = await notices.residents_to_phone(actor=call_town.coordinator,
                                                session_id=session.id)
    assert [registration.resident_id for registration, _ in to_phone] == [no_consent.id]


async def test_a_phone_call_preference_with_a_mobile_is_called_on_the_landline_first(call_town):
    both = await caller(call_town, phone="090-7777-8888")
    assert both.contact_preference == ContactPreference.PHONE_CALL
    await booked(call_town, both)
    confirmation = await Message.get(resident_id=both.id, kind=MessageKind.CONFIRMATION)
    assert (confirmation.channel, confirmation.to) == (Channel.VOICE, LANDLINE_E164)


def test_the_centres_number_is_read_digit_by_digit():
    assert spoken_digits("0463-21-1111") == "ゼロ、ヨン、ロク、サン、の、ニ、イチ、の、イチ、イチ、イチ、イチ"
    assert spoken_digits("(0463) 21-1234") == "ゼロ、ヨン、ロク、サン、の、ニ、イチ、の、イチ、ニ、サン、ヨン"


async def test_the_call_speaks_slow_japanese_repeats_itself_and_offers_the_keys(
        call_town, fake_twilio: FakeTwilio, client):
    resident = await caller(call_town)
    session, _ = await booked(call_town, resident)
    record, message = await placed_call(fake_twilio, call_town)
    # What Twilio was asked: our number, the landline, machine detection, our signed URLs.
    [post] = fake_twilio.call_posts
    assert post.form["To"] == LANDLINE_E164 and post.form["From"] == TWILIO_FROM
    assert post.form["MachineDetection"] == "DetectMessageEnd"
    assert post.form["Url"].startswith(f"{PUBLIC_BASE_URL}/webhooks/twilio/voice?message_id={message.id}")
    assert message.status == MessageStatus.SENT

    root = twiml(await fake_twilio.answer_call(client, record["sid"]))
    local = session.starts_at.astimezone(factories.TOKYO)
    weekday = "月火水木金土日"[local.weekday()]
    words = spoken(root)
    for said in ("平塚市", "スマホ教室", f"鈴木、{resident.given_name}様",
                 f"{local.month}月{local.day}日、{weekday}曜日",
                 "午後2時から", "中央公民館", "スマホと充電器を、お持ちください",
                 "ゼロ、ヨン、ロク、サン、の、ニ、イチ、の、イチ、イチ、イチ、イチ",
                 "もう一度、申し上げます", "1を", "2を", "9を"):
        assert said in words, said
    assert words.count("「" + session.title + "」") == 2  # said, then repeated once
    for say in root.iter("Say"):
        assert say.get("language") == "ja-JP" and say.get("voice") == "Polly.Mizuki"
        assert say.find("prosody").get("rate") == "slow"
    [gather] = root.iter("Gather")
    assert gather.get("numDigits") == "1"
    assert gather.get("action").startswith(f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/gather")
    # 9: the whole message again, and the keys again.
    again = twiml(await fake_twilio.press(client, record["sid"], gather.get("action"), "9"))
    assert spoken(again) == words
    # The words staff read are the words said.
    assert (await Message.get(id=message.id)).voice_script in words


# --- the keys -----------------------------------------------------------------------------

async def test_pressing_2_gives_up_the_seat_as_staff_would_and_the_next_person_gets_it(
        call_town, fake_twilio: FakeTwilio, client):
    resident = await caller(call_town)
    session, registration = await booked(call_town, resident, capacity=1)
    waiting = await factories.resident(call_town.coordinator, "高橋", sms=True)
    waiter = await scheduling.register(actor=call_town.coordinator, session_id=session.id,
                                       resident_id=waiting.id)
    assert waiter.status == RegistrationStatus.WAITLISTED
    record, message = await placed_call(fake_twilio, call_town)
    root = twiml(await fake_twilio.answer_call(client, record["sid"]))
    action = next(root.iter("Gather")).get("action")

    answer = twiml(await fake_twilio.press(client, record["sid"], action, "2"))
    assert "お申し込みを、取り消しました" in spoken(answer)
    assert (await Registration.get(id=registration.id)).status == RegistrationStatus.CANCELLED
    assert (await Registration.get(id=waiter.id)).status == RegistrationStatus.CONFIRMED
    assert await Message.filter(registration_id=waiter.id,
                                kind=MessageKind.WAITLIST_PROMOTED).exists()
    cancelled = await AuditEntry.get(action="registration.cancel", object_ids=[registration.id])
    assert cancelled.actor_email == "voice-call"
    # The unsent reminder of the given-up seat is withdrawn.
    reminder = await Message.get(registration_id=registration.id,
                                 kind=MessageKind.REMINDER_DAY_BEFORE)
    assert reminder.status == MessageStatus.CANCELLED

    # Pressing 2 again (or 1) for a seat no longer held does nothing, and says so.
    for key in ("2", "1"):
        again = twiml(await fake_twilio.press(client, record["sid"], action, key))
        assert "すでに取り消されている" in spoken(again)
    assert (await Registration.get(id=waiter.id)).status == RegistrationStatus.CONFIRMED

    assert (await fake_twilio.end_call(client, record["sid"], duration=75)).status_code == 204
    message = await Message.get(id=message.id)
    assert (message.status, message.call_outcome, message.call_seconds) == (
        MessageStatus.DELIVERED, CallOutcome.GAVE_UP_SEAT, 75)
    # A signed keypress replayed after the call is over changes nothing.
    replayed = twiml(await fake_twilio.press(client, record["sid"], action, "1"))
    assert spoken(replayed) == "お電話ありがとうございました。"
    assert (await Message.get(id=message.id)).call_outcome == CallOutcome.GAVE_UP_SEAT


async def test_pressing_1_confirms_and_an_unknown_key_asks_again(
        call_town, fake_twilio: FakeTwilio, client):
    resident = await caller(call_town)
    _, registration = await booked(call_town, resident)
    record, message = await placed_call(fake_twilio, call_town)
    root = twiml(await fake_twilio.answer_call(client, record["sid"]))
    action = next(root.iter("Gather")).get("action")
    unknown = twiml(await fake_twilio.press(client, record["sid"], action, "5"))
    assert "もう一度、お願いします" in spoken(unknown) and list(unknown.iter("Gather"))
    confirmed = twiml(await fake_twilio.press(client, record["sid"], action, "1"))
    assert "当日、お待ちしております" in spoken(confirmed)
    await fake_twilio.end_call(client, record["sid"], duration=50)
    message = await Message.get(id=message.id)
    assert message.call_outcome == CallOutcome.CONFIRMED
    assert (await Registration.get(id=registration.id)).status == RegistrationStatus.CONFIRMED


async def test_an_answering_machine_gets_the_whole_message_and_is_asked_nothing(
        call_town, fake_twilio: FakeTwilio, client):
    resident = await caller(call_town)
    await booked(call_town, resident)
    record, message = await placed_call(fake_twilio, call_town)
    root = twiml(await fake_twilio.answer_call(client, record["sid"], "machine_end_beep"))
    assert list(root.iter("Gather")) == []
    assert spoken(root).count("こちらは、平塚市の、スマホ教室です") == 2
    assert root[-1].tag == "Hangup"
    await fake_twilio.end_call(client, record["sid"], duration=40)
    message = await Message.get(id=message.id)
    assert (message.call_outcome, message.answered_by) == (CallOutcome.MACHINE,
                                                           "machine_end_beep")


@pytest.mark.parametrize(("status", "outcome", "reason"), [
    ("no-answer", CallOutcome.NO_ANSWER, "自動音声の電話に出ませんでした"),
    ("busy", CallOutcome.BUSY, "自動音声の電話が話し中でした"),
    ("failed", CallOutcome.FAILED, "自動音声の電話がかかりませんでした"),
])
async def test_a_call_that_reached_nobody_puts_them_on_the_staffs_phone_list(
        call_town, fake_twilio: FakeTwilio, client, gql, status, outcome, reason):
    resident = await caller(call_town)
    session, _ = await booked(call_town, resident)
    record, message = await placed_call(fake_twilio, call_town)
    await fake_twilio.end_call(client, record["sid"], status=status)
    message = await Message.get(id=message.id)
    assert message.call_outcome == outcome
    assert message.status in (MessageStatus.UNDELIVERED, MessageStatus.FAILED)
    data = await gql().data(
        "query($s: ID!) { residentsToPhone(sessionId: $s) { reason "
        "registration { resident { familyName } } } }",
        {"s": _gid("Session", session.id)})
    assert data["residentsToPhone"] == [
        {"reason": reason, "registration": {"resident": {"familyName": "鈴木"}}}]


def _gid(type_name: str, pk: int) -> str:
    from divide_support.core.ids import to_global_id

    return to_global_id(type_name, pk)


# --- signatures ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/webhooks/twilio/voice", "/webhooks/twilio/voice/gather",
                                  "/webhooks/twilio/call-status"])
async def test_unsigned_or_wrongly_signed_call_webhooks_get_403_and_change_nothing(
        call_town, fake_twilio: FakeTwilio, client, path):
    resident = await caller(call_town)
    _, registration = await booked(call_town, resident)
    record, message = await placed_call(fake_twilio, call_town)
    url = f"{PUBLIC_BASE_URL}{path}?message_id={message.id}&attempt=1"
    params = {"CallSid": record["sid"], "Digits": "2", "CallStatus": "completed",
              "CallDuration": "30", "AnsweredBy": "human"}
    forged = RequestValidator("not-the-token").compute_signature(url, params)
    for headers in ({}, {"X-Twilio-Signature": forged}):
        response = await client.post(url.removeprefix(PUBLIC_BASE_URL), data=params,
                                     headers=headers)
        assert response.status_code == 403
    assert (await Registration.get(id=registration.id)).status == RegistrationStatus.CONFIRMED
    unchanged = await Message.get(id=message.id)
    assert (unchanged.status, unchanged.call_outcome) == (MessageStatus.SENT, None)


async def test_a_signed_key_for_another_calls_message_does_nothing(
        call_town, fake_twilio: FakeTwilio, client):
    """The sid must be the message's own call: a key pressed on one call cannot cancel the
    seat another call was about."""
    first = await caller(call_town)
    _, registration = await booked(call_town, first)
    record, message = await placed_call(fake_twilio, call_town)
    url = f"{PUBLIC_BASE_URL}/webhooks/twilio/voice/gather?message_id={message.id}"
    for params in ({"CallSid": "CA" + "0" * 32, "Digits": "2"},  # another call
                   {"CallSid": record["sid"], "Digits": "2"}):  # no attempt in the URL
        response = await fake_twilio.post_to_app(client, url, params)
        assert spoken(twiml(response)) == "お電話ありがとうございました。"
    assert (await Registration.get(id=registration.id)).status == RegistrationStatus.CONFIRMED


# --- the outbox's guarantees --------------------------------------------------------------

async def test_a_500_after_twilio_placed_the_call_is_settled_by_lookup_never_called_twice(
        call_town, fake_twilio: FakeTwilio):
    resident = await caller(call_town)
    await booked(call_town, resident)
    fake_twilio.fail_next("500")  # the call is placed, the answer says otherwise
    await dispatch(fake_twilio.settings())
    message = await Message.get(resident_id=resident.id, kind=MessageKind.CONFIRMATION)
    assert message.status == MessageStatus.UNKNOWN
    await dispatch(fake_twilio.settings())
    message = await Message.get(id=message.id)
    [record] = fake_twilio.calls
    assert (message.status, message.provider_id) == (MessageStatus.SENT, record["sid"])
    assert len(fake_twilio.call_posts) == 1


async def test_a_500_when_twilio_has_no_call_is_placed_again_once(
        call_town, fake_twilio: FakeTwilio):
    resident = await caller(call_town)
    await booked(call_town, resident)
    fake_twilio.fail_next("500", store=False)
    await dispatch(fake_twilio.settings())
    await dispatch(fake_twilio.settings())  # look-up: no record, so PENDING again
    await dispatch(fake_twilio.settings())
    message = await Message.get(resident_id=resident.id, kind=MessageKind.CONFIRMATION)
    assert message.status == MessageStatus.SENT
    assert len(fake_twilio.calls) == 1 and len(fake_twilio.call_posts) == 2


async def test_a_timeout_is_unknown_until_the_calls_status_callback_settles_it(
        call_town, fake_twilio: FakeTwilio, client):
    resident = await caller(call_town)
    await booked(call_town, resident)
    fake_twilio.delay_next(3.0)
    await dispatch(fake_twilio.settings(sms_send_timeout_seconds=0.5,
                                        sms_unknown_grace_seconds=3600))
    message = await Message.get(resident_id=resident.id, kind=MessageKind.CONFIRMATION)
    assert (message.status, message.provider_id) == (MessageStatus.UNKNOWN, None)
    [record] = fake_twilio.calls
    # The callback URL carries our id and attempt, so it settles the call we never heard of.
    assert parse_qs(urlsplit(record["_status_callback"]).query)["message_id"] == [str(message.id)]
    await fake_twilio.end_call(client, record["sid"], status="no-answer")
    message = await Message.get(id=message.id)
    assert (message.status, message.provider_id, message.call_outcome) == (
        MessageStatus.UNDELIVERED, record["sid"], CallOutcome.NO_ANSWER)
    await dispatch(fake_twilio.settings())
    assert len(fake_twilio.call_posts) == 1


async def test_a_worker_killed_during_the_call_request_never_calls_twice(
        call_town, fake_twilio: FakeTwilio):
    """The request left (send_started_at written), then the process died: the claim expires
    into UNKNOWN, and the look-up at Twilio finds the call."""
    from tortoise import connections

    from divide_support.messaging.backends.twilio import TwilioBackend
    from divide_support.messaging.dispatcher import Dispatcher

    resident = await caller(call_town)
    await booked(call_town, resident)
    settings = fake_twilio.settings()
    backend = TwilioBackend.from_settings(settings)
    try:
        crashed = Dispatcher(backend, settings, worker_id="crashed")
        [claimed] = await crashed.claim()
        await connections.get("default").execute_script(
            f"UPDATE message SET send_started_at = now(), attempts = 1 WHERE id = {claimed.id}")
        from divide_support.messaging.backends import OutgoingCall

        await backend.call(OutgoingCall(message_id=claimed.id, attempt=1, to=claimed.to,
                                        claimed_at=claimed.claimed_at))  # ... and it died
    finally:
        await backend.close()
    await connections.get("default").execute_script(
        "UPDATE message SET lease_until = now() - interval '1 second' WHERE status = 'SENDING'")
    await dispatch(settings)  # releases into UNKNOWN
    await dispatch(settings)  # looks the call up
    message = await Message.get(id=claimed.id)
    [record] = fake_twilio.calls
    assert (message.status, message.provider_id) == (MessageStatus.SENT, record["sid"])
    assert len(fake_twilio.call_posts) == 1


async def test_calls_wait_for_the_call_window(call_town, fake_twilio: FakeTwilio):
    resident = await caller(call_town)
    local = datetime.now(factories.TOKYO)
    opens = (local.hour * 60 + local.minute + 120) % 1440
    await Municipality.filter(id=call_town.municipality.id).update(
        call_from_minute=opens, call_until_minute=min(opens + 60, 1439))
    await booked(call_town, resident)
    stats = await dispatch(fake_twilio.settings())
    assert stats.sent == 0 and fake_twilio.call_posts == []
    message = await Message.get(resident_id=resident.id, kind=MessageKind.CONFIRMATION)
    assert message.status == MessageStatus.PENDING
    assert message.send_after.astimezone(factories.TOKYO).hour * 60 + \
        message.send_after.astimezone(factories.TOKYO).minute == opens


def _municipality(**values) -> Municipality:
    return Municipality(timezone="Asia/Tokyo", call_from_minute=600, call_until_minute=1140,
                        calls_on_closed_days=False, **values)


def _tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=factories.TOKYO)


def test_the_default_call_window_is_ten_to_seven_never_sundays_holidays_or_new_year():
    town = _municipality()
    assert timing.may_call_at(_tokyo(2026, 12, 5, 18, 59), town)  # Saturday
    assert not timing.may_call_at(_tokyo(2026, 12, 5, 19, 0), town)
    assert not timing.may_call_at(_tokyo(2026, 12, 7, 9, 59), town)
    # Saturday evening -> Monday 10:00 (Sunday skipped)
    assert timing.next_call_moment(_tokyo(2026, 12, 5, 19, 30), town) == _tokyo(2026, 12, 7, 10, 0)
    # 成人の日 (Monday 2027-01-11) -> Tuesday
    assert timing.next_call_moment(_tokyo(2027, 1, 10, 12, 0), town) == _tokyo(2027, 1, 12, 10, 0)
    # the year-end closure 12/29-1/3 (1/3/2027 a Sunday) -> Monday 1/4
    assert timing.next_call_moment(_tokyo(2026, 12, 28, 19, 0), town) == _tokyo(2027, 1, 4, 10, 0)
    # A Tuesday class after 成人の日: the day-before call moves back to Saturday.
    assert timing.call_day_before(_tokyo(2027, 1, 11, 10, 0), town) == _tokyo(2027, 1, 9, 10, 0)


# --- consent, the API, the budget ---------------------------------------------------------

async def test_call_consent_through_the_api_records_who_and_when_and_revives_the_reminder(
        call_town, gql):
    resident = await factories.resident(call_town.coordinator, "佐々木", landline=LANDLINE)
    await booked(call_town, resident)
    reminder = await Message.get(resident_id=resident.id, kind=MessageKind.REMINDER_DAY_BEFORE)
    assert reminder.skip_reason == SkipReason.NO_MOBILE
    mutation = """mutation($r: ID!, $c: Boolean!) { setCallConsent(input: {residentId: $r,
        consent: $c}) { resident { callConsent callConsentRecordedAt callConsentRecordedBy }
        errors { code message field } } }"""
    data = await gql().data(mutation, {"r": _gid("Resident", resident.id), "c": True})
    answer = data["setCallConsent"]
    assert answer["errors"] == []
    assert answer["resident"]["callConsent"] is True
    assert answer["resident"]["callConsentRecordedBy"] == "平塚市COORDINATOR"
    assert answer["resident"]["callConsentRecordedAt"].startswith(
        datetime.now(factories.TOKYO).strftime("%Y-%m-%d"))
    reminder = await Message.get(id=reminder.id)
    assert (reminder.status, reminder.channel, reminder.to) == (
        MessageStatus.PENDING, Channel.VOICE, LANDLINE_E164)
    entry = await AuditEntry.get(action="resident.call_consent", object_ids=[resident.id])
    assert entry.details == {"consent": True}

    nobody = await factories.resident(call_town.coordinator, "番号なし")
    refused = await gql().data(mutation, {"r": _gid("Resident", nobody.id), "c": True})
    assert refused["setCallConsent"]["resident"] is None
    assert refused["setCallConsent"]["errors"][0]["code"] == "NO_PHONE_NUMBER"
    assert refused["setCallConsent"]["errors"][0]["field"] == ["input", "residentId"]
    assert (await Resident.get(id=nobody.id)).call_consent is False


async def test_withdrawn_consent_stops_a_planned_call(call_town, fake_twilio: FakeTwilio):
    resident = await caller(call_town)
    await booked(call_town, resident)
    await messaging.set_call_consent(actor=call_town.coordinator, resident_id=resident.id,
                                     consent=False)
    await dispatch(fake_twilio.settings())
    assert fake_twilio.call_posts == []
    message = await Message.get(resident_id=resident.id, kind=MessageKind.CONFIRMATION)
    assert (message.status, message.channel, message.skip_reason) == (
        MessageStatus.SKIPPED, Channel.SMS, SkipReason.NO_MOBILE)


async def test_call_usage_reports_calls_and_billed_minutes_and_messages_show_outcomes(
        call_town, fake_twilio: FakeTwilio, client, gql):
    for family in ("鈴木", "佐藤"):
        resident = await caller(call_town, family)
        await booked(call_town, resident)
    await dispatch(fake_twilio.settings())
    for record, seconds in zip(fake_twilio.calls, (75, 30), strict=True):
        await fake_twilio.answer_call(client, record["sid"])
        await fake_twilio.end_call(client, record["sid"], duration=seconds)
    data = await gql(Role.ADMIN).data(
        "{ callUsage { month calls answered minutes } smsUsage { month messages } "
        "messages(first: 10) { edges { node { channel callOutcome callOutcomeText callSeconds "
        "voiceScript } } } }")
    month = datetime.now(factories.TOKYO).strftime("%Y-%m")
    assert data["callUsage"] == [{"month": month, "calls": 2, "answered": 2, "minutes": 3}]
    assert data["smsUsage"] == []  # calls are not SMS
    voice = [edge["node"] for edge in data["messages"]["edges"]
             if edge["node"]["channel"] == "VOICE" and edge["node"]["callOutcome"]]
    assert sorted(node["callSeconds"] for node in voice) == [30, 75]
    assert {node["callOutcomeText"] for node in voice} == {"電話に出て、最後まで聞きました"}
    assert all("こちらは、平塚市の" in node["voiceScript"] for node in voice)


async def test_erasing_a_resident_erases_the_words_of_their_calls(call_town):
    from divide_support.privacy import service as privacy

    resident = await caller(call_town)
    _, registration = await booked(call_town, resident, days=3)
    await scheduling.cancel_registration(actor=call_town.coordinator,
                                         registration_id=registration.id)
    await privacy.erase_resident(actor=call_town.admin, resident_id=resident.id)
    for message in await Message.filter(resident_id=resident.id):
        assert message.voice_script is None and "鈴木" not in message.body



# --- the console ----------------------------------------------------------------------------

async def test_staff_record_call_consent_on_the_residents_page_and_see_the_calls(
        town, console, fake_twilio: FakeTwilio, client, monkeypatch):
    # The console over plain http here; Twilio's webhooks need the public https URL, set
    # only while the call is played (a https base makes the console's cookies Secure).
    call_town = town
    await calls_any_time(town.municipality.id)
    await console.login("hiratsuka-coordinator@example.jp")
    resident = await factories.resident(call_town.coordinator, "鈴木", landline=LANDLINE)
    path = f"/residents/{_gid('Resident', resident.id)}"
    await console.get(path)
    assert "自動音声の電話でのお知らせ" in console.text()
    await console.post(f"{path}/call-consent", {"consent": "yes"})
    text = console.text()
    assert "自動音声の電話でのお知らせへの同意を記録しました" in text
    assert "平塚市COORDINATORが記録" in text
    await booked(call_town, resident)
    await dispatch(fake_twilio.settings())
    [record] = fake_twilio.calls
    with app_signed_by(monkeypatch, fake_twilio.auth_token):
        await fake_twilio.answer_call(client, record["sid"], "machine_end_silence")
        await fake_twilio.end_call(client, record["sid"], duration=20)
    await console.get(path)
    text = console.text()
    assert "（自動音声の電話）" in text
    assert "留守番電話に伝言を残しました" in text
    await console.post(f"{path}/call-consent", {"consent": "no"})
    assert "自動音声の電話でのお知らせへの同意を取り消しました" in console.text()
    assert (await Resident.get(id=resident.id)).call_consent is False


async def test_a_message_planned_before_calls_existed_is_never_a_silent_call(
        call_town, fake_twilio: FakeTwilio):
    """Rows from before the migration have no words to speak: they stay what they were."""
    resident = await factories.resident(call_town.coordinator, "古川", landline=LANDLINE)
    await booked(call_town, resident)
    await Message.filter(resident_id=resident.id).update(voice_script=None)
    await messaging.set_call_consent(actor=call_town.coordinator, resident_id=resident.id,
                                     consent=True)
    reminder = await Message.get(resident_id=resident.id, kind=MessageKind.REMINDER_DAY_BEFORE)
    assert (reminder.status, reminder.channel) == (MessageStatus.SKIPPED, Channel.SMS)
    await dispatch(fake_twilio.settings())
    assert fake_twilio.call_posts == []


async def test_a_waitlist_place_is_not_a_call_staff_phone_them(call_town):
    """The keys are about a seat: a waitlisted resident is not asked to come."""
    seated = await caller(call_town, "早川")
    session, _ = await booked(call_town, seated, capacity=1)
    waiting = await caller(call_town, "遠藤")
    place = await scheduling.register(actor=call_town.coordinator, session_id=session.id,
                                      resident_id=waiting.id)
    assert place.status == RegistrationStatus.WAITLISTED
    confirmation = await Message.get(registration_id=place.id, kind=MessageKind.CONFIRMATION)
    assert (confirmation.channel, confirmation.voice_script) == (Channel.SMS, None)
    assert confirmation.skip_reason == SkipReason.NO_MOBILE


def test_noon_is_never_read_as_twelve_and_a_fax_is_no_answering_machine():
    from divide_support.messaging.templates import MessageFacts
    from divide_support.messaging.voice import is_fax, is_machine, spoken_date

    facts = MessageFacts(municipality_name="平塚市", centre_phone=None, timezone="Asia/Tokyo",
                         is_class=True, title="t", venue_name="v",
                         starts_at=_tokyo(2026, 12, 10, 12, 30), family_name="a", given_name="b")
    assert spoken_date(facts) == "12月10日、木曜日、午後0時30分から"
    assert is_machine("machine_end_beep") and not is_machine("fax") and is_fax("fax")


async def test_two_calls_to_one_home_phone_are_never_mixed_up(
        call_town, fake_twilio: FakeTwilio, client):
    """A call has no body to match: with two calls to one number since the claim, the look-up
    adopts neither, and the ambiguous message waits for the callback that names it."""
    for family in ("鈴木", "鈴木"):
        await booked(call_town, await caller(call_town, family))
    fake_twilio.fail_next("500")  # one of the two is placed, its answer lost
    await dispatch(fake_twilio.settings())
    [unknown] = await Message.filter(status=MessageStatus.UNKNOWN)
    await dispatch(fake_twilio.settings())  # the look-up finds two calls: no guess
    assert (await Message.get(id=unknown.id)).status == MessageStatus.UNKNOWN
    [record] = [r for r in fake_twilio.calls if parse_qs(urlsplit(
        r["_status_callback"]).query)["message_id"] == [str(unknown.id)]]
    await fake_twilio.end_call(client, record["sid"], status="busy")
    settled = await Message.get(id=unknown.id)
    assert (settled.provider_id, settled.call_outcome) == (record["sid"], CallOutcome.BUSY)
    assert len(fake_twilio.call_posts) == 2
    sids = [m.provider_id for m in await Message.filter(channel=Channel.VOICE,
                                                       kind=MessageKind.CONFIRMATION)]
    assert len(set(sids)) == 2


def test_a_municipality_sets_its_own_call_hours_and_pace_in_its_seed():
    from divide_support.seed import parse_municipalities

    base = {"code": "142034", "name": "平塚市"}
    [default] = parse_municipalities({"municipalities": [base]})
    assert (default.call_from_minute, default.call_until_minute, default.calls_per_minute,
            default.calls_on_closed_days) == (600, 1140, 6.0, False)
    [own] = parse_municipalities({"municipalities": [
        {**base, "call_hours": "09:30-17:00", "calls_per_minute": 2,
         "calls_on_closed_days": True}]})
    assert (own.call_from_minute, own.call_until_minute, own.calls_per_minute,
            own.calls_on_closed_days) == (570, 1020, 2.0, True)
    for wrong, says in (({"call_hours": "19:00-10:00"}, "must end after it starts"),
                        ({"call_hours": "10時から"}, "must look like"),
                        ({"calls_per_minute": 100}, r"from 0 \(no limit\) to 60"),
                        ({"calls_on_closed_days": "yes"}, "true or false")):
        with pytest.raises(ValueError, match=says):
            parse_municipalities({"municipalities": [{**base, **wrong}]})


def test_a_reminder_call_hours_after_the_confirmation_call_is_not_made():
    """Booked the evening before: the confirmation call waits for 10:00, and the reminder
    call would ring at 10:00 too. One call says it all."""
    from divide_support.messaging.planning import no_second_call_soon

    ten = _tokyo(2026, 12, 10, 10, 0)

    def row(kind: MessageKind, send_after: datetime, registration: int = 1) -> Message:
        return Message(kind=kind, channel=Channel.VOICE, status=MessageStatus.PENDING,
                       registration_id=registration, send_after=send_after)

    close = [row(MessageKind.CONFIRMATION, ten), row(MessageKind.REMINDER_DAY_BEFORE, ten)]
    no_second_call_soon(close)
    assert [(m.status, m.skip_reason) for m in close] == [
        (MessageStatus.PENDING, None), (MessageStatus.SKIPPED, SkipReason.TOO_LATE)]
    apart = [row(MessageKind.CONFIRMATION, ten),
             row(MessageKind.REMINDER_DAY_BEFORE, _tokyo(2026, 12, 14, 10, 0)),
             row(MessageKind.REMINDER_DAY_BEFORE, ten, registration=2)]  # another seat's
    no_second_call_soon(apart)
    assert [m.status for m in apart] == [MessageStatus.PENDING] * 3
