"""The Twilio backend through the dispatcher, over real HTTP, against a fake Twilio.

What matters to the people involved: a resident gets each message once (never twice after an
ambiguous failure, never lost after a refused connection), a number Twilio refuses shows up
for staff as failed with Twilio's code, and a resident who unsubscribed gets nothing more.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import factories
import pytest
from fake_twilio import (
    PUBLIC_BASE_URL,
    TWILIO_FROM,
    FakeTwilio,
    closed_port,
    dispatch,
    fake_twilio_server,  # noqa: F401  (the fake_twilio fixture)
)

from divide_support.accounts.models import Municipality
from divide_support.audit.models import AuditEntry
from divide_support.messaging.models import Message, MessageKind, MessageStatus, SkipReason
from divide_support.people.models import Resident
from divide_support.scheduling import service as scheduling

PHONE = "090-1234-5678"
E164 = "+819012345678"


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def sms_town(town):
    """平塚市 sending without pacing and without quiet hours, whatever the wall clock says."""
    await Municipality.filter(id=town.municipality.id).update(
        sms_per_second=0, sms_quiet_from_minute=0, sms_quiet_until_minute=0)
    return town


async def book(town, *, phone: str = PHONE, starts_at: datetime | None = None,
               family: str = "山田") -> tuple[Resident, Message]:
    """A resident who wants SMS books a class: the confirmation is due now."""
    session = await factories.session(town.coordinator, starts_at or factories.at(days=3, hour=14))
    resident = await factories.resident(town.coordinator, family, sms=True, phone=phone)
    await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id)
    confirmation = await Message.get(resident_id=resident.id, kind=MessageKind.CONFIRMATION)
    assert confirmation.status == MessageStatus.PENDING
    return resident, confirmation


async def reload(message: Message) -> Message:
    return await Message.get(id=message.id)


async def make_due(message: Message) -> None:
    """The backoff (or grace) has passed."""
    await Message.filter(id=message.id).update(next_attempt_at=now() - timedelta(seconds=1))


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def callback_query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# --- accepted ------------------------------------------------------------------------------

async def test_accepted_message_is_sent_with_what_twilio_needs(sms_town, fake_twilio: FakeTwilio):
    resident, message = await book(sms_town)
    session_start = (await message.session).starts_at

    stats = await dispatch(fake_twilio.settings())

    assert stats.sent == 1
    message = await reload(message)
    assert message.status == MessageStatus.SENT
    assert [record["sid"] for record in fake_twilio.sent] == [message.provider_id]
    assert message.provider_id.startswith("SM") and len(message.provider_id) == 34
    assert message.provider_status == "queued"
    assert message.sent_at is not None and message.attempts == 1
    assert message.error_code is None and message.claimed_by is None
    [post] = fake_twilio.posts
    assert post.status == 201
    assert post.auth == (fake_twilio.account_sid, fake_twilio.auth_token)
    assert post.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    assert post.form["To"] == E164 == resident.phone
    assert post.form["From"] == TWILIO_FROM
    assert "MessagingServiceSid" not in post.form
    assert post.form["Body"] == message.body
    assert post.form["Body"].startswith("【平塚市") and "0463-21-1111" in post.form["Body"]
    assert post.form["StatusCallback"] == (
        f"{PUBLIC_BASE_URL}/webhooks/twilio/status?message_id={message.id}&attempt=1")
    validity = int(post.form["ValidityPeriod"])
    # three days ahead: Twilio's own maximum, still before the class starts
    assert validity == 36_000
    assert validity <= (session_start - now()).total_seconds()


async def test_validity_period_ends_when_the_class_starts(sms_town, fake_twilio: FakeTwilio):
    starts_at = (now() + timedelta(hours=3)).replace(second=0, microsecond=0)
    _, message = await book(sms_town, starts_at=starts_at)

    await dispatch(fake_twilio.settings())

    assert (await reload(message)).status == MessageStatus.SENT
    [post] = fake_twilio.posts
    validity = int(post.form["ValidityPeriod"])
    until_start = (starts_at - now()).total_seconds()
    # computed when the request left, a moment before this line
    assert until_start - 120 < validity <= until_start + 5


async def test_messaging_service_sid_is_used_instead_of_a_from_number(sms_town, fake_twilio: FakeTwilio):
    _, message = await book(sms_town)
    service_sid = "MG" + "0" * 32

    await dispatch(fake_twilio.settings(twilio_from=None, twilio_messaging_service_sid=service_sid))

    [post] = fake_twilio.posts
    assert post.form["MessagingServiceSid"] == service_sid
    assert "From" not in post.form
    message = await reload(message)
    assert message.status == MessageStatus.SENT
    assert message.provider_status == "accepted"
    assert message.provider_id == fake_twilio.sent[0]["sid"]


async def test_only_due_messages_go_and_each_gets_its_own_sid(sms_town, fake_twilio: FakeTwilio):
    booked = [await book(sms_town, phone=f"090-1234-56{n:02d}") for n in range(3)]

    stats = await dispatch(fake_twilio.settings())

    assert stats.sent == 3
    # the reminders are planned for later: only the three confirmations left
    assert len(fake_twilio.posts) == 3
    assert await Message.filter(status=MessageStatus.PENDING).count() == 6
    messages = [await reload(message) for _, message in booked]
    assert {m.status for m in messages} == {MessageStatus.SENT}
    assert sorted(m.provider_id for m in messages) == sorted(r["sid"] for r in fake_twilio.sent)
    assert sorted(p.form["To"] for p in fake_twilio.posts) == sorted(r.phone for r, _ in booked)

    # a second round has nothing to do
    await dispatch(fake_twilio.settings())
    assert len(fake_twilio.posts) == 3


# --- provably not taken: retried ----------------------------------------------------------

async def test_rate_limited_send_is_retried_later_and_sent_once(sms_town, fake_twilio: FakeTwilio):
    _, message = await book(sms_town)
    fake_twilio.fail_next("429")

    stats = await dispatch(fake_twilio.settings())

    assert stats.retried == 1
    message = await reload(message)
    assert message.status == MessageStatus.PENDING
    assert message.retries == 1
    assert message.error_code == "20429"
    assert message.next_attempt_at is not None and message.next_attempt_at > now()
    assert message.provider_id is None and message.send_started_at is None
    assert fake_twilio.sent == []

    # not yet: the backoff holds
    await dispatch(fake_twilio.settings())
    assert len(fake_twilio.posts) == 1

    await make_due(message)
    await dispatch(fake_twilio.settings())

    message = await reload(message)
    assert message.status == MessageStatus.SENT
    assert len(fake_twilio.posts) == 2
    assert len(fake_twilio.sent) == 1
    assert message.provider_id == fake_twilio.sent[0]["sid"]
    assert message.attempts == 2
    assert callback_query(fake_twilio.posts[1].form["StatusCallback"])["attempt"] == ["2"]


async def test_retries_give_up_after_the_limit(sms_town, fake_twilio: FakeTwilio):
    _, message = await book(sms_town)
    fake_twilio.fail_next("429", count=3)
    settings = fake_twilio.settings(sms_max_retries=2)

    for round_ in range(3):
        await dispatch(settings)
        message = await reload(message)
        if round_ < 2:
            assert message.status == MessageStatus.PENDING
            assert message.retries == round_ + 1
            await make_due(message)

    assert message.status == MessageStatus.FAILED
    assert message.retries == 3
    assert "gave up after 3 tries" in message.last_error
    assert len(fake_twilio.posts) == 3 and fake_twilio.sent == []

    # FAILED is final for the dispatcher: staff see it and may resend
    await make_due(message)
    await dispatch(settings)
    assert len(fake_twilio.posts) == 3


async def test_refused_connection_is_retried_and_nothing_is_lost(sms_town, fake_twilio: FakeTwilio):
    _, message = await book(sms_town)
    unreachable = fake_twilio.settings(twilio_api_base=f"http://127.0.0.1:{closed_port()}")

    stats = await dispatch(unreachable)

    assert stats.retried == 1
    message = await reload(message)
    assert message.status == MessageStatus.PENDING
    assert message.retries == 1
    assert message.error_code == "CONNECT"
    assert message.next_attempt_at > now()
    assert fake_twilio.requests == []

    await make_due(message)
    await dispatch(fake_twilio.settings())

    message = await reload(message)
    assert message.status == MessageStatus.SENT
    assert len(fake_twilio.posts) == 1
    assert message.provider_id == fake_twilio.sent[0]["sid"]


# --- ambiguous: UNKNOWN, settled by looking the message up --------------------------------

async def test_server_error_after_twilio_took_it_is_settled_by_lookup_without_resending(
        sms_town, fake_twilio: FakeTwilio):
    resident, message = await book(sms_town)
    fake_twilio.fail_next("500")  # Twilio stored it, but answered 500

    stats = await dispatch(fake_twilio.settings())

    assert stats.unknown == 1
    message = await reload(message)
    assert message.status == MessageStatus.UNKNOWN
    assert message.error_code == "20500"
    assert message.provider_id is None
    # the client's own retries are off: a 5xx is never re-POSTed behind our back
    assert len(fake_twilio.posts) == 1
    assert len(fake_twilio.sent) == 1

    stats = await dispatch(fake_twilio.settings())

    assert stats.resolved == 1
    message = await reload(message)
    assert message.status == MessageStatus.SENT
    assert message.provider_id == fake_twilio.sent[0]["sid"]
    assert message.provider_status == "queued"
    assert len(fake_twilio.posts) == 1  # no second POST
    assert len(fake_twilio.sent) == 1
    [lookup] = fake_twilio.lookups
    assert lookup.query["To"] == resident.phone


async def test_lookup_adopts_the_status_twilio_reached_meanwhile(sms_town, fake_twilio: FakeTwilio):
    _, message = await book(sms_town)
    fake_twilio.fail_next("500")
    await dispatch(fake_twilio.settings())
    fake_twilio.set_status(fake_twilio.sent[0]["sid"], "delivered")

    await dispatch(fake_twilio.settings())

    message = await reload(message)
    assert message.status == MessageStatus.DELIVERED
    assert message.delivered_at is not None
    assert message.provider_id == fake_twilio.sent[0]["sid"]
    assert len(fake_twilio.posts) == 1


async def test_server_error_when_twilio_has_no_record_is_sent_again_once(sms_town, fake_twilio: FakeTwilio):
    _, message = await book(sms_town)
    fake_twilio.fail_next("500", store=False)

    await dispatch(fake_twilio.settings())

    message = await reload(message)
    assert message.status == MessageStatus.UNKNOWN
    assert fake_twilio.sent == []

    # the look-up finds nothing: back to PENDING, and the same round sends it again
    stats = await dispatch(fake_twilio.settings())

    assert stats.resolved == 1 and stats.sent == 1
    message = await reload(message)
    assert message.status == MessageStatus.SENT
    assert len(fake_twilio.lookups) == 1
    assert len(fake_twilio.posts) == 2
    assert len(fake_twilio.sent) == 1
    assert message.provider_id == fake_twilio.sent[0]["sid"]
    assert callback_query(fake_twilio.posts[1].form["StatusCallback"])["attempt"] == ["2"]

    await dispatch(fake_twilio.settings())
    assert len(fake_twilio.posts) == 2


async def test_unknown_message_waits_for_the_grace_period(sms_town, fake_twilio: FakeTwilio):
    _, message = await book(sms_town)
    fake_twilio.fail_next("500", store=False)
    settings = fake_twilio.settings(sms_unknown_grace_seconds=120)

    await dispatch(settings)
    message = await reload(message)
    assert message.status == MessageStatus.UNKNOWN
    assert message.next_attempt_at > now() + timedelta(seconds=100)

    # within the grace period the status callback may still settle it: no look-up, no resend
    await dispatch(settings)
    await dispatch(settings)

    assert (await reload(message)).status == MessageStatus.UNKNOWN
    assert len(fake_twilio.posts) == 1
    assert fake_twilio.lookups == []


async def test_unknown_message_past_its_class_is_not_sent_again(sms_town, fake_twilio: FakeTwilio):
    _, message = await book(sms_town)
    fake_twilio.fail_next("500", store=False)
    await dispatch(fake_twilio.settings())
    await Message.filter(id=message.id).update(expires_at=now() - timedelta(minutes=1))

    await dispatch(fake_twilio.settings())

    message = await reload(message)
    assert message.status == MessageStatus.SKIPPED
    assert message.skip_reason == SkipReason.TOO_LATE
    assert len(fake_twilio.posts) == 1


async def test_every_5xx_gives_exactly_one_post(sms_town, fake_twilio: FakeTwilio):
    _, message = await book(sms_town)
    fake_twilio.fail_next("503", count=5, store=False)

    await dispatch(fake_twilio.settings(sms_unknown_grace_seconds=600))

    assert len(fake_twilio.posts) == 1
    assert [p.status for p in fake_twilio.posts] == [503]
    message = await reload(message)
    assert message.status == MessageStatus.UNKNOWN
    assert message.error_code == "20503"


async def test_timeout_is_unknown_and_never_blindly_posted_again(sms_town, fake_twilio: FakeTwilio):
    _, message = await book(sms_town)
    fake_twilio.delay_next(3.0)  # Twilio took it; the answer comes too late
    settings = fake_twilio.settings(sms_send_timeout_seconds=1)

    started = now()
    stats = await dispatch(settings)

    assert (now() - started).total_seconds() < 2.9
    assert stats.unknown == 1
    message = await reload(message)
    assert message.status == MessageStatus.UNKNOWN
    assert message.error_code == "TIMEOUT"
    assert message.provider_id is None
    assert len(fake_twilio.posts) == 1

    await dispatch(settings)

    message = await reload(message)
    assert message.status == MessageStatus.SENT
    assert message.provider_id == fake_twilio.sent[0]["sid"]
    assert len(fake_twilio.posts) == 1
    assert len(fake_twilio.sent) == 1


# --- refused for good ----------------------------------------------------------------------

async def test_invalid_number_fails_at_once_with_twilios_code(sms_town, fake_twilio: FakeTwilio):
    _, message = await book(sms_town)
    fake_twilio.fail_next("21211")

    stats = await dispatch(fake_twilio.settings())

    assert stats.failed == 1
    message = await reload(message)
    assert message.status == MessageStatus.FAILED
    assert message.error_code == "21211"
    assert message.retries == 0
    assert message.next_attempt_at is None
    assert "not a valid phone number" in message.last_error
    assert fake_twilio.sent == []

    await dispatch(fake_twilio.settings())
    assert len(fake_twilio.posts) == 1


async def test_unsubscribed_recipient_is_opted_out_and_gets_nothing_more(
        sms_town, other_town, fake_twilio: FakeTwilio):
    resident, message = await book(sms_town)
    neighbour, _ = await book(sms_town, phone="080-2222-3333", family="佐藤")
    # the same number in another town: their consent there is theirs
    elsewhere = await factories.resident(other_town.coordinator, "鈴木", sms=True, phone=PHONE)
    fake_twilio.fail_next("21610")
    await Message.filter(resident_id=neighbour.id, kind=MessageKind.CONFIRMATION).update(
        send_after=now() + timedelta(hours=1))

    await dispatch(fake_twilio.settings())

    message = await reload(message)
    assert message.status == MessageStatus.FAILED
    assert message.error_code == "21610"
    assert (await Resident.get(id=resident.id)).sms_opted_out is True
    assert (await Resident.get(id=neighbour.id)).sms_opted_out is False
    assert (await Resident.get(id=elsewhere.id)).sms_opted_out is False
    entries = await AuditEntry.filter(action="resident.sms_opt_out")
    assert [(e.object_ids, e.actor_email) for e in entries] == [([resident.id], "provider-21610")]

    # time passes: the reminders fall due, and are skipped, not sent
    await Message.filter(status=MessageStatus.PENDING).update(send_after=now() - timedelta(minutes=1))
    stats = await dispatch(fake_twilio.settings())

    reminders = await Message.filter(resident_id=resident.id).exclude(id=message.id)
    assert len(reminders) == 2
    assert {(m.status, m.skip_reason) for m in reminders} == {(MessageStatus.SKIPPED, SkipReason.OPTED_OUT)}
    assert stats.skipped == 2
    # only the neighbour's three messages went out after the 21610
    assert [p.form["To"] for p in fake_twilio.posts] == [resident.phone] + [neighbour.phone] * 3


# --- the fake itself -----------------------------------------------------------------------

async def test_fake_refuses_wrong_credentials_like_twilio(fake_twilio: FakeTwilio):
    url = f"{fake_twilio.base_url}/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    wrong = {"Authorization": basic_auth(fake_twilio.account_sid, "wrong")}
    right = {"Authorization": basic_auth(fake_twilio.account_sid, fake_twilio.auth_token)}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data={"To": E164, "From": TWILIO_FROM, "Body": "x"},
                             headers=wrong) as response:
            assert response.status == 401
            body = await response.json()
        async with http.get(url, params={"To": E164}, headers=right) as listed:
            assert listed.status == 200
            page = await listed.json()
    assert body["code"] == 20003 and body["status"] == 401
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20003"
    assert fake_twilio.sent == []
    assert page["messages"] == [] and page["next_page_uri"] is None
    assert [r.status for r in fake_twilio.requests] == [401, 200]


async def test_wrong_credentials_hold_messages_until_the_setup_is_fixed(sms_town,
                                                                         fake_twilio: FakeTwilio):
    """A 401 is our mistake, not the message's: it waits (no retries used up, not FAILED)
    and goes out once the credentials are right."""
    _, message = await book(sms_town)
    await dispatch(fake_twilio.settings(twilio_auth_token="wrong-token"))
    held = await reload(message)
    assert held.status == MessageStatus.PENDING
    assert held.retries == 0 and held.error_code == "20003"
    assert held.next_attempt_at > now() + timedelta(minutes=4)
    assert fake_twilio.sent == []
    await make_due(message)
    await dispatch(fake_twilio.settings())
    assert (await reload(message)).status == MessageStatus.SENT
    assert len(fake_twilio.sent) == 1
