"""The counter's session pages over HTTP in-process: the list, scheduling, a session's page
(registering, the waitlist, cancelling a seat and the promotion, attendance, walk-ins,
visits, supporters), its changes with their confirmation, the sign-in sheet. Each form's
success, and its refusal with the API's message at the field and nothing changed."""

from __future__ import annotations

import re
from datetime import timedelta

import factories
import pytest
from factories import at

from divide_support.core import timeutil
from divide_support.core.ids import to_global_id
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    Assignment,
    Registration,
    RegistrationSource,
    RegistrationStatus,
    Session,
    SessionKind,
    SessionStatus,
    Visit,
)

COORDINATOR = "hiratsuka-coordinator@example.jp"


@pytest.fixture
async def staff(console, town):
    await console.login(COORDINATOR)
    return console


def gid(kind: str, row) -> str:
    return to_global_id(kind, row.id)


def field_message(page: str, name: str) -> str:
    """The message shown at a form field (the _forms.html macros' id)."""
    found = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', page)
    return found.group(1) if found else ""


async def test_a_supporter_may_not_open_the_session_pages(console, town):
    await factories.supporter_login(town)
    await console.login("sato@example.jp")
    response = await console.get("/sessions")
    assert response.status_code == 403
    assert "権限がありません" in console.text()


async def test_the_list_shows_upcoming_sessions_by_venue_and_kind(staff, town):
    hall = await factories.venue(town.coordinator, name="中央公民館")
    library = await factories.venue(town.coordinator, name="駅前図書館")
    lesson = await factories.session(town.coordinator, at(days=2, hour=10), venue_obj=hall)
    help_desk = await factories.session(town.coordinator, at(days=3, hour=13),
                                        kind=SessionKind.HELP_SESSION, venue_obj=library)
    await factories.session(town.coordinator, at(days=-3, hour=10), venue_obj=hall)  # past
    await staff.get("/sessions")
    text = staff.text()
    assert lesson.title in text and "スマホ相談会" in text and "これからの回（2件）" in text
    await staff.get(f"/sessions?venue={gid('Venue', library)}")
    assert lesson.title not in staff.text() and "駅前図書館" in staff.text()
    await staff.get("/sessions?kind=CLASS")
    assert lesson.title in staff.text() and f"/sessions/{gid('Session', help_desk)}" \
        not in staff.page


async def _schedule_form(staff, town, **values):
    venue = await factories.venue(town.coordinator, capacity=20)
    course = await factories.course(town.coordinator)
    await staff.get("/sessions/new")
    assert "教室・相談会を登録" in staff.text() and course.title in staff.text()
    day = (timeutil.today("Asia/Tokyo") + timedelta(days=7)).isoformat()
    form = {"kind": "CLASS", "courseId": gid("Course", course), "venueId": gid("Venue", venue),
            "date": day, "startsAt": "10:00", "endsAt": "12:00", "capacity": "12",
            "repeatWeekly": "3", "keepClosedDays": "1", **values}
    return await staff.post("/sessions/new", form)


async def test_scheduling_a_weekly_class_opens_its_first_session(staff, town):
    response = await _schedule_form(staff, town)
    assert response.status_code == 200
    assert "4回分を登録しました" in staff.text()
    assert "残り12席（定員12人）" in staff.text() and "10:00〜12:00" in staff.text()
    sessions = await Session.all().order_by("starts_at")
    assert len(sessions) == 4
    assert response.url.path == f"/sessions/{gid('Session', sessions[0])}"
    assert sessions[1].starts_at - sessions[0].starts_at == timedelta(weeks=1)


async def test_a_refused_schedule_says_why_at_the_field_and_keeps_what_was_typed(staff, town):
    response = await _schedule_form(staff, town, capacity="30")
    assert response.status_code == 400
    assert field_message(staff.page, "capacity") == "定員が会場の収容人数（20人）を超えています。"
    assert 'value="30"' in staff.page and 'value="10:00"' in staff.page
    assert await Session.all().count() == 0
    await staff.post("/sessions/new", {"kind": "CLASS", "date": "", "startsAt": "10:00",
                                       "endsAt": "09:00", "capacity": "十"})
    assert field_message(staff.page, "date").startswith("日付を入力してください")
    assert field_message(staff.page, "capacity") == "数字で入力してください。"
    await _schedule_form(staff, town, repeatWeekly="0", courseId="")
    assert field_message(staff.page, "courseId") == "教室には講座を指定してください。"
    assert await Session.all().count() == 0


async def test_another_municipality_s_session_is_not_found(staff, town, other_town):
    foreign = await factories.session(other_town.coordinator, at(days=2, hour=10))
    response = await staff.get(f"/sessions/{gid('Session', foreign)}")
    assert response.status_code == 404 and "見つかりません" in staff.text()
    assert foreign.title not in staff.text()
    assert (await staff.get("/sessions/U2Vzc2lvbjo5OTk5OTk=")).status_code == 404
    assert (await staff.get("/sessions/made-up")).status_code == 404
    assert (await staff.get(f"/sessions/{gid('Session', foreign)}/change")).status_code == 404
    resident = await factories.resident(town.coordinator)
    await staff.get("/sessions")
    response = await staff.post(f"/sessions/{gid('Session', foreign)}/register",
                                {"residentId": gid("Resident", resident)})
    assert response.status_code == 404
    assert await Registration.all().count() == 0


async def test_register_found_by_hiragana_until_the_waitlist(staff, town):
    session = await factories.session(town.coordinator, at(days=4, hour=10), capacity=1)
    first = await factories.resident(town.coordinator, "山田", "花子", kana="ヤマダ ハナコ")
    second = await factories.resident(town.coordinator, "鈴木", "一郎", kana="スズキ イチロウ")
    page = f"/sessions/{gid('Session', session)}"
    await staff.get(f"{page}?q=やまだはなこ")
    assert "「やまだはなこ」で見つかった住民（1人）" in staff.text()
    assert "山田 花子 様" in staff.text()
    await staff.post(f"{page}/register", {"residentId": gid("Resident", first),
                                          "source": "PHONE"})
    assert "申込を受け付けました。" in staff.text() and "満席" in staff.text()
    await staff.get(f"{page}?q=鈴木 一郎")
    await staff.post(f"{page}/register", {"residentId": gid("Resident", second),
                                          "source": "COUNTER"})
    assert "満席のため、キャンセル待ちで受け付けました。" in staff.text()
    assert "キャンセル待ち（1番目） 鈴木 一郎 様" in staff.text()
    # The same person again: the API's words next to their row, nothing added.
    await staff.get(f"{page}?q=すずき")
    response = await staff.post(f"{page}/register", {"residentId": gid("Resident", second),
                                                     "source": "PHONE", "q": "すずき"})
    assert response.status_code == 400
    assert "この方は既にこの回に申し込まれています。" in staff.text()
    assert await Registration.filter(session_id=session.id).count() == 2


async def test_cancelling_a_seat_says_who_was_promoted_and_how_they_are_told(staff, town):
    session = await factories.session(town.coordinator, at(days=4, hour=10), capacity=1)
    page = f"/sessions/{gid('Session', session)}"
    holder = await factories.resident(town.coordinator, "山田", "花子")
    by_phone = await factories.resident(town.coordinator, "鈴木", "一郎")  # no SMS consent
    by_sms = await factories.resident(town.coordinator, "田中", "恵子", sms=True)
    seats = [await scheduling.register(actor=town.coordinator, session_id=session.id,
                                       resident_id=r.id) for r in (holder, by_phone, by_sms)]
    await staff.get(page)
    assert "キャンセル待ち（1番目） 鈴木 一郎 様" in staff.text()
    assert "キャンセル待ち（2番目） 田中 恵子 様" in staff.text()
    await staff.post(f"{page}/cancel-seat", {"registrationId": gid("Registration", seats[0])})
    text = staff.text()
    assert "申込を取り消しました。" in text
    assert "鈴木 一郎 様 がキャンセル待ちから繰り上げで参加確定になりました。" in text
    assert "SMSが届かないため、電話でお知らせしてください" in text
    assert "キャンセル待ち（1番目） 田中 恵子 様" in text
    await staff.post(f"{page}/cancel-seat", {"registrationId": gid("Registration", seats[1])})
    assert "田中 恵子 様 がキャンセル待ちから繰り上げで参加確定になりました。" in staff.text()
    assert "ご本人にはSMSでお知らせします。" in staff.text()
    # A seat already given up: the message at its row... the row is gone, so at the roster.
    response = await staff.post(f"{page}/cancel-seat",
                                {"registrationId": gid("Registration", seats[0])})
    assert response.status_code == 400
    assert "この申込は既に取り消されています。" in staff.text()
    assert await Registration.filter(status=RegistrationStatus.CONFIRMED).count() == 1


async def test_attendance_one_tap_per_person_and_walk_ins(staff, town):
    session = await factories.session(town.coordinator, at(days=-0.02), capacity=2)
    booked = await factories.resident(town.coordinator, "山田", "花子")
    walk_in = await factories.resident(town.coordinator, "鈴木", "一郎", kana="スズキ イチロウ")
    seat = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                     resident_id=booked.id, source=RegistrationSource.WALK_IN)
    page = f"/sessions/{gid('Session', session)}"
    await staff.get(f"{page}?q=スズキ")
    assert "当日参加で登録" in staff.text() and "電話の申込を登録" not in staff.text()
    await staff.post(f"{page}/register", {"residentId": gid("Resident", walk_in),
                                          "source": "WALK_IN"})
    assert "申込を受け付けました。" in staff.text()
    assert re.search(r"鈴木 一郎 様 スズキ イチロウ 当日参加 \S+ 未記録", staff.text())
    await staff.post(f"{page}/attendance", {"registrationId": gid("Registration", seat),
                                            "attendance": "ATTENDED"})
    assert "出欠を記録しました。" in staff.text()
    assert re.search(r"山田 花子 様 .* 当日参加 \S+ 出席", staff.text())
    assert (await Registration.get(id=seat.id)).attendance == "ATTENDED"


async def test_attendance_before_the_start_is_refused_at_the_row(staff, town):
    session = await factories.session(town.coordinator, at(days=2, hour=10))
    resident = await factories.resident(town.coordinator, "山田", "花子")
    seat = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                     resident_id=resident.id)
    page = f"/sessions/{gid('Session', session)}"
    await staff.get(page)
    assert "出席" not in staff.text()
    response = await staff.post(f"{page}/attendance", {"registrationId": gid("Registration", seat),
                                                       "attendance": "ATTENDED"})
    assert response.status_code == 400
    assert "出欠は開始時刻になってから記録できます。" in staff.text()
    assert (await Registration.get(id=seat.id)).attendance is None


async def test_help_session_visits_named_or_anonymous(staff, town):
    session = await factories.session(town.coordinator, at(days=-0.02), capacity=None,
                                      kind=SessionKind.HELP_SESSION)
    resident = await factories.resident(town.coordinator, "山田", "花子", birth_year=1948)
    page = f"/sessions/{gid('Session', session)}"
    await staff.get(page)
    assert "名前なし（年齢のみ）" in staff.text()
    await staff.post(f"{page}/visit", {"residentId": "", "ageAtVisit": "78",
                                       "topic": "MESSAGING_SNS", "outcome": "RESOLVED"})
    assert "相談記録を登録しました。" in staff.text()
    assert "名前なし（年齢のみ） 78歳 LINE・メール 解決した" in staff.text()
    await staff.get(f"{page}?q=やまだ")
    await staff.post(f"{page}/visit", {"residentId": gid("Resident", resident), "ageAtVisit": "",
                                       "topic": "SECURITY", "outcome": "PARTLY_RESOLVED"})
    assert "山田 花子 様" in staff.text() and "一部解決した" in staff.text()
    response = await staff.post(f"{page}/visit", {"residentId": "", "ageAtVisit": "200",
                                                  "topic": "OTHER", "outcome": "RESOLVED"})
    assert response.status_code == 400
    assert field_message(staff.page, "ageAtVisit") == "年齢は0〜120の数で入力してください。"
    assert 'value="200"' in staff.page
    response = await staff.post(f"{page}/visit", {"residentId": "", "ageAtVisit": "80",
                                                  "topic": "OTHER",
                                                  "outcome": "NEEDS_FOLLOW_UP"})
    assert field_message(staff.page, "residentId").startswith("フォローアップが必要な場合は")
    assert await Visit.all().count() == 2


async def test_supporters_assigned_removed_and_refusals_in_japanese(staff, town):
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    elsewhere = await factories.session(town.coordinator, at(days=3, hour=10))
    lead = await factories.supporter(town.coordinator, name="高橋 直美")
    helper = await factories.supporter(town.coordinator, certified=False, name="伊藤 翔")
    await scheduling.assign_supporter(actor=town.coordinator, session_id=elsewhere.id,
                                      supporter_id=helper.id)
    page = f"/sessions/{gid('Session', session)}"
    await staff.get(page)
    assert "認定講師（リード）がいません" in staff.text() or "支援員が足りません" in staff.text()
    await staff.post(f"{page}/assign", {"supporterId": gid("Supporter", lead), "role": "LEAD"})
    assert "支援員を割り当てました。" in staff.text() and "高橋 直美 講師（リード） 認定" in staff.text()
    response = await staff.post(f"{page}/assign", {"supporterId": gid("Supporter", helper),
                                                   "role": "ASSISTANT"})
    assert response.status_code == 400
    assert field_message(staff.page, "supporterId") == \
        "この支援員は同じ時間帯に別の回を担当しています。"
    await staff.post(f"{page}/assign", {"supporterId": gid("Supporter", helper), "role": "LEAD"})
    assert field_message(staff.page, "role") == "講師役（LEAD）は認定を受けた支援員に限られます。"
    assert await Assignment.filter(session_id=session.id).count() == 1
    assignment = await Assignment.get(session_id=session.id)
    await staff.post(f"{page}/unassign", {"assignmentId": gid("Assignment", assignment)})
    assert "支援員の担当を外しました。" in staff.text() and "まだ担当の支援員はいません。" in staff.text()


async def test_a_bigger_capacity_says_first_whom_it_tells(staff, town):
    session = await factories.session(town.coordinator, at(days=4, hour=10), capacity=1)
    page = f"/sessions/{gid('Session', session)}"
    for family, sms in (("山田", True), ("鈴木", False), ("田中", True)):
        resident = await factories.resident(town.coordinator, family, sms=sms)
        await scheduling.register(actor=town.coordinator, session_id=session.id,
                                  resident_id=resident.id)
    await staff.get(f"{page}/change")
    values = {"date": (await _local_day(session)), "startsAt": "10:00", "endsAt": "12:00",
              "venueId": gid("Venue", await session.venue), "capacity": "2"}
    await staff.post(f"{page}/change", values)
    text = staff.text()
    assert "この内容で変更しますか" in text and "新しい定員 2人（いまは1人）" in text
    assert "1人 にお知らせします" in text and "電話でお知らせする方（SMSが届かない方）: 1人" in text
    assert (await Session.get(id=session.id)).capacity == 1  # nothing yet
    await staff.post(f"{page}/change", {**values, "confirm": "1"})
    assert "この回の変更を保存しました。" in staff.text()
    assert (await Session.get(id=session.id)).capacity == 2
    # Below the confirmed seats: the API's words at the field, nothing changed.
    await staff.get(f"{page}/change")
    response = await staff.post(f"{page}/change", {**values, "capacity": "1", "confirm": "1"})
    assert response.status_code == 400
    assert field_message(staff.page, "capacity").startswith("確定済みの参加者が2人いるため")
    assert (await Session.get(id=session.id)).capacity == 2


async def _local_day(session) -> str:
    return timeutil.local_date(session.starts_at, "Asia/Tokyo").isoformat()


async def test_moving_and_cancelling_say_how_many_are_told_by_sms_and_phone(staff, town):
    session = await factories.session(town.coordinator, at(days=4, hour=10), capacity=5)
    page = f"/sessions/{gid('Session', session)}"
    for family, sms in (("山田", True), ("鈴木", False)):
        resident = await factories.resident(town.coordinator, family, sms=sms)
        await scheduling.register(actor=town.coordinator, session_id=session.id,
                                  resident_id=resident.id)
    await staff.get(f"{page}/change")
    values = {"date": await _local_day(session), "startsAt": "13:00", "endsAt": "15:00",
              "venueId": gid("Venue", await session.venue), "capacity": "5"}
    await staff.post(f"{page}/change", values)
    text = staff.text()
    assert "12:00〜15:00" not in text and "13:00〜15:00" in text and "2人 にお知らせします" in text
    assert "SMSでお知らせ: 1人" in text and "電話でお知らせする方（SMSが届かない方）: 1人" in text
    await staff.post(f"{page}/change", {**values, "endsAt": "12:00", "confirm": "1"})
    assert field_message(staff.page, "endsAt") == "終了時刻は開始時刻より後にしてください。"
    await staff.get(f"{page}/cancel")
    assert "この回を中止しますか" in staff.text() and "2人 にお知らせします" in staff.text()
    assert (await Session.get(id=session.id)).status == SessionStatus.SCHEDULED
    await staff.post(f"{page}/cancel", {"reason": "会場の設備点検のため"})
    assert "この回を中止しました。" in staff.text() and "状態 中止 （理由: 会場の設備点検のため）" in staff.text()
    await staff.post(f"{page}/cancel", {"reason": "もう一度"})
    assert "この回は既に中止されています。" in staff.text()


async def test_the_sign_in_sheet_lists_the_confirmed_in_large_type(staff, town):
    session = await factories.session(town.coordinator, at(days=1, hour=10))
    resident = await factories.resident(town.coordinator, "山田", "花子", kana="ヤマダ ハナコ")
    await scheduling.register(actor=town.coordinator, session_id=session.id,
                              resident_id=resident.id)
    page = f"/sessions/{gid('Session', session)}"
    await staff.get(page)
    assert 'class="print-only"' in staff.page and f'href="{page}?print=1"' in staff.page
    await staff.get(f"{page}?print=1")
    assert "受付簿" in staff.text() and "1 山田 花子 様 ヤマダ ハナコ" in staff.text()
    assert "取消" not in staff.text()


async def test_a_post_without_the_csrf_token_changes_nothing(staff, town):
    session = await factories.session(town.coordinator, at(days=2, hour=10))
    resident = await factories.resident(town.coordinator)
    await staff.get("/sessions")
    response = await staff.post(f"/sessions/{gid('Session', session)}/register",
                                {"residentId": gid("Resident", resident)}, csrf="")
    assert response.status_code == 403
    assert await Registration.all().count() == 0
