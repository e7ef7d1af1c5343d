"""The console's residents, follow-ups and messages pages over HTTP in-process: what counter
staff see and what their forms change, against the real database (the browser walk is in
test_console_browser_people.py)."""

from __future__ import annotations

from datetime import date, timedelta

import factories
import pytest
from factories import supporter_login
from sms_helpers import RecordingBackend, no_quiet_hours

from divide_support.core import timeutil
from divide_support.core.ids import to_global_id
from divide_support.core.settings import Settings
from divide_support.followups import service as followups
from divide_support.followups.models import FollowUp, FollowUpChannel, FollowUpOutcome, FollowUpStatus
from divide_support.messaging.backends import Outcome
from divide_support.messaging.dispatcher import Dispatcher
from divide_support.messaging.models import InboundMessage, Message, MessageKind, MessageStatus
from divide_support.people import service as people
from divide_support.people.models import Resident
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import Registration

COORDINATOR = "hiratsuka-coordinator@example.jp"


@pytest.fixture
async def staff(console, town):
    await console.login(COORDINATOR)
    return console


async def _hanako(town, **fields) -> Resident:
    values = {"family_name": "山田", "given_name": "花子", "kana": "ヤマダ ハナコ",
              "phone": "090-1234-5678", "birth_date": date(1948, 4, 2), "district": "浅間町",
              **fields}
    return await people.create_resident(actor=town.coordinator,
                                        fields=people.ResidentFields(**values))


def today() -> date:
    return timeutil.today("Asia/Tokyo")


def gid(kind: str, pk: int) -> str:
    return to_global_id(kind, pk)


# --- search ---------------------------------------------------------------------------------

@pytest.mark.parametrize("term", ["やまだ", "ヤマダ", "山田花子", "山田 花子", "やまだ はなこ",
                                  "090-1234-5678", "09012345678", "5678"])
async def test_a_resident_is_found_however_staff_type_them(staff, town, term):
    hanako = await _hanako(town)
    await _hanako(town, family_name="佐藤", given_name="健", kana="サトウ ケン",
                  phone="080-2222-9999", birth_date=date(1950, 1, 1))
    response = await staff.get("/residents", params={"q": term})
    assert response.status_code == 200
    text = staff.text()
    assert "検索結果（1人）" in text
    assert "山田 花子 様" in text and "佐藤" not in text
    assert f'href="/residents/{gid("Resident", hanako.id)}"' in staff.page


async def test_nobody_found_offers_to_register_them(staff, town):
    await staff.get("/residents", params={"q": "すずき"})
    assert "検索結果（0人）" in staff.text() and "見つかりませんでした" in staff.text()
    assert 'href="/residents/new?q=' in staff.page


# --- creating -------------------------------------------------------------------------------

NEW = {"familyName": "鈴木", "givenName": "一郎", "kana": "すずき いちろう",
       "phone": "080-3333-4444", "contactPreference": "SMS", "birthYear": "1944",
       "district": "八重咲町", "device": "ANDROID", "smsConsent": "on"}


async def test_creating_a_resident_shows_their_page(staff, town):
    await staff.get("/residents/new")
    response = await staff.post("/residents/new", NEW)
    assert response.status_code == 200
    assert "住民を登録しました" in staff.text()
    created = await Resident.get(family_name="鈴木")
    assert (created.phone, created.birth_year, created.sms_consent, created.device) == (
        "+818033334444", 1944, True, "ANDROID")
    assert str(response.url).endswith(f"/residents/{gid('Resident', created.id)}?done=created")
    text = staff.text()
    assert "鈴木 一郎 様" in text and "080-3333-4444" in text and "同意あり" in text
    assert "Android" in text and "1944年生まれ" in text


async def test_a_matching_phone_warns_with_a_link_and_creates_nothing_until_confirmed(staff, town):
    hanako = await _hanako(town)
    await staff.get("/residents/new")
    attempt = {**NEW, "phone": "０９０－１２３４－５６７８"}
    response = await staff.post("/residents/new", attempt)
    assert response.status_code == 200
    text = staff.text()
    assert "同じ方がすでに登録されているかもしれません" in text and "まだ登録していません" in text
    assert "山田 花子 様" in text and "090-1234-5678" in text
    assert f'href="/residents/{gid("Resident", hanako.id)}"' in staff.page
    assert "allowDuplicate" not in text  # the API's word for programmers stays off the page
    assert 'value="０９０－１２３４－５６７８"' in staff.page and 'value="鈴木"' in staff.page
    assert await Resident.all().count() == 1

    await staff.post("/residents/new", {**attempt, "allowDuplicate": "yes"})
    assert "住民を登録しました" in staff.text()
    assert await Resident.all().count() == 2


async def test_the_same_name_and_birth_year_warns_too(staff, town):
    await _hanako(town, phone=None)
    await staff.get("/residents/new")
    await staff.post("/residents/new", {"familyName": "山田", "givenName": "花子",
                                        "birthYear": "1948", "contactPreference": "PHONE_CALL"})
    assert "同じ方がすでに登録されているかもしれません" in staff.text()
    assert await Resident.all().count() == 1


async def test_a_refused_phone_is_shown_at_the_field_and_keeps_the_input(staff, town):
    await staff.get("/residents/new")
    response = await staff.post("/residents/new", {**NEW, "phone": "12345"})
    assert response.status_code == 400
    assert 'id="phone-error"' in staff.page
    error = staff.page.split('id="phone-error">', 1)[1].split("<", 1)[0]
    assert "携帯電話" in error or "番号" in error
    assert 'value="12345"' in staff.page and 'value="鈴木"' in staff.page
    assert 'value="1944"' in staff.page and "checked" in staff.page
    assert await Resident.all().count() == 0


async def test_a_birth_year_in_words_is_refused_at_the_field(staff, town):
    await staff.get("/residents/new")
    await staff.post("/residents/new", {**NEW, "birthYear": "昭和19年"})
    assert "生まれ年は西暦の数字4けた" in staff.text() and 'value="昭和19年"' in staff.page
    assert await Resident.all().count() == 0


async def test_created_for_a_session_they_are_registered_and_back_to_the_session(staff, town):
    session = await factories.session(town.coordinator, factories.at(days=3, hour=10))
    session_id = gid("Session", session.id)
    await staff.get(f"/residents/new?session={session_id}")
    assert session.title in staff.text() and "この回に申し込みます" in staff.text()
    response = await staff.post(f"/residents/new?session={session_id}", NEW, follow=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/sessions/{session_id}"
    created = await Resident.get(family_name="鈴木")
    assert await Registration.filter(resident_id=created.id, session_id=session.id).count() == 1


async def test_created_for_a_cancelled_session_they_exist_and_the_page_says_why(staff, town):
    session = await factories.session(town.coordinator, factories.at(days=3, hour=10))
    session_id = gid("Session", session.id)
    await staff.get(f"/residents/new?session={session_id}")
    await scheduling.cancel_session(actor=town.coordinator, session_id=session.id,
                                    reason="講師の都合")
    response = await staff.post(f"/residents/new?session={session_id}", NEW)
    assert response.status_code == 200
    text = staff.text()
    assert "住民を登録しました" in text and "受け付けできませんでした" in text
    assert "鈴木 一郎 様" in text
    created = await Resident.get(family_name="鈴木")
    assert await Registration.filter(resident_id=created.id).count() == 0


async def test_an_outcome_must_be_chosen(staff, town):
    hanako = await _hanako(town)
    due = await followups.schedule_follow_up(resident_id=hanako.id, due_on=today(),
                                             channel=FollowUpChannel.PHONE_CALL,
                                             actor=town.coordinator)
    path = f"/follow-ups/{gid('FollowUp', due.id)}"
    await staff.get(path)
    response = await staff.post(path, {"notes": "留守"})
    assert response.status_code == 400 and 'id="outcome-error"' in staff.page
    assert "結果を選んでください" in staff.text() and "留守" in staff.page
    await due.refresh_from_db()
    assert due.status == FollowUpStatus.OPEN


# --- a resident's page ----------------------------------------------------------------------

async def test_a_residents_page_shows_registrations_messages_and_follow_ups(staff, town):
    await no_quiet_hours(town.municipality.id)
    hanako = await _hanako(town, contact_preference="PHONE_CALL")
    session = await factories.session(town.coordinator, factories.at(days=4, hour=14))
    await scheduling.register(actor=town.coordinator, session_id=session.id,
                              resident_id=hanako.id)
    await followups.schedule_follow_up(resident_id=hanako.id, due_on=today(),
                                       channel=FollowUpChannel.PHONE_CALL, actor=town.coordinator)
    response = await staff.get(f"/residents/{gid('Resident', hanako.id)}")
    assert response.status_code == 200
    text = staff.text()
    assert "山田 花子 様" in text and "090-1234-5678" in text and "1948年4月2日" in text
    assert session.title in text and "受付済" in text
    assert "申込の確認" in text and "送りませんでした" in text  # prefers calls: not sent by SMS
    assert "電話で確認" in text and "未完了" in text


async def test_consent_and_opt_out_are_recorded_from_the_residents_page(staff, town):
    hanako = await _hanako(town)
    path = f"/residents/{gid('Resident', hanako.id)}"
    await staff.get(path)
    assert "同意なし" in staff.text()
    await staff.post(f"{path}/consent", {"consent": "yes"})
    assert "同意を記録しました" in staff.text() and "同意あり" in staff.text()
    await staff.post(f"{path}/opt-out", {"optedOut": "yes"})
    assert "配信を停止しました" in staff.text() and "配信停止中" in staff.text()
    await hanako.refresh_from_db()
    assert hanako.sms_consent is True and hanako.sms_opted_out is True


async def test_editing_a_resident_and_a_refused_change(staff, town):
    hanako = await _hanako(town)
    path = f"/residents/{gid('Resident', hanako.id)}"
    await staff.get(f"{path}/edit")
    assert 'value="山田"' in staff.page and 'value="1948-04-02"' in staff.page
    form = {"familyName": "山田", "givenName": "花子", "kana": "ヤマダ ハナコ",
            "phone": "090-1234-5678", "contactPreference": "PHONE_CALL", "birthDate": "1948-04-02",
            "district": "見附町", "device": "IPHONE", "notes": "耳が遠い"}
    await staff.post(f"{path}/edit", {**form, "phone": "abc"})
    assert 'id="phone-error"' in staff.page and 'value="見附町"' in staff.page
    await hanako.refresh_from_db()
    assert hanako.district == "浅間町"
    await staff.post(f"{path}/edit", form)
    assert "住民の情報を保存しました" in staff.text() and "見附町" in staff.text()
    assert "iPhone" in staff.text() and "耳が遠い" in staff.text()


async def test_scheduling_a_follow_up_from_the_residents_page(staff, town):
    hanako = await _hanako(town)
    path = f"/residents/{gid('Resident', hanako.id)}"
    await staff.get(path)
    due = today() + timedelta(days=10)
    await staff.post(f"{path}/follow-ups", {"dueOn": due.isoformat(), "channel": "VISIT"})
    assert "フォローアップ（その後の確認）を予定しました" in staff.text()
    [task] = await FollowUp.filter(resident_id=hanako.id)
    assert (task.due_on, task.channel) == (due, FollowUpChannel.VISIT)


# --- follow-ups -----------------------------------------------------------------------------

async def test_follow_ups_due_come_first_and_an_outcome_is_recorded(staff, town):
    hanako = await _hanako(town)
    later = await _hanako(town, family_name="佐藤", given_name="健", kana="サトウ ケン",
                          phone=None, birth_date=None)
    due = await followups.schedule_follow_up(resident_id=hanako.id,
                                             due_on=today() - timedelta(days=1),
                                             channel=FollowUpChannel.PHONE_CALL,
                                             actor=town.coordinator)
    await followups.schedule_follow_up(resident_id=later.id,
                                       due_on=today() + timedelta(days=5),
                                       channel=FollowUpChannel.PHONE_CALL, actor=town.coordinator)
    await staff.get("/follow-ups")
    text = staff.text()
    assert "今日までに確認する方（1件）" in text and "これから確認する方（1件）" in text
    assert text.index("山田 花子") < text.index("これから確認する方") < text.index("佐藤 健")

    await staff.get(f"/follow-ups/{gid('FollowUp', due.id)}")
    assert "電話で確認" in staff.text() and "090-1234-5678" in staff.text()
    next_week = today() + timedelta(days=7)
    await staff.post(f"/follow-ups/{gid('FollowUp', due.id)}", {
        "outcome": "NEEDS_MORE_HELP", "notes": "LINEの写真送信をもう一度",
        "nextDueOn": next_week.isoformat(), "nextChannel": "PHONE_CALL"})
    assert "結果を記録しました" in staff.text()
    await due.refresh_from_db()
    assert due.status == FollowUpStatus.DONE and due.outcome == FollowUpOutcome.NEEDS_MORE_HELP
    assert await FollowUp.filter(resident_id=hanako.id, status=FollowUpStatus.OPEN,
                                 due_on=next_week).count() == 1


async def test_an_outcome_uses_independently(staff, town):
    hanako = await _hanako(town)
    due = await followups.schedule_follow_up(resident_id=hanako.id, due_on=today(),
                                             channel=FollowUpChannel.PHONE_CALL,
                                             actor=town.coordinator)
    path = f"/follow-ups/{gid('FollowUp', due.id)}"
    await staff.get(path)
    assert "自分で使えるようになった" in staff.text()
    await staff.post(path, {"outcome": "USES_INDEPENDENTLY"})
    assert "完了" in staff.text() and "自分で使えるようになった" in staff.text()
    await due.refresh_from_db()
    assert due.outcome == FollowUpOutcome.USES_INDEPENDENTLY


async def test_a_refused_next_step_records_nothing_and_keeps_the_notes(staff, town):
    hanako = await _hanako(town)
    due = await followups.schedule_follow_up(resident_id=hanako.id, due_on=today(),
                                             channel=FollowUpChannel.PHONE_CALL,
                                             actor=town.coordinator)
    path = f"/follow-ups/{gid('FollowUp', due.id)}"
    await staff.get(path)
    response = await staff.post(path, {"outcome": "NOT_REACHED", "notes": "留守でした",
                                       "nextDueOn": "2001-01-01",
                                       "nextChannel": "PHONE_CALL"})
    assert response.status_code == 400
    assert 'id="nextDueOn-error"' in staff.page and "今日以降" in staff.text()
    assert "留守でした" in staff.page and 'value="2001-01-01"' in staff.page
    await due.refresh_from_db()
    assert due.status == FollowUpStatus.OPEN


# --- messages -------------------------------------------------------------------------------

async def test_failed_and_skipped_messages_with_reasons_and_resend(staff, town):
    await no_quiet_hours(town.municipality.id)
    session = await factories.session(town.coordinator, factories.at(days=5, hour=14))
    sms = await factories.resident(town.coordinator, "高橋", "節子", sms=True)
    call = await factories.resident(town.coordinator, "田中", "一", sms=False)
    for person in (sms, call):
        await scheduling.register(actor=town.coordinator, session_id=session.id,
                                  resident_id=person.id)
    await Dispatcher(RecordingBackend(Outcome.PERMANENT), Settings()).run_once()
    failed = await Message.get(kind=MessageKind.CONFIRMATION, resident_id=sms.id)
    assert failed.status == MessageStatus.FAILED

    await staff.get("/messages")
    text = staff.text()
    assert "送信できなかったSMS（1件）" in text and "高橋 節子 様" in text
    assert "送らなかったSMS" in text and "田中 一 様" in text
    assert "携帯電話番号が登録されていません" in text
    await staff.post(f"/messages/{gid('Message', failed.id)}/resend")
    assert "もう一度送ります" in staff.text()
    await failed.refresh_from_db()
    assert failed.status == MessageStatus.PENDING
    # the same message twice: the API's refusal, in Japanese, on the page
    await staff.post(f"/messages/{gid('Message', failed.id)}/resend")
    assert "再送" in staff.text() and "受け付けできませんでした" in staff.text()


async def test_replies_that_need_review(staff, town):
    hanako = await _hanako(town, contact_preference="SMS", sms_consent=True)
    reply = await InboundMessage.create(municipality_id=town.municipality.id,
                                        resident_id=hanako.id, provider_id="SMreply1",
                                        from_number=hanako.phone, body="もう送らないでください",
                                        needs_review=True)
    await staff.get("/messages")
    assert "確認が必要な返信（1件）" in staff.text() and "もう送らないでください" in staff.text()
    await staff.post(f"/messages/replies/{gid('InboundMessage', reply.id)}/opt-out",
                     {"residentId": gid("Resident", hanako.id)})
    assert "配信を停止しました" in staff.text() and "確認が必要な返信（0件）" in staff.text()
    await hanako.refresh_from_db()
    await reply.refresh_from_db()
    assert hanako.sms_opted_out is True and reply.needs_review is False


async def test_a_reply_marked_as_read(staff, town):
    hanako = await _hanako(town)
    reply = await InboundMessage.create(municipality_id=town.municipality.id,
                                        resident_id=hanako.id, provider_id="SMreply2",
                                        from_number=hanako.phone, body="ありがとう",
                                        needs_review=True)
    await staff.get("/messages")
    await staff.post(f"/messages/replies/{gid('InboundMessage', reply.id)}/reviewed")
    assert "確認済みにしました" in staff.text() and "ありがとう" not in staff.text()
    await reply.refresh_from_db()
    assert reply.needs_review is False


# --- who may see what -----------------------------------------------------------------------

async def test_another_municipalitys_ids_answer_404(staff, town, other_town):
    foreign = await _hanako(other_town)
    task = await followups.schedule_follow_up(resident_id=foreign.id, due_on=today(),
                                              channel=FollowUpChannel.PHONE_CALL,
                                              actor=other_town.coordinator)
    for path in (f"/residents/{gid('Resident', foreign.id)}",
                 f"/residents/{gid('Resident', foreign.id)}/edit",
                 f"/follow-ups/{gid('FollowUp', task.id)}", "/residents/not-an-id"):
        response = await staff.get(path)
        assert response.status_code == 404, path
        assert "見つかりません" in staff.text() and "山田" not in staff.text()
    await staff.get("/residents", params={"q": "やまだ"})
    assert "検索結果（0人）" in staff.text()
    # a change aimed at them is refused and changes nothing
    await staff.get("/residents")
    await staff.post(f"/residents/{gid('Resident', foreign.id)}/opt-out", {"optedOut": "yes"})
    await foreign.refresh_from_db()
    assert foreign.sms_opted_out is False
    await staff.get("/follow-ups")
    await staff.post(f"/follow-ups/{gid('FollowUp', task.id)}", {"outcome": "DECLINED"})
    await task.refresh_from_db()
    assert task.status == FollowUpStatus.OPEN


@pytest.mark.parametrize("path", ["/residents", "/residents/new", "/follow-ups", "/messages"])
async def test_a_planner_and_a_supporter_get_403(console, town, path):
    hanako = await _hanako(town)
    await supporter_login(town)
    for email in ("hiratsuka-planner@example.jp", "sato@example.jp"):
        await console.login(email)
        for page in (path, f"/residents/{gid('Resident', hanako.id)}"):
            response = await console.get(page)
            assert response.status_code == 403, (email, page)
            assert "権限がありません" in console.text() and "090-1234-5678" not in console.page
        console.client.cookies.clear()


async def test_a_form_without_its_token_changes_nothing(staff, town):
    hanako = await _hanako(town)
    response = await staff.post(f"/residents/{gid('Resident', hanako.id)}/opt-out",
                                {"optedOut": "yes"}, csrf="")
    assert response.status_code == 403
    await hanako.refresh_from_db()
    assert hanako.sms_opted_out is False


async def test_what_a_resident_asks_supporters_to_know_is_saved_apart_from_staff_notes(staff):
    await staff.get("/residents/new")
    await staff.post("/residents/new", {
        "familyName": "要望", "givenName": "花子", "contactPreference": "PHONE_CALL",
        "supportNeeds": "LINEで孫と話したい", "notes": "家族が付き添う"})
    text = staff.text()
    assert "支援員に伝えたいこと LINEで孫と話したい" in text
    assert "メモ（職員だけ） 家族が付き添う" in text
