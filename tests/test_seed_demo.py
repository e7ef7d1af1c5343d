"""Reference data (municipalities, course catalogue) and the demo month."""

from __future__ import annotations

from collections import Counter

import pytest

from divide_support.accounts.models import Municipality
from divide_support.core import timeutil
from divide_support.core.actor import Actor
from divide_support.demo import STATION_NAME, load_demo
from divide_support.followups.models import FollowUp, FollowUpPurpose
from divide_support.people import phones
from divide_support.people.models import ContactPreference, Resident, Supporter
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    Assignment,
    Attendance,
    Course,
    CourseLevel,
    CourseTopic,
    Registration,
    RegistrationSource,
    RegistrationStatus,
    Session,
    SessionKind,
    Venue,
    Visit,
    VisitOutcome,
)
from divide_support.seed import (
    course_seeds,
    load_reference_data,
    municipality_seeds,
    parse_courses,
    parse_municipalities,
)

MUNICIPALITIES = {"142034": "平塚市", "092142": "さくら市", "222127": "焼津市",
                  "222259": "伊豆の国市"}

# デジタル活用支援推進事業: the standard menus every municipality offers.
NATIONAL_MENU = {
    "電源の入れ方・ボタン操作": (CourseTopic.DEVICE_BASICS, CourseLevel.BASIC),
    "電話・カメラの使い方": (CourseTopic.DEVICE_BASICS, CourseLevel.BASIC),
    "インターネット検索": (CourseTopic.DEVICE_BASICS, CourseLevel.BASIC),
    "地図アプリの使い方": (CourseTopic.DEVICE_BASICS, CourseLevel.BASIC),
    "LINEの使い方": (CourseTopic.MESSAGING_SNS, CourseLevel.BASIC),
    "マイナンバーカードの申請": (CourseTopic.MY_NUMBER_CARD, CourseLevel.APPLIED),
    "マイナポータル・健康保険証": (CourseTopic.MY_NUMBER_CARD, CourseLevel.APPLIED),
    "オンライン行政手続・e-Tax": (CourseTopic.CITY_ONLINE_SERVICES, CourseLevel.APPLIED),
    "オンライン診療予約": (CourseTopic.CITY_ONLINE_SERVICES, CourseLevel.APPLIED),
}


async def _snapshot() -> tuple[list[tuple], ...]:
    from divide_support.reports.models import Survey, SurveyBand

    municipalities = await Municipality.all().order_by("code").values_list(
        "id", "code", "name", "timezone", "phone", "follow_up_days")
    courses = await Course.all().order_by("municipality_id", "title").values_list(
        "id", "municipality_id", "title", "topic", "level", "description", "duration_minutes",
        "target_device")
    surveys = await Survey.all().order_by("id").values_list("id", "municipality_id", "key",
                                                            "fingerprint")
    bands = await SurveyBand.all().order_by("id").values_list("id", "survey_id", "label")
    return municipalities, courses, surveys, bands


# --- reference data ------------------------------------------------------------------------

async def test_seeding_twice_gives_the_same_rows_and_no_duplicates(db):
    first = await load_reference_data()
    before = await _snapshot()
    second = await load_reference_data()
    after = await _snapshot()

    catalogue = len(course_seeds())
    assert first == second == {"municipalities": 4, "courses": 4 * catalogue, "surveys": 2}
    assert before == after
    assert await Municipality.all().count() == 4
    assert await Course.all().count() == 4 * catalogue
    pairs = Counter(await Course.all().values_list("municipality_id", "title"))
    assert max(pairs.values()) == 1


async def test_seeding_again_updates_changed_rows_and_keeps_local_courses(db):
    await load_reference_data()
    hiratsuka = await Municipality.get(code="142034")
    await Municipality.filter(id=hiratsuka.id).update(name="古い名前", follow_up_days=30)
    line = await Course.get(municipality_id=hiratsuka.id, title="LINEの使い方")
    await Course.filter(id=line.id).update(topic=CourseTopic.OTHER, level=CourseLevel.APPLIED,
                                           description="古い説明", duration_minutes=45)
    actor = Actor.system(hiratsuka.id)
    local = await scheduling.create_course(actor=actor, title="市独自の講座",
                                           topic=CourseTopic.OTHER, duration_minutes=60)

    await load_reference_data()

    hiratsuka = await Municipality.get(code="142034")
    assert (hiratsuka.name, hiratsuka.follow_up_days) == ("平塚市", 14)
    line_again = await Course.get(municipality_id=hiratsuka.id, title="LINEの使い方")
    assert line_again.id == line.id  # updated in place, not replaced
    assert (line_again.topic, line_again.level) == (CourseTopic.MESSAGING_SNS, CourseLevel.BASIC)
    assert line_again.description != "古い説明"
    assert 60 <= line_again.duration_minutes <= 120
    assert await Course.filter(id=local.id).exists()
    assert await Course.filter(municipality_id=hiratsuka.id).count() == len(course_seeds()) + 1


async def test_every_municipality_has_the_national_menu_courses(db):
    await load_reference_data()
    municipalities = await Municipality.all()
    assert {m.code: m.name for m in municipalities} == MUNICIPALITIES
    for municipality in municipalities:
        assert municipality.timezone == "Asia/Tokyo"
        assert municipality.follow_up_days == 14
        assert municipality.phone and phones.parse_any(municipality.phone, "phone")
        courses = {c.title: c for c in await Course.filter(municipality_id=municipality.id)}
        for title, (topic, level) in NATIONAL_MENU.items():
            assert title in courses, (municipality.name, title)
            assert (courses[title].topic, courses[title].level) == (topic, level), title
        for course in courses.values():
            assert 60 <= course.duration_minutes <= 120, course.title
            assert course.description and "お持ちください" in course.description, course.title
    extras = {c.title: c for c in await Course.filter(municipality__code="142034")}
    assert extras["詐欺・セキュリティ対策"].topic == CourseTopic.SECURITY
    assert extras["キャッシュレス決済"].topic == CourseTopic.CASHLESS
    assert extras["市のオンラインサービス"].level == CourseLevel.APPLIED


def test_the_shipped_seed_files_are_valid():
    assert {m.code for m in municipality_seeds()} == set(MUNICIPALITIES)
    assert set(NATIONAL_MENU) <= {c.title for c in course_seeds()}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"courses": [{"title": "A", "topic": "DEVICE_BASICS", "level": "BASIC",
                       "duration_minutes": 60},
                      {"title": "B", "topic": "GARDENING", "level": "BASIC",
                       "duration_minutes": 60}]},
         ["courses.yaml", "courses[1]", "'B'", "topic", "GARDENING"]),
        ({"courses": [{"title": "A", "topic": "DEVICE_BASICS", "level": "BASIC",
                       "duration_minutes": "90分"}]},
         ["courses.yaml", "courses[0]", "duration_minutes"]),
        ({"courses": [{"title": "A", "topic": "DEVICE_BASICS", "level": "BASIC",
                       "duration_minutes": 60, "duraton": 5}]},
         ["courses[0]", "unknown field", "duraton"]),
        ({"courses": [{"title": "A", "topic": "DEVICE_BASICS", "level": "BASIC",
                       "duration_minutes": 60}] * 2},
         ["courses[1]", "appears twice"]),
        ({"courses": [{"topic": "DEVICE_BASICS", "level": "BASIC", "duration_minutes": 60}]},
         ["courses[0]", "'title' is required"]),
        ({"course": []}, ["courses.yaml", "'courses'"]),
        (["not", "a", "mapping"], ["courses.yaml"]),
    ],
)
def test_a_malformed_course_file_names_the_file_and_entry(data, expected):
    with pytest.raises(ValueError) as caught:
        parse_courses(data)
    for part in expected:
        assert part in str(caught.value)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"code": 142034, "name": "平塚市"}, ["municipalities[0]", "quoted"]),
        ({"code": "14203", "name": "平塚市"}, ["municipalities[0]", "6-digit"]),
        ({"code": "142034"}, ["'name' is required"]),
        ({"code": "142034", "name": "平塚市", "phone": "0463-21"}, ["'phone'"]),
        ({"code": "142034", "name": "平塚市", "timezone": "Asia/Hiratsuka"}, ["'timezone'"]),
        ({"code": "142034", "name": "平塚市", "follow_up_days": 0}, ["'follow_up_days'"]),
        ({"code": "142034", "name": "平塚市", "follow_up_days": True}, ["'follow_up_days'"]),
        ({"code": "142034", "name": "平塚市", "sms_quiet_hours": "21-8"}, ["'sms_quiet_hours'"]),
        ({"code": "142034", "name": "平塚市", "sms_per_second": -1}, ["'sms_per_second'"]),
    ],
)
def test_a_malformed_municipality_file_names_the_file_and_entry(entry, expected):
    with pytest.raises(ValueError) as caught:
        parse_municipalities({"municipalities": [entry]})
    assert "municipalities.yaml" in str(caught.value)
    for part in expected:
        assert part in str(caught.value)


def test_sms_quiet_hours_and_pace_come_from_the_municipality_file():
    [seed] = parse_municipalities({"municipalities": [
        {"code": "142034", "name": "平塚市", "sms_quiet_hours": "20:30-07:45", "sms_per_second": 2}]})
    assert (seed.sms_quiet_from_minute, seed.sms_quiet_until_minute) == (20 * 60 + 30, 7 * 60 + 45)
    assert seed.sms_per_second == 2.0
    [default] = parse_municipalities({"municipalities": [{"code": "142034", "name": "平塚市"}]})
    assert (default.sms_quiet_from_minute, default.sms_quiet_until_minute) == (1260, 480)


# --- demo ----------------------------------------------------------------------------------

async def _row_counts(municipality_id: int) -> dict[str, int]:
    models = (Venue, Supporter, Resident, Session, Assignment, Registration, Visit, FollowUp,
              Course)
    return {m.__name__: await m.filter(municipality_id=municipality_id).count() for m in models}


async def test_demo_fills_a_month_and_a_second_run_is_skipped(db):
    counts = await load_demo()
    hiratsuka = await Municipality.get(code="142034")
    rows = await _row_counts(hiratsuka.id)

    assert counts["residents"] == rows["Resident"] == 200
    assert counts["venues"] == rows["Venue"] == 4
    assert counts["supporters"] == rows["Supporter"] == 12
    assert counts["sessions"] == rows["Session"]
    assert counts["visits"] == rows["Visit"] == 40
    assert counts["registrations"] == rows["Registration"]
    assert counts["follow_ups"] == rows["FollowUp"] > 0
    # made-up numbers: nothing the demo planned may ever be sent
    from divide_support.messaging.models import Message, MessageStatus

    assert counts["sms_withdrawn"] > 0
    assert not await Message.filter(status__in=(MessageStatus.PENDING,
                                                MessageStatus.SENDING)).exists()
    assert rows["Assignment"] > 0
    # nothing spills into the other municipalities
    assert await Resident.exclude(municipality_id=hiratsuka.id).count() == 0

    sessions = await Session.filter(municipality_id=hiratsuka.id)
    kinds = Counter(s.kind for s in sessions)
    assert kinds[SessionKind.CLASS] >= 8 and kinds[SessionKind.HELP_SESSION] >= 4
    station = await Venue.get(municipality_id=hiratsuka.id, name=STATION_NAME)
    assert all(s.venue_id == station.id for s in sessions if s.kind == SessionKind.HELP_SESSION)

    registrations = await Registration.filter(municipality_id=hiratsuka.id)
    assert any(r.status == RegistrationStatus.WAITLISTED for r in registrations)
    attendance = Counter(r.attendance for r in registrations if r.attendance)
    assert attendance[Attendance.ATTENDED] > attendance[Attendance.NO_SHOW] > 0
    starts = {s.id: s.starts_at for s in sessions}
    now = timeutil.now()
    for registration in registrations:
        if starts[registration.session_id] > now:
            assert registration.source in (RegistrationSource.PHONE, RegistrationSource.COUNTER)
            assert registration.attendance is None

    visits = await Visit.filter(municipality_id=hiratsuka.id)
    anonymous = [v for v in visits if v.resident_id is None]
    assert anonymous and all(v.age_at_visit is not None for v in anonymous)
    needing = [v for v in visits if v.outcome == VisitOutcome.NEEDS_FOLLOW_UP]
    assert needing and all(v.resident_id is not None for v in needing)
    assert await FollowUp.filter(municipality_id=hiratsuka.id,
                                 purpose=FollowUpPurpose.AFTER_VISIT).count() == len(needing)

    again = await load_demo()
    assert again == {"skipped": 1}
    assert await _row_counts(hiratsuka.id) == rows


async def test_the_demos_past_sessions_are_staffed_and_the_activity_report_shows_it(db):
    """Past sessions are entered from the paper sheets, supporters included: the programme's
    report has supporters per session for them, as for the upcoming ones."""
    from datetime import timedelta

    from divide_support.demo import DAYS_BACK
    from divide_support.reports import service as reports

    await load_demo()
    hiratsuka = await Municipality.get(code="142034")
    past = await Session.filter(municipality_id=hiratsuka.id, ends_at__lte=timeutil.now())
    assert len(past) >= 4
    staffed = set(await Assignment.filter(session_id__in=[s.id for s in past]).values_list(
        "session_id", flat=True))
    assert staffed == {s.id for s in past}
    today = timeutil.today(hiratsuka.timezone)
    rows, total = await reports.activity_report(
        actor=Actor.system(hiratsuka.id, hiratsuka.timezone),
        date_from=today - timedelta(days=DAYS_BACK), date_to=today - timedelta(days=1))
    assert rows and total.sessions > 0
    assert all(row.supporters_per_session and row.supporters_per_session >= 1 for row in rows)
    assert total.certified_supporters >= total.sessions  # a certified LEAD at each


async def test_demo_residents_look_like_the_people_who_come(db):
    await load_demo()
    residents = await Resident.filter(municipality__code="142034")
    today = timeutil.today("Asia/Tokyo")
    ages = [timeutil.age_on(r.birth_date, r.birth_year, today) for r in residents]
    known = [a for a in ages if a is not None]
    assert len(known) < len(ages)  # some ages are unknown
    assert all(50 <= a <= 95 for a in known)
    assert sum(a >= 60 for a in known) > 0.75 * len(known)
    assert any(r.birth_date is None and r.birth_year for r in residents)
    with_mobile = [r for r in residents if r.phone]
    assert 0.45 * len(residents) < len(with_mobile) < 0.75 * len(residents)
    for resident in residents:
        assert resident.kana and " " in resident.kana
        if resident.phone:
            assert phones.parse_mobile(resident.phone, "phone") == resident.phone
        if resident.contact_preference == ContactPreference.SMS:
            assert resident.phone and resident.sms_consent
    assert len({r.district for r in residents}) == 5
    supporters = await Supporter.filter(municipality__code="142034")
    assert 0 < sum(s.certified for s in supporters) < len(supporters)


async def test_demo_never_seats_more_than_capacity(db):
    counts = await load_demo("092142", seed=7)
    assert counts["residents"] == 200
    sakura = await Municipality.get(code="092142")
    venues = await Venue.filter(municipality_id=sakura.id)
    assert all(v.address and v.address.startswith("さくら市") for v in venues)
    for session in await Session.filter(municipality_id=sakura.id):
        confirmed = await Registration.filter(
            session_id=session.id, status=RegistrationStatus.CONFIRMED).count()
        positions = await Registration.filter(
            session_id=session.id, status=RegistrationStatus.WAITLISTED,
        ).order_by("waitlist_position").values_list("waitlist_position", flat=True)
        if session.capacity is not None:
            assert confirmed <= session.capacity, session.title
        if positions:
            assert confirmed == session.capacity  # nobody waits while a seat is free
            assert list(positions) == list(range(1, len(positions) + 1))


async def test_demo_for_an_unknown_municipality_is_refused(db):
    with pytest.raises(ValueError, match="999999"):
        await load_demo("999999")
