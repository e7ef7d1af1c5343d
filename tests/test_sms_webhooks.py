"""Twilio's webhooks through the ASGI app, signed as Twilio signs them.

Status callbacks move a sent message forward (delivered, undelivered) and settle messages
whose send ended ambiguously; replies opt residents out and in, answer HELP with the
centre's phone number, and put "please stop"-like free text in front of staff. Anything
not signed for the public URL with the auth token is refused and changes nothing.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from urllib.parse import urlsplit

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
from divide_support.core.settings import get_settings
from divide_support.messaging import service as messaging
from divide_support.messaging.models import (
    InboundAction,
    InboundMessage,
    Message,
    MessageKind,
    MessageStatus,
)
from divide_support.people.models import Resident
from divide_support.scheduling import notices
from divide_support.scheduling import service as scheduling

TOKEN = secrets.token_hex(16)
PHONE = "090-1234-5678"
E164 = "+819012345678"
STATUS = "/webhooks/twilio/status"
INBOUND = "/webhooks/twilio/inbound?municipality=142034"  # 平塚市


@pytest.fixture(autouse=True)
def twilio_env(monkeypatch):
    """The app reads TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL through the cached get_settings()."""
    with app_signed_by(monkeypatch, TOKEN):
        yield


@pytest.fixture
async def sms_town(town):
    await Municipality.filter(id=town.municipality.id).update(
        sms_per_second=0, sms_quiet_from_minute=0, sms_quiet_until_minute=0)
    return town


def sid() -> str:
    return "SM" + secrets.token_hex(16)


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


async def post_signed(client, path: str, params: dict[str, str], *, token: str = TOKEN,
                      signed_url: str | None = None):
    """POST as Twilio does: form-encoded, signed over the public URL and every parameter."""
    signature = sign(signed_url or PUBLIC_BASE_URL + path, params, token)
    return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def status_params(message_sid: str, status: str, error_code: str | None = None) -> dict[str, str]:
    params = {
        "AccountSid": "AC" + "1" * 32, "ApiVersion": "2010-04-01", "From": TWILIO_FROM,
        "To": E164, "MessageSid": message_sid, "SmsSid": message_sid,
        "MessageStatus": status, "SmsStatus": status,
    }
    if error_code is not None:
        params["ErrorCode"] = error_code
    return params


def inbound_params(body: str, *, from_: str = E164, message_sid: str | None = None) -> dict[str, str]:
    """A reply as Twilio posts it (blank geographic fields included: they are signed too)."""
    message_sid = message_sid or sid()
    return {
        "AccountSid": "AC" + "1" * 32, "ApiVersion": "2010-04-01", "Body": body,
        "From": from_, "FromCity": "", "FromCountry": "JP", "FromState": "", "FromZip": "",
        "MessageSid": message_sid, "NumMedia": "0", "NumSegments": "1",
        "SmsMessageSid": message_sid, "SmsSid": message_sid, "SmsStatus": "received",
        "To": TWILIO_FROM, "ToCity": "", "ToCountry": "JP", "ToState": "", "ToZip": "",
    }


def callback_path(url: str) -> str:
    """The path and query of the StatusCallback URL Twilio was given."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_BASE_URL
    return f"{parts.path}?{parts.query}"


async def sent_message(town, fake: FakeTwilio, **settings) -> tuple[Message, str]:
    """A confirmation sent through the (fake) provider: the message and its callback path."""
    session = await factories.session(town.coordinator, factories.at(days=3, hour=14))
    resident = await factories.resident(town.coordinator, sms=True, phone=PHONE)
    await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id)
    message = await Message.get(resident_id=resident.id, kind=MessageKind.CONFIRMATION)
    await dispatch(fake.settings(**settings))
    return await Message.get(id=message.id), callback_path(fake.posts[-1].form["StatusCallback"])


async def snapshot() -> list[tuple]:
    return [(m.id, m.status, m.provider_id, m.provider_status, m.error_code, m.delivered_at)
            for m in await Message.all().order_by("id")]


# --- status callbacks ----------------------------------------------------------------------

async def test_delivered_callback_marks_the_message_delivered(sms_town, client, fake_twilio):
    message, path = await sent_message(sms_town, fake_twilio)
    assert message.status == MessageStatus.SENT and message.delivered_at is None

    response = await post_signed(client, path, status_params(message.provider_id, "delivered"))

    assert response.status_code == 204
    message = await Message.get(id=message.id)
    assert message.status == MessageStatus.DELIVERED
    assert message.provider_status == "delivered"
    assert message.delivered_at is not None
    assert message.delivered_at <= datetime.now(UTC)


@pytest.mark.parametrize("forgery", ["missing", "other token", "tampered", "empty"])
async def test_unsigned_or_forged_callback_is_refused_and_changes_nothing(
        sms_town, client, fake_twilio, forgery):
    message, path = await sent_message(sms_town, fake_twilio)
    params = status_params(message.provider_id, "delivered")
    headers = {
        "missing": {},
        "other token": {"X-Twilio-Signature": sign(PUBLIC_BASE_URL + path, params, token="x" * 32)},
        # signed for "sent", posted as "delivered"
        "tampered": {"X-Twilio-Signature": sign(PUBLIC_BASE_URL + path,
                                                status_params(message.provider_id, "sent"))},
        "empty": {"X-Twilio-Signature": ""},
    }[forgery]
    before = await snapshot()

    response = await client.post(path, data=params, headers=headers)

    assert response.status_code == 403
    assert await snapshot() == before
    assert (await Message.get(id=message.id)).status == MessageStatus.SENT


async def test_callback_is_refused_when_no_auth_token_is_configured(
        sms_town, client, fake_twilio, monkeypatch):
    message, path = await sent_message(sms_town, fake_twilio)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    get_settings.cache_clear()
    before = await snapshot()

    response = await post_signed(client, path, status_params(message.provider_id, "delivered"))

    assert response.status_code == 403
    assert await snapshot() == before


async def test_callbacks_out_of_order_never_move_a_message_back(sms_town, client, fake_twilio):
    message, path = await sent_message(sms_town, fake_twilio)

    for status in ("delivered", "sent", "sending", "queued"):
        response = await post_signed(client, path, status_params(message.provider_id, status))
        assert response.status_code == 204

    message = await Message.get(id=message.id)
    assert message.status == MessageStatus.DELIVERED
    assert message.provider_status == "delivered"


async def test_undelivered_callback_records_the_carrier_error(sms_town, client, fake_twilio):
    message, path = await sent_message(sms_town, fake_twilio)

    response = await post_signed(client, path,
                                 status_params(message.provider_id, "undelivered", "30005"))

    assert response.status_code == 204
    message = await Message.get(id=message.id)
    assert message.status == MessageStatus.UNDELIVERED
    assert message.error_code == "30005"
    assert message.delivered_at is None
    # staff are told to phone this resident instead, with the reason
    to_phone = await notices.residents_to_phone(actor=sms_town.coordinator,
                                                  session_id=message.session_id)
    assert [(reg.id, why) for reg, why in to_phone] == [
        (message.registration_id, "SMSが届きませんでした（30005）")]


async def test_failed_callback_for_unsubscribed_number_opts_the_resident_out(
        sms_town, client, fake_twilio):
    message, path = await sent_message(sms_town, fake_twilio)

    response = await post_signed(client, path, status_params(message.provider_id, "failed", "21610"))

    assert response.status_code == 204
    message = await Message.get(id=message.id)
    assert message.status == MessageStatus.FAILED
    assert message.error_code == "21610"
    assert (await Resident.get(id=message.resident_id)).sms_opted_out is True


async def test_callback_for_an_unknown_sid_is_acknowledged_and_ignored(sms_town, client, fake_twilio):
    await sent_message(sms_town, fake_twilio)
    before = await snapshot()

    response = await post_signed(client, STATUS, status_params(sid(), "delivered"))

    assert response.status_code == 204
    assert await snapshot() == before


async def test_callback_settles_a_message_whose_send_ended_unknown(sms_town, client, fake_twilio):
    fake_twilio.fail_next("500")  # Twilio took it, but we never learnt its sid
    message, path = await sent_message(sms_town, fake_twilio, sms_unknown_grace_seconds=600)
    assert message.status == MessageStatus.UNKNOWN and message.provider_id is None
    twilio_sid = fake_twilio.sent[0]["sid"]
    assert path == f"{STATUS}?message_id={message.id}&attempt=1"

    response = await post_signed(client, path, status_params(twilio_sid, "sent"))

    assert response.status_code == 204
    message = await Message.get(id=message.id)
    assert message.status == MessageStatus.SENT
    assert message.provider_id == twilio_sid
    assert message.next_attempt_at is None

    # later callbacks find it by its sid
    await post_signed(client, STATUS, status_params(twilio_sid, "delivered"))
    assert (await Message.get(id=message.id)).status == MessageStatus.DELIVERED


@pytest.mark.parametrize("query", ["?message_id={id}&attempt=2", "?message_id={id}&attempt=0",
                                   "?message_id={id}", ""])
async def test_callback_for_another_attempt_does_not_adopt_the_sid(sms_town, client, fake_twilio, query):
    fake_twilio.fail_next("500")
    message, _ = await sent_message(sms_town, fake_twilio, sms_unknown_grace_seconds=600)
    assert message.status == MessageStatus.UNKNOWN and message.attempts == 1
    before = await snapshot()

    response = await post_signed(client, STATUS + query.format(id=message.id),
                                 status_params(fake_twilio.sent[0]["sid"], "delivered"))

    assert response.status_code == 204
    assert await snapshot() == before


# --- replies -------------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["STOP", "停止", "配信停止", "ＳＴＯＰ", "stop", " 停止。"])
async def test_stop_reply_opts_the_resident_out_in_that_town_only(town, other_town, client, word):
    resident = await factories.resident(town.coordinator, sms=True, phone=PHONE)
    same_number_elsewhere = await factories.resident(other_town.coordinator, sms=True, phone=PHONE)

    response = await post_signed(client, INBOUND, inbound_params(word))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Message>【平塚市" in response.text and "配信を停止しました" in response.text
    assert (await Resident.get(id=resident.id)).sms_opted_out is True
    assert (await Resident.get(id=same_number_elsewhere.id)).sms_opted_out is False
    [inbound] = await InboundMessage.all()
    assert inbound.action == InboundAction.OPT_OUT
    assert inbound.body == word and inbound.from_number == E164
    assert inbound.resident_id == resident.id
    assert inbound.municipality_id == town.municipality.id
    assert inbound.needs_review is False


@pytest.mark.parametrize("word", ["START", "再開"])
async def test_start_reply_opts_the_resident_back_in(town, client, word):
    resident = await factories.resident(town.coordinator, sms=True, phone=PHONE)
    await Resident.filter(id=resident.id).update(sms_opted_out=True)

    response = await post_signed(client, INBOUND, inbound_params(word))

    assert response.status_code == 200
    assert "配信を再開しました" in response.text
    assert (await Resident.get(id=resident.id)).sms_opted_out is False
    assert (await InboundMessage.get(resident_id=resident.id)).action == InboundAction.OPT_IN


@pytest.mark.parametrize("word", ["HELP", "ヘルプ"])
async def test_help_reply_gets_the_centres_phone_number(town, client, word):
    resident = await factories.resident(town.coordinator, sms=True, phone=PHONE)

    response = await post_signed(client, INBOUND, inbound_params(word))

    assert response.status_code == 200
    assert "0463-21-1111" in response.text
    assert "<Message>" in response.text
    assert (await Resident.get(id=resident.id)).sms_opted_out is False
    assert (await InboundMessage.get(resident_id=resident.id)).action == InboundAction.HELP


async def test_free_text_asking_to_stop_goes_to_staff_without_opting_out(town, client):
    resident = await factories.resident(town.coordinator, sms=True, phone=PHONE)

    response = await post_signed(client, INBOUND, inbound_params("もう送らないでください"))

    assert response.status_code == 200
    assert "<Message>" not in response.text  # no automatic answer to free text
    assert (await Resident.get(id=resident.id)).sms_opted_out is False
    [inbound] = await InboundMessage.all()
    assert inbound.action == InboundAction.NONE
    assert inbound.needs_review is True
    assert inbound.body == "もう送らないでください"
    assert inbound.resident_id == resident.id
    review = await messaging.replies_query(town.coordinator, needs_review=True)
    assert [r.id for r in review] == [inbound.id]


async def test_thanks_is_kept_but_needs_no_review(town, client):
    resident = await factories.resident(town.coordinator, sms=True, phone=PHONE)

    response = await post_signed(client, INBOUND, inbound_params("ありがとう"))

    assert response.status_code == 200
    assert "<Message>" not in response.text
    [inbound] = await InboundMessage.all()
    assert (inbound.action, inbound.needs_review) == (InboundAction.NONE, False)
    assert inbound.resident_id == resident.id
    assert (await Resident.get(id=resident.id)).sms_opted_out is False


async def test_the_same_reply_delivered_twice_is_stored_and_acted_on_once(town, client):
    resident = await factories.resident(town.coordinator, sms=True, phone=PHONE)
    params = inbound_params("停止")

    first = await post_signed(client, INBOUND, params)
    second = await post_signed(client, INBOUND, params)

    assert first.status_code == second.status_code == 200
    assert await InboundMessage.filter(provider_id=params["MessageSid"]).count() == 1
    assert (await Resident.get(id=resident.id)).sms_opted_out is True
    assert len(await AuditEntry.filter(action="resident.sms_opt_out")) == 1


async def test_reply_signed_for_the_internal_url_is_refused(town, client):
    resident = await factories.resident(town.coordinator, sms=True, phone=PHONE)

    response = await post_signed(client, INBOUND, inbound_params("STOP"),
                                 signed_url="http://testserver" + INBOUND)

    assert response.status_code == 403
    assert await InboundMessage.all().count() == 0
    assert (await Resident.get(id=resident.id)).sms_opted_out is False


async def test_reply_without_a_town_in_the_url_goes_to_the_town_that_wrote_last(sms_town, other_town, client):
    session = await factories.session(sms_town.coordinator, factories.at(days=3, hour=14))
    resident = await factories.resident(sms_town.coordinator, sms=True, phone=PHONE)
    same_number_elsewhere = await factories.resident(other_town.coordinator, sms=True, phone=PHONE)
    await scheduling.register(actor=sms_town.coordinator, session_id=session.id, resident_id=resident.id)

    response = await post_signed(client, "/webhooks/twilio/inbound", inbound_params("停止"))

    assert response.status_code == 200
    assert "【平塚市" in response.text
    assert (await Resident.get(id=resident.id)).sms_opted_out is True
    assert (await Resident.get(id=same_number_elsewhere.id)).sms_opted_out is False
    assert (await InboundMessage.get(resident_id=resident.id)).municipality_id == sms_town.municipality.id


async def test_reply_from_a_stranger_is_kept_for_review(town, client):
    response = await post_signed(client, "/webhooks/twilio/inbound",
                                 inbound_params("こんにちは", from_="+818011112222"))

    assert response.status_code == 200
    [inbound] = await InboundMessage.all()
    assert inbound.municipality_id is None and inbound.resident_id is None
    assert inbound.from_number == "+818011112222"
    assert inbound.needs_review is True


async def test_a_late_callback_for_a_failed_attempt_does_not_settle_its_resend(sms_town, client,
                                                                              fake_twilio):
    """The first attempt failed at the carrier; staff resent it. A late callback about the
    first attempt must not make the resend look sent."""
    from divide_support.messaging import service as messaging

    message, path = await sent_message(sms_town, fake_twilio)
    old_sid = message.provider_id
    failed = await post_signed(client, path, status_params(old_sid, "failed", "30003"))
    assert failed.status_code == 204
    assert (await Message.get(id=message.id)).status == MessageStatus.FAILED
    await messaging.resend(actor=sms_town.coordinator, message_id=message.id)
    before = await snapshot()

    late = await post_signed(client, path, status_params(old_sid, "delivered"))

    assert late.status_code == 204
    assert await snapshot() == before
    assert (await Message.get(id=message.id)).status == MessageStatus.PENDING


async def test_stop_from_a_number_no_municipality_knows_promises_nothing(town, client):
    """No ?municipality= and nothing ever sent to that number: nobody can act on it, so no
    "stopped" reply; it waits for a person."""
    response = await post_signed(client, "/webhooks/twilio/inbound",
                                 inbound_params("STOP", from_="+819099990000"))
    assert response.status_code == 200
    assert "<Message>" not in response.text
    [inbound] = await InboundMessage.all()
    assert inbound.municipality_id is None and inbound.needs_review is True
