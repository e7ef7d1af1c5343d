"""SMS planning: which messages, when, to whom, with what text; never twice, never lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factories
import pytest
from sms_helpers import TOKYO, local, no_quiet_hours, outbox, quiet_hours_around_now

from divide_support.accounts.models import Municipality
from divide_support.followups import service as followups
from divide_support.followups.models import FollowUpChannel, FollowUpOutcome
from divide_support.messaging import service as messaging
from divide_support.messaging.models import Message, MessageKind, MessageStatus, SkipReason
from divide_support.messaging.segments import count_segments
from divide_support.messaging.templates import MessageFacts, render
from divide_support.people import service as people
from divide_support.people.models import ContactPreference
from divide_support.scheduling import notices
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import Registration, RegistrationSource, RegistrationStatus

PENDING, SKIPPED, CANCELLED = MessageStatus.PENDING, MessageStatus.SKIPPED, MessageStatus.CANCELLED


def _now() -> datetime:
    return datetime.now(UTC)


async def _seat(town, starts_at: datetime, *, sms: bool = True, capacity: int = 10, **extra):
    session = await factories.session(town.coordinator, starts_at, capacity=capacity)
    resident = await factories.resident(town.coordinator, sms=sms, **extra)
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id)
    return session, resident, registration


# --- when ----------------------------------------------------------------------------------

async def test_registering_plans_a_confirmation_now_and_two_reminders(town):
    await no_quiet_hours(town.municipality.id)
    starts = factories.at(days=5, hour=14)
    _, resident, registration = await _seat(town, starts)
    planned = await outbox(registration_id=registration.id)
    assert set(planned) == {MessageKind.CONFIRMATION, MessageKind.REMINDER_DAY_BEFORE,
                            MessageKind.REMINDER_SAME_DAY}
    assert all(m.status == PENDING for m in planned.values())
    assert abs((planned[MessageKind.CONFIRMATION].send_after - _now()).total_seconds()) < 60
    day_before = local(planned[MessageKind.REMINDER_DAY_BEFORE].send_after)
    assert (day_before.date(), day_before.hour, day_before.minute) == (
        local(starts).date() - timedelta(days=1), 10, 0)
    assert planned[MessageKind.REMINDER_SAME_DAY].send_after == starts - timedelta(hours=2)
    assert all(m.to == resident.phone and m.to.startswith("+8190") for m in planned.values())
    assert all(m.session_sequence == 0 for m in planned.values())


async def test_planning_twice_adds_nothing(town):
    await no_quiet_hours(town.municipality.id)
    _, _, registration = await _seat(town, factories.at(days=5, hour=14))
    await notices.plan_registration(registration)
    await notices.plan_registration(registration)
    assert await Message.filter(registration_id=registration.id).count() == 3


async def test_a_confirmation_due_in_quiet_hours_waits_until_they_end(town):
    ends = await quiet_hours_around_now(town.municipality.id)
    _, _, registration = await _seat(town, factories.at(days=5, hour=14))
    confirmation = (await outbox(registration_id=registration.id))[MessageKind.CONFIRMATION]
    assert confirmation.status == PENDING
    sent_at = local(confirmation.send_after)
    assert (sent_at.hour, sent_at.minute) == (ends.hour, ends.minute)
    assert confirmation.send_after > _now()


def test_quiet_hours_move_messages_to_eight_in_the_morning():
    city = Municipality(name="平塚市", code="142034", timezone="Asia/Tokyo",
                        sms_quiet_from_minute=21 * 60, sms_quiet_until_minute=8 * 60)
    evening = datetime(2026, 12, 2, 22, 30, tzinfo=TOKYO)
    night = datetime(2026, 12, 3, 3, 0, tzinfo=TOKYO)
    assert local(messaging.after_quiet_hours(evening, city)) == datetime(2026, 12, 3, 8, 0,
                                                                         tzinfo=TOKYO)
    assert local(messaging.after_quiet_hours(night, city)) == datetime(2026, 12, 3, 8, 0,
                                                                       tzinfo=TOKYO)
    for free in (datetime(2026, 12, 3, 8, 0, tzinfo=TOKYO), datetime(2026, 12, 3, 20, 59,
                                                                          tzinfo=TOKYO)):
        assert messaging.after_quiet_hours(free, city) == free
    assert messaging.in_quiet_hours(datetime(2026, 12, 3, 21, 0, tzinfo=TOKYO), city)


async def test_registering_on_the_day_itself_skips_the_day_before_reminder(town):
    await no_quiet_hours(town.municipality.id)
    starts = _now() + timedelta(hours=5)
    _, _, registration = await _seat(town, starts)
    planned = await outbox(registration_id=registration.id)
    assert planned[MessageKind.CONFIRMATION].status == PENDING
    assert planned[MessageKind.REMINDER_DAY_BEFORE].status == SKIPPED
    assert planned[MessageKind.REMINDER_DAY_BEFORE].skip_reason == SkipReason.TOO_LATE
    assert planned[MessageKind.REMINDER_SAME_DAY].status == PENDING


async def test_registering_an_hour_before_skips_both_reminders(town):
    await no_quiet_hours(town.municipality.id)
    _, _, registration = await _seat(town, _now() + timedelta(hours=1))
    planned = await outbox(registration_id=registration.id)
    assert planned[MessageKind.CONFIRMATION].status == PENDING
    assert {planned[k].skip_reason for k in messaging.REMINDER_KINDS} == {SkipReason.TOO_LATE}


async def test_a_same_day_reminder_pushed_past_the_start_by_quiet_hours_is_not_sent(town):
    """A class at 01:00: two hours before is 23:00, in quiet hours; 08:00 is after the start."""
    starts = factories.at(days=4, hour=1)
    _, _, registration = await _seat(town, starts)
    planned = await outbox(registration_id=registration.id)
    assert planned[MessageKind.REMINDER_SAME_DAY].status == SKIPPED
    assert planned[MessageKind.REMINDER_SAME_DAY].skip_reason == SkipReason.TOO_LATE
    assert planned[MessageKind.REMINDER_DAY_BEFORE].status == PENDING


async def test_people_at_the_door_and_from_paper_sheets_get_no_sms(town):
    running = await factories.session(town.coordinator, _now() - timedelta(minutes=30))
    resident = await factories.resident(town.coordinator, sms=True)
    await scheduling.register(actor=town.coordinator, session_id=running.id,
                              resident_id=resident.id, source=RegistrationSource.WALK_IN)
    assert await Message.filter(resident_id=resident.id).count() == 0


# --- to whom -------------------------------------------------------------------------------

async def _person(town, *, phone: str | None, preference: ContactPreference, consent: bool):
    return await people.create_resident(actor=town.coordinator, fields=people.ResidentFields(
        family_name="高橋", given_name="節子", phone=phone, contact_preference=preference,
        sms_consent=consent))


@pytest.mark.parametrize(("phone", "preference", "consent", "reason"), [
    (None, ContactPreference.PHONE_CALL, False, SkipReason.NO_MOBILE),
    ("090-5555-0001", ContactPreference.SMS, False, SkipReason.NO_CONSENT),
    ("090-5555-0001", ContactPreference.PHONE_CALL, True, SkipReason.PREFERS_OTHER_CHANNEL),
])
async def test_people_sms_cannot_reach_get_skipped_rows_with_the_reason(
        town, phone, preference, consent, reason):
    await no_quiet_hours(town.municipality.id)
    session = await factories.session(town.coordinator, factories.at(days=5, hour=14))
    resident = await _person(town, phone=phone, preference=preference, consent=consent)
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id)
    planned = await outbox(registration_id=registration.id)
    assert len(planned) == 3
    assert {m.status for m in planned.values()} == {SKIPPED}
    assert {m.skip_reason for m in planned.values()} == {reason}
    [(listed, why)] = await notices.residents_to_phone(actor=town.coordinator,
                                                         session_id=session.id)
    assert listed.id == registration.id
    assert why == messaging.SKIP_REASON_TEXT[reason]


async def test_residents_to_phone_lists_only_those_sms_will_not_reach(town):
    await no_quiet_hours(town.municipality.id)
    session = await factories.session(town.coordinator, factories.at(days=5, hour=14))
    reachable = await factories.resident(town.coordinator, sms=True)
    by_phone = await factories.resident(town.coordinator, sms=False)
    for resident in (reachable, by_phone):
        await scheduling.register(actor=town.coordinator, session_id=session.id,
                                  resident_id=resident.id)
    listed = await notices.residents_to_phone(actor=town.coordinator, session_id=session.id)
    assert [registration.resident_id for registration, _ in listed] == [by_phone.id]


async def test_giving_consent_later_sends_the_reminders_after_all(town):
    await no_quiet_hours(town.municipality.id)
    session = await factories.session(town.coordinator, factories.at(days=5, hour=14))
    resident = await _person(town, phone="090-5555-0002", preference=ContactPreference.SMS,
                             consent=False)
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id)
    assert (await outbox(registration_id=registration.id))[
        MessageKind.REMINDER_DAY_BEFORE].skip_reason == SkipReason.NO_CONSENT
    await messaging.set_sms_consent(actor=town.coordinator, resident_id=resident.id, consent=True)
    planned = await outbox(registration_id=registration.id)
    assert planned[MessageKind.REMINDER_DAY_BEFORE].status == PENDING
    assert planned[MessageKind.REMINDER_SAME_DAY].status == PENDING
    # The confirmation moment has passed; staff told them in person.
    assert planned[MessageKind.CONFIRMATION].status == SKIPPED


async def test_consent_needs_a_mobile_number(town):
    resident = await factories.resident(town.coordinator, sms=False)
    with pytest.raises(Exception) as caught:
        await messaging.set_sms_consent(actor=town.coordinator, resident_id=resident.id,
                                        consent=True)
    assert getattr(caught.value, "code", None) == "NO_MOBILE"
    assert (await people.get_resident(actor=town.coordinator, resident_id=resident.id)
            ).sms_consent is False


# --- what changes plan -------------------------------------------------------------------

async def test_waitlist_confirmation_then_promotion_with_reminders(town):
    await no_quiet_hours(town.municipality.id)
    session, _, first = await _seat(town, factories.at(days=5, hour=14), capacity=1)
    waiting_resident = await factories.resident(town.coordinator, "佐藤", "一郎", sms=True)
    waiting = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                        resident_id=waiting_resident.id)
    planned = await outbox(registration_id=waiting.id)
    assert set(planned) == {MessageKind.CONFIRMATION}
    assert "キャンセル待ち1番目" in planned[MessageKind.CONFIRMATION].body
    assert "佐藤 一郎様" in planned[MessageKind.CONFIRMATION].body

    await scheduling.cancel_registration(actor=town.coordinator, registration_id=first.id)
    assert {m.status for m in (await outbox(registration_id=first.id)).values()} == {CANCELLED}
    planned = await outbox(registration_id=waiting.id)
    assert set(planned) == {MessageKind.CONFIRMATION, MessageKind.WAITLIST_PROMOTED,
                            MessageKind.REMINDER_DAY_BEFORE, MessageKind.REMINDER_SAME_DAY}
    assert planned[MessageKind.WAITLIST_PROMOTED].status == PENDING
    assert "参加できます" in planned[MessageKind.WAITLIST_PROMOTED].body


async def test_rescheduling_replaces_the_reminders_and_tells_everyone(town):
    await no_quiet_hours(town.municipality.id)
    session, _, seat = await _seat(town, factories.at(days=5, hour=14), capacity=1)
    other = await factories.resident(town.coordinator, sms=True)
    waiting = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                        resident_id=other.id)
    new_start = factories.at(days=8, hour=10)
    moved = await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id,
                                                starts_at=new_start)
    assert moved.sequence == 1
    rows = await Message.filter(registration_id=seat.id).order_by("id")
    old = [m for m in rows if m.session_sequence == 0 and m.kind in messaging.REMINDER_KINDS]
    new = {MessageKind(m.kind): m for m in rows if m.session_sequence == 1}
    assert {m.status for m in old} == {CANCELLED}
    assert set(new) == {MessageKind.SESSION_CHANGED, MessageKind.REMINDER_DAY_BEFORE,
                        MessageKind.REMINDER_SAME_DAY}
    assert new[MessageKind.REMINDER_SAME_DAY].send_after == new_start - timedelta(hours=2)
    when = local(new_start)
    assert f"{when.month}月{when.day}日" in new[MessageKind.SESSION_CHANGED].body
    waiting_rows = await outbox(registration_id=waiting.id, session_sequence=1)
    assert set(waiting_rows) == {MessageKind.SESSION_CHANGED}  # no reminders without a seat


async def test_cancelling_a_session_cancels_reminders_and_sends_one_notice(town):
    await no_quiet_hours(town.municipality.id)
    session, _, seat = await _seat(town, factories.at(days=5, hour=14))
    await scheduling.cancel_session(actor=town.coordinator, session_id=session.id)
    rows = await Message.filter(registration_id=seat.id).order_by("id")
    notices = [m for m in rows if m.kind == MessageKind.SESSION_CANCELLED]
    assert len(notices) == 1 and notices[0].status == PENDING
    assert "中止" in notices[0].body
    assert {m.status for m in rows if m.kind != MessageKind.SESSION_CANCELLED} == {CANCELLED}


async def test_an_sms_follow_up_is_sent_on_its_due_date_and_withdrawn_when_done(town):
    await no_quiet_hours(town.municipality.id)
    resident = await factories.resident(town.coordinator, sms=True)
    due = (datetime.now(TOKYO) + timedelta(days=3)).date()
    follow_up = await followups.schedule_follow_up(
        actor=town.coordinator, resident_id=resident.id, due_on=due, channel=FollowUpChannel.SMS)
    [message] = await Message.filter(follow_up_id=follow_up.id)
    assert message.kind == MessageKind.FOLLOW_UP and message.status == PENDING
    assert local(message.send_after) == datetime(due.year, due.month, due.day, 10, tzinfo=TOKYO)
    await followups.complete_follow_up(actor=town.coordinator, follow_up_id=follow_up.id,
                                       outcome=FollowUpOutcome.USES_INDEPENDENTLY)
    await message.refresh_from_db()
    assert message.status == CANCELLED


async def test_a_phone_call_follow_up_plans_no_sms(town):
    resident = await factories.resident(town.coordinator, sms=True)
    await followups.schedule_follow_up(
        actor=town.coordinator, resident_id=resident.id,
        due_on=(datetime.now(TOKYO) + timedelta(days=3)).date(),
        channel=FollowUpChannel.PHONE_CALL)
    assert await Message.filter(resident_id=resident.id).count() == 0


async def test_cancelled_registration_leaves_nothing_unsent(town):
    await no_quiet_hours(town.municipality.id)
    _, _, registration = await _seat(town, factories.at(days=5, hour=14))
    await scheduling.cancel_registration(actor=town.coordinator, registration_id=registration.id)
    assert await Message.filter(registration_id=registration.id,
                                status=MessageStatus.PENDING).count() == 0
    assert (await Registration.get(id=registration.id)).status == RegistrationStatus.CANCELLED


# --- what it says --------------------------------------------------------------------------

async def test_bodies_name_the_city_the_venue_the_time_and_the_centre_phone(town):
    await no_quiet_hours(town.municipality.id)
    starts = factories.at(days=5, hour=14)
    session, resident, registration = await _seat(town, starts)
    confirmation = (await outbox(registration_id=registration.id))[MessageKind.CONFIRMATION]
    when = local(starts)
    body = confirmation.body
    assert body.startswith("【平塚市スマホ教室】")
    assert f"{resident.family_name} {resident.given_name}様" in body
    assert f"{when.month}月{when.day}日" in body and "14:00" in body
    assert "中央公民館" in body and session.title in body
    assert "0463-21-1111" in body
    assert "http" not in body
    assert resident.phone not in body and "090" not in body  # nothing personal but the name
    assert confirmation.encoding == "UCS-2"
    assert confirmation.segments == count_segments(body).segments <= 2


def test_segment_counting_per_encoding():
    assert count_segments("a" * 160).segments == 1
    assert count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2 and count_segments("a" * 307).segments == 3
    assert count_segments("{" * 80).units == 160  # the escape table takes two septets
    assert count_segments("{" * 81).segments == 2
    assert count_segments("あ" * 70) == count_segments("い" * 70)
    assert count_segments("あ" * 70).segments == 1 and count_segments("あ" * 71).segments == 2
    assert count_segments("あ" * 134).segments == 2 and count_segments("あ" * 135).segments == 3
    assert count_segments("😀" * 35).units == 70 and count_segments("😀" * 36).segments == 2
    assert count_segments("abc€").encoding == "GSM-7"
    assert count_segments("abcあ").encoding == "UCS-2"


def _facts(**overrides) -> MessageFacts:
    values = dict(municipality_name="平塚市", centre_phone="0463-21-1111", timezone="Asia/Tokyo",
                  is_class=True, title="はじめてのスマホ", venue_name="中央公民館",
                  starts_at=datetime(2026, 12, 3, 1, 0, tzinfo=UTC), family_name="山田",
                  given_name="花子")
    values.update(overrides)
    return MessageFacts(**values)


def test_the_example_confirmation_reads_as_the_city_wrote_it():
    body = render(MessageKind.CONFIRMATION, _facts())
    assert body == ("【平塚市スマホ教室】山田 花子様 12月3日(木)10:00〜 中央公民館で「はじめてのスマホ」"
                    "があります。スマホと充電器をお持ちください。変更・欠席は 0463-21-1111 へ。")


def test_reminders_fit_one_segment_with_usual_names():
    for kind in messaging.REMINDER_KINDS:
        body = render(kind, _facts())
        assert count_segments(body).segments == 1, body
        assert "0463-21-1111" in body and "中央公民館" in body


def test_my_number_courses_ask_for_the_card():
    body = render(MessageKind.CONFIRMATION, _facts(course_topic="MY_NUMBER_CARD"))
    assert "マイナンバーカード" in body


@pytest.mark.parametrize("kind", list(MessageKind))
def test_the_longest_names_allowed_never_exceed_two_segments(kind):
    facts = _facts(title="長" * 200, venue_name="会" * 200, family_name="姓" * 50,
                   given_name="名" * 50, waitlist_position=40)
    body = render(kind, facts)
    assert count_segments(body).segments <= 2, body
    assert "0463-21-1111" in body
    assert "平塚市" in body
    if kind in messaging.REMINDER_KINDS:
        assert count_segments(body).segments == 1, body


async def test_opting_out_is_read_again_when_sending(town):
    """Planning found the resident reachable; the opt-out arrives later and wins."""
    await no_quiet_hours(town.municipality.id)
    _, resident, registration = await _seat(town, factories.at(days=5, hour=14))
    await messaging.set_opt_out(actor=town.coordinator, resident_id=resident.id, opted_out=True)
    assert messaging.skip_reason_for(
        await people.get_resident(actor=town.coordinator, resident_id=resident.id)
    ) == SkipReason.OPTED_OUT
    # The planned rows stay PENDING until the dispatcher reads the flag (test_sms_dispatch).
    assert (await outbox(registration_id=registration.id))[
        MessageKind.CONFIRMATION].status == PENDING


# --- nothing comes back that no longer applies (found in review) ---------------------------

async def test_consent_after_the_class_was_cancelled_revives_nothing(town):
    await no_quiet_hours(town.municipality.id)
    session = await factories.session(town.coordinator, factories.at(days=5, hour=14))
    resident = await _person(town, phone="090-5555-0003", preference=ContactPreference.SMS,
                             consent=False)
    await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id)
    await scheduling.cancel_session(actor=town.coordinator, session_id=session.id)
    await messaging.set_sms_consent(actor=town.coordinator, resident_id=resident.id, consent=True)
    pending = await Message.filter(resident_id=resident.id, status=PENDING)
    assert pending == []


async def test_consent_after_a_move_revives_only_the_new_reminders(town):
    await no_quiet_hours(town.municipality.id)
    session = await factories.session(town.coordinator, factories.at(days=5, hour=14))
    resident = await _person(town, phone="090-5555-0004", preference=ContactPreference.SMS,
                             consent=False)
    await scheduling.register(actor=town.coordinator, session_id=session.id, resident_id=resident.id)
    await scheduling.reschedule_session(actor=town.coordinator, session_id=session.id,
                                        starts_at=factories.at(days=6, hour=10))
    await messaging.set_sms_consent(actor=town.coordinator, resident_id=resident.id, consent=True)
    pending = await Message.filter(resident_id=resident.id, status=PENDING)
    assert {(m.kind, m.session_sequence) for m in pending} == {
        (MessageKind.REMINDER_DAY_BEFORE, 1), (MessageKind.REMINDER_SAME_DAY, 1)}


async def test_a_closed_follow_up_is_not_texted_after_consent(town):
    await no_quiet_hours(town.municipality.id)
    resident = await _person(town, phone="090-5555-0005", preference=ContactPreference.SMS,
                             consent=False)
    follow_up = await followups.schedule_follow_up(
        actor=town.coordinator, resident_id=resident.id, channel=FollowUpChannel.SMS,
        due_on=(datetime.now(TOKYO) + timedelta(days=3)).date())
    await followups.complete_follow_up(actor=town.coordinator, follow_up_id=follow_up.id,
                                       outcome=FollowUpOutcome.USES_INDEPENDENTLY)
    await messaging.set_sms_consent(actor=town.coordinator, resident_id=resident.id, consent=True)
    assert await Message.filter(resident_id=resident.id, status=PENDING).count() == 0
