"""Residents' rights: erasure on request and by retention (reports unchanged, no trace left in
the database), disclosure of everything held, and the audit trail export for auditors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import factories
import pg_tools
from conftest import database_url
from factories import at
from sms_helpers import RecordingBackend, no_quiet_hours

from divide_support.accounts.models import Municipality
from divide_support.audit.models import AuditEntry
from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.core.settings import Settings
from divide_support.followups import service as followups
from divide_support.followups.models import FollowUp, FollowUpOutcome, FollowUpPurpose, FollowUpStatus
from divide_support.messaging import service as messaging
from divide_support.messaging.dispatcher import Dispatcher
from divide_support.messaging.models import InboundMessage, Message, MessageStatus
from divide_support.people import service as people
from divide_support.people.models import ContactPreference, Resident
from divide_support.privacy import service as privacy
from divide_support.reports import service as reports
from divide_support.reports.models import Survey
from divide_support.reports.service import ReportFilter
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    Attendance,
    CourseTopic,
    Registration,
    RegistrationSource,
    SessionKind,
    VisitOutcome,
)
from divide_support.seed import load_reference_data

# What identifies the person whose data is erased, in every form it could be stored in.
NAME = ("忘却", "幸子", "ボウキャク サチコ")
MOBILE = ("090-8765-4321", "09087654321", "+819087654321")
LANDLINE = ("0463-22-3333", "0463223333", "+81463223333")
NOTE = "持病の薬を毎朝飲んでいる"
REASON = "忘却さん入院のため"
ERASE = """mutation ($r: ID!) { eraseResident(input: {residentId: $r}) {
  resident { familyName givenName kana phone birthDate } errors { code message } } }"""


async def _life_of_a_resident(town):
    """The person to be erased and a few others, with a history in every area."""
    actor = town.coordinator
    await load_reference_data()
    await no_quiet_hours(town.municipality.id)
    person = await people.create_resident(actor=actor, fields=people.ResidentFields(
        family_name=NAME[0], given_name=NAME[1], kana=NAME[2], phone=MOBILE[0],
        landline=LANDLINE[0], birth_date=date(1944, 3, 15), contact_preference=ContactPreference.SMS,
        sms_consent=True, district="大神", notes=NOTE))
    others = [await factories.resident(actor, f"他{n}", birth_year=1940 + n, district="大神")
              for n in range(6)]
    past = await factories.session(actor, at(days=-20, hour=10), capacity=20)
    earlier = await factories.session(actor, at(days=-40, hour=10), capacity=20)
    for who in [person, *others]:
        seat = await scheduling.register(actor=actor, session_id=past.id, resident_id=who.id,
                                         source=RegistrationSource.WALK_IN)
        await scheduling.record_attendance(actor=actor, registration_id=seat.id,
                                           attendance=Attendance.ATTENDED)
    absent = await scheduling.register(actor=actor, session_id=earlier.id,
                                       resident_id=person.id, source=RegistrationSource.WALK_IN)
    await scheduling.record_attendance(actor=actor, registration_id=absent.id,
                                       attendance=Attendance.NO_SHOW)
    help_session = await factories.session(actor, at(days=-10, hour=13),
                                           kind=SessionKind.HELP_SESSION)
    await scheduling.record_visit(actor=actor, data=scheduling.VisitInput(
        session_id=help_session.id, topic=CourseTopic.MY_NUMBER_CARD,
        outcome=VisitOutcome.NEEDS_FOLLOW_UP, resident_id=person.id, notes=NOTE))
    after_class = await FollowUp.get(resident_id=person.id, purpose=FollowUpPurpose.AFTER_CLASS)
    await followups.complete_follow_up(actor=actor, follow_up_id=after_class.id,
                                       outcome=FollowUpOutcome.USES_INDEPENDENTLY, notes=NOTE)
    # A seat given up with a reason naming them, and the SMS that went out.
    future = await factories.session(actor, at(days=10, hour=10))
    seat = await scheduling.register(actor=actor, session_id=future.id, resident_id=person.id)
    await Dispatcher(RecordingBackend(), Settings()).run_once()
    await scheduling.cancel_registration(actor=actor, registration_id=seat.id, reason=REASON)
    await messaging.receive_reply(provider_id="SM-erase-1", from_number=MOBILE[2],
                                  body=f"{NAME[0]}です。よろしくお願いします",
                                  municipality_code=town.municipality.code)
    return person, others


async def _all_reports(town) -> dict:
    survey = await Survey.get(municipality_id=town.municipality.id,
                              key="hiratsuka-2020-internet-use")
    today = date.today()
    period = ReportFilter(today - timedelta(days=60), today + timedelta(days=30))
    by_district = ReportFilter(period.date_from, period.date_to, districts=["大神"])
    out = {}
    # staff's exact numbers, and the planner's perturbed ones: the record keys come from ids,
    # which erasure keeps, so the noise does not move either
    for who, actor in (("staff", town.coordinator), ("planner", town.planner)):
        for name, report_filter in (("all", period), ("district", by_district)):
            report = await reports.participation_report(actor=actor, survey_id=survey.id,
                                                         metric="internet_use.using",
                                                         report_filter=report_filter)
            out[who, name] = [(r.label, [getattr(r, f) for f in reports.COUNT_FIELDS],
                               r.participant_share, r.representation)
                              for r in [*report.rows, report.total]]
        rows, total = await reports.activity_report(actor=actor, date_from=period.date_from,
                                                    date_to=period.date_to)
        out[who, "activity"] = [vars(r) for r in [*rows, total]]
        out[who, "topics"] = [vars(r) for r in await reports.topic_report(
            actor=actor, survey_id=survey.id, date_from=period.date_from,
            date_to=period.date_to)]
    return out


async def test_erasing_keeps_every_report_and_leaves_no_trace_in_the_database(gql, town, db):
    person, _ = await _life_of_a_resident(town)
    before = await _all_reports(town)
    dump = await pg_tools.dump_text(db)
    for trace in (*NAME, MOBILE[2], LANDLINE[2], NOTE, REASON):
        assert trace in dump, trace  # the test would find them if they stayed

    data = await gql(Role.ADMIN).data(ERASE, {"r": to_global_id("Resident", person.id)})
    assert data["eraseResident"] == {"resident": {
        "familyName": "（消去済み）", "givenName": "", "kana": None, "phone": None,
        "birthDate": None}, "errors": []}

    assert await _all_reports(town) == before
    dump = await pg_tools.dump_text(db)
    for trace in (*NAME, *MOBILE, *LANDLINE, NOTE, REASON, "1944-03-15"):
        assert trace not in dump, trace
    [entry] = await AuditEntry.filter(action="resident.erase")
    assert entry.object_ids == [person.id] and entry.details == {"reason": "request"}
    assert entry.actor_role == "ADMIN"
    # Nothing more goes out to them, and nothing is added to the anonymous record.
    assert not await Message.filter(resident_id=person.id, status=MessageStatus.PENDING).exists()
    assert not await FollowUp.filter(resident_id=person.id, status=FollowUpStatus.OPEN).exists()
    again = await gql().data("""mutation ($r: ID!, $s: ID!) {
        register(input: {sessionId: $s, residentId: $r}) { errors { code } } }""", {
        "r": to_global_id("Resident", person.id),
        "s": to_global_id("Session", (await Registration.filter(resident_id=person.id)
                                      .first()).session_id)})
    assert again["register"]["errors"] == [{"code": "RESIDENT_ERASED"}]
    search = await gql().data('{ residents(search: "（消去済み）") { totalCount } }')
    assert search["residents"]["totalCount"] == 0


async def test_erasure_is_for_admins_and_waits_for_upcoming_places(gql, town):
    person = await factories.resident(town.coordinator, "予定", sms=True)
    session = await factories.session(town.coordinator, at(days=3, hour=10))
    seat = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                     resident_id=person.id)
    variables = {"r": to_global_id("Resident", person.id)}
    refused = await gql().data(ERASE, variables)
    assert refused["eraseResident"]["errors"][0]["code"] == "FORBIDDEN"
    waiting = await gql(Role.ADMIN).data(ERASE, variables)
    [error] = waiting["eraseResident"]["errors"]
    assert error["code"] == "HAS_UPCOMING_REGISTRATIONS" and "1件" in error["message"]
    assert (await Resident.get(id=person.id)).family_name == "予定"
    await scheduling.cancel_registration(actor=town.coordinator, registration_id=seat.id)
    done = await gql(Role.ADMIN).data(ERASE, variables)
    assert done["eraseResident"]["errors"] == []
    twice = await gql(Role.ADMIN).data(ERASE, variables)
    assert twice["eraseResident"]["errors"][0]["code"] == "ALREADY_ERASED"


async def test_the_birth_year_stays_only_where_the_municipality_allows(gql, town):
    await Municipality.filter(id=town.municipality.id).update(erasure_keeps_birth_year=True)
    person = await factories.resident(town.coordinator, "年だけ", birth_date=date(1950, 6, 1))
    await gql(Role.ADMIN).data(ERASE, {"r": to_global_id("Resident", person.id)})
    erased = await Resident.get(id=person.id)
    assert (erased.birth_date, erased.birth_year) == (None, 1950)


async def test_retention_erases_only_residents_past_the_period(town, database):
    await load_reference_data()
    idle = await factories.resident(town.coordinator, "休眠")
    active = await factories.resident(town.coordinator, "現役")
    booked = await factories.resident(town.coordinator, "予約")
    session = await factories.session(town.coordinator, at(days=5, hour=10))
    await scheduling.register(actor=town.coordinator, session_id=session.id,
                              resident_id=booked.id)
    long_ago = datetime.now().astimezone() - timedelta(days=4 * 366)
    await Resident.filter(id__in=[idle.id, booked.id]).update(updated_at=long_ago,
                                                              created_at=long_ago)
    municipality = await Municipality.get(id=town.municipality.id)
    due = await privacy.retention_due(municipality)
    assert due.resident_ids == [idle.id]  # the booked one holds an upcoming place

    env = {"DATABASE_URL": database_url(database, database.database), "LOG_LEVEL": "WARNING"}
    dry = _cli(["purge"], env)
    assert dry.returncode == 0, dry.stderr
    assert "平塚市（142034）: 最後の利用から3年を過ぎた住民 1人" in dry.stdout
    assert "確認のみ" in dry.stdout
    assert (await Resident.get(id=idle.id)).erased_at is None
    applied = _cli(["purge", "--apply"], env)
    assert applied.returncode == 0, applied.stderr
    assert "1人の個人情報を消去しました" in applied.stdout
    assert (await Resident.get(id=idle.id)).family_name == "（消去済み）"
    assert (await Resident.get(id=active.id)).family_name == "現役"
    [entry] = await AuditEntry.filter(action="resident.erase")
    assert entry.details == {"reason": "retention"} and entry.actor_email == "system"


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "divide_support", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)


async def test_a_disclosure_export_holds_everything_and_is_audited(gql, town):
    person, _ = await _life_of_a_resident(town)
    query = "query ($r: ID!) { exportResident(residentId: $r) }"
    variables = {"r": to_global_id("Resident", person.id)}
    refused = await gql()(query, variables)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    data = (await gql(Role.ADMIN).data(query, variables))["exportResident"]
    assert data["heldBy"] == "平塚市"
    assert data["resident"]["familyName"] == NAME[0] and data["resident"]["phone"] == MOBILE[2]
    assert data["resident"]["notes"] == NOTE
    assert {r["status"] for r in data["registrations"]} == {"CONFIRMED", "CANCELLED"}
    assert any(r["cancelReason"] == REASON for r in data["registrations"])
    assert data["visits"][0]["notes"] == NOTE
    assert any(f["outcome"] == "USES_INDEPENDENTLY" for f in data["followUps"])
    assert any(NAME[0] in m["body"] for m in data["messages"])
    assert data["replies"][0]["from"] == MOBILE[2]
    assert {"resident.create", "registration.create"} <= {e["action"] for e in data["accessLog"]}
    json.dumps(data, ensure_ascii=False)  # plain JSON throughout
    [entry] = await AuditEntry.filter(action="resident.export")
    assert entry.object_ids == [person.id] and entry.actor_role == "ADMIN"


async def test_the_audit_trail_exports_as_csv_for_auditors(town, other_town, database):
    await factories.resident(town.coordinator, "監査")
    await factories.resident(other_town.coordinator, "他市")
    env = {"DATABASE_URL": database_url(database, database.database), "LOG_LEVEL": "WARNING"}
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()  # the command's days are Tokyo days
    result = _cli(["audit-export", "--from", str(today - timedelta(days=1)), "--to", str(today),
                   "--municipality", "142034"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(result.stdout.lstrip("\ufeff"))))
    assert [r["action"] for r in rows] == ["resident.create"]
    assert rows[0]["actor_email"] == "hiratsuka-coordinator@example.jp"
    assert rows[0]["municipality_id"] == str(town.municipality.id)
    assert "監査ログを書き出しました: 1件" in result.stderr
    everything = _cli(["audit-export", "--from", str(today), "--to", str(today)], env)
    assert len(list(csv.DictReader(io.StringIO(everything.stdout.lstrip("\ufeff"))))) == 2
    wrong = _cli(["audit-export", "--from", str(today), "--to", str(today - timedelta(days=3))], env)
    assert wrong.returncode == 2 and "--to は --from 以降" in wrong.stderr
    bad = _cli(["audit-export", "--from", "昨日", "--to", str(today)], env)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr


async def test_erasing_one_of_a_couple_sharing_a_phone_keeps_the_others_replies(gql, town):
    """An older couple with one mobile: erasing the wife must not erase what the husband
    wrote. A reply that reached no municipality, from a number only the erased person had,
    goes with them."""
    husband = await factories.resident(town.coordinator, "共用", "太郎", phone="090-4444-5555",
                                       sms=True)
    wife = await people.create_resident(actor=town.coordinator, fields=people.ResidentFields(
        family_name="共用", given_name="花子", phone="090-4444-5555"), allow_duplicate=True)
    his, _ = await messaging.receive_reply(provider_id="SM-couple", from_number="+819044445555",
                                           body="太郎です。来週休みます",
                                           municipality_code=town.municipality.code)
    assert his.resident_id == husband.id  # the first with the number
    await gql(Role.ADMIN).data(ERASE, {"r": to_global_id("Resident", wife.id)})
    kept = await InboundMessage.get(id=his.id)
    assert (kept.body, kept.from_number) == ("太郎です。来週休みます", "+819044445555")

    loner = await factories.resident(town.coordinator, "単独", phone="090-6060-7070", sms=True)
    stray, stray_town = await messaging.receive_reply(
        provider_id="SM-stray", from_number="+819060607070", body="単独です。欠席します",
        municipality_code=None)
    assert stray_town is None and stray.municipality_id is None
    await gql(Role.ADMIN).data(ERASE, {"r": to_global_id("Resident", loner.id)})
    gone = await InboundMessage.get(id=stray.id)
    assert (gone.body, gone.from_number) == ("（消去済み）", "")


async def test_purge_removes_replies_that_reached_no_municipality_after_90_days(town, database):
    old, _ = await messaging.receive_reply(provider_id="SM-old", from_number="+819011119999",
                                           body="どなたですか", municipality_code=None)
    new, _ = await messaging.receive_reply(provider_id="SM-new", from_number="+819011118888",
                                           body="はい", municipality_code=None)
    await InboundMessage.filter(id=old.id).update(
        received_at=datetime.now().astimezone() - timedelta(days=91))
    applied = _cli(["purge", "--apply"], {"DATABASE_URL": database_url(database, database.database),
                                          "LOG_LEVEL": "WARNING"})
    assert applied.returncode == 0, applied.stderr
    assert "90日以上前の返信を削除しました: 1件" in applied.stdout
    assert await InboundMessage.filter(id__in=[old.id, new.id]).values_list("id", flat=True) \
        == [new.id]
