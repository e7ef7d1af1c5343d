"""Participation by age band against the survey baselines: exact numbers on a data set whose
right answers are known in advance, suppression for planners, the files, survey imports."""

from __future__ import annotations

import csv
import io
import itertools
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta

import factories
import pytest
from factories import TOKYO

from divide_support.core.actor import Role
from divide_support.core.errors import DomainError
from divide_support.core.ids import to_global_id
from divide_support.followups import service as followups
from divide_support.followups.models import FollowUp, FollowUpOutcome, FollowUpPurpose
from divide_support.people import service as people
from divide_support.reports import service as reports
from divide_support.reports.models import PopulationFigure, Survey, SurveyBand
from divide_support.reports.service import ReportFilter
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import (
    AssignmentRole,
    Attendance,
    CourseTopic,
    RegistrationSource,
    SessionKind,
    Visit,
    VisitOutcome,
)
from divide_support.seed import load_reference_data

HIRATSUKA = {  # band: (respondents, using %) from survey-baselines.md
    "16～19歳": (55, 98.2), "20～29歳": (117, 98.3), "30～39歳": (166, 97.6),
    "40～49歳": (267, 96.6), "50～59歳": (266, 95.1), "60～69歳": (298, 80.2),
    "70～79歳": (379, 50.4), "80歳以上": (148, 20.9),
}
NEED = {band: n * (100 - using) / 100 for band, (n, using) in HIRATSUKA.items()}
METRIC = "internet_use.using"


def _today() -> date:
    return datetime.now(TOKYO).date()


def _period() -> ReportFilter:
    return ReportFilter(date_from=_today() - timedelta(days=30), date_to=_today() + timedelta(days=30))


async def _survey(town) -> Survey:
    await load_reference_data()
    return await Survey.get(municipality_id=town.municipality.id, key="hiratsuka-2020-internet-use")


_PEOPLE = itertools.count(1)


async def _person(town, *, birth_date: date | None = None, birth_year: int | None = None,
                  district: str | None = None):
    # a name of their own: two 市民 太郎 born in one year would be a possible duplicate
    return await people.create_resident(actor=town.coordinator, fields=people.ResidentFields(
        family_name="市民", given_name=f"太郎{next(_PEOPLE)}", birth_date=birth_date,
        birth_year=birth_year,
        district=district))


async def _attend(town, session, resident, attendance: Attendance = Attendance.ATTENDED):
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id,
                                             source=RegistrationSource.WALK_IN)
    await scheduling.record_attendance(actor=town.coordinator, registration_id=registration.id,
                                       attendance=attendance)
    return registration


def _years_before(day: date, years: int) -> date:
    return day.replace(year=day.year - years)


@pytest.fixture
async def hand_built(town, other_town):
    """The data set of the module docstring: every number below is known in advance.

    Class A (10 days ago), class B (5 days ago), help session H (3 days ago), a cancelled
    class X (in 10 days) and another municipality's class. Ages on the day of each session:
    - r80: 80th birthday on A's day: attends A and B -> one participant, 80歳以上;
    - r79: 80th birthday the day after A: attends A at 79 (70～79歳), visits H at 80;
    - r45 (birth year only): attends A (40～49歳) and holds a seat in X (not counted);
    - r72: no-show at A (70～79歳); r_unknown: attends A, no age known;
    - two anonymous visitors aged 85 at H;
    - follow-ups after A: r80's done (USES_INDEPENDENTLY), r45's done (NEEDS_MORE_HELP).
    """
    actor = town.coordinator
    class_a = await factories.session(actor, factories.at(days=-10, hour=10))
    class_b = await factories.session(actor, factories.at(days=-5, hour=10))
    help_h = await factories.session(actor, factories.at(days=-3, hour=13),
                                     kind=SessionKind.HELP_SESSION)
    future_x = await factories.session(actor, factories.at(days=10, hour=10))
    day_a = class_a.starts_at.astimezone(TOKYO).date()

    r80 = await _person(town, birth_date=_years_before(day_a, 80))
    r79 = await _person(town, birth_date=_years_before(day_a, 80) + timedelta(days=1))
    r45 = await _person(town, birth_year=day_a.year - 45)
    r72 = await _person(town, birth_year=day_a.year - 72)
    unknown = await _person(town)

    seat_r80 = await _attend(town, class_a, r80)
    await _attend(town, class_b, r80)
    await _attend(town, class_a, r79)
    seat_r45 = await _attend(town, class_a, r45)
    await _attend(town, class_a, r72, Attendance.NO_SHOW)
    await _attend(town, class_a, unknown)
    await scheduling.register(actor=actor, session_id=future_x.id, resident_id=r45.id)
    await scheduling.cancel_session(actor=actor, session_id=future_x.id)

    await scheduling.record_visit(actor=actor, data=scheduling.VisitInput(
        session_id=help_h.id, topic=CourseTopic.DEVICE_BASICS, outcome=VisitOutcome.RESOLVED,
        resident_id=r79.id))
    for _ in range(2):
        await scheduling.record_visit(actor=actor, data=scheduling.VisitInput(
            session_id=help_h.id, topic=CourseTopic.MESSAGING_SNS, outcome=VisitOutcome.RESOLVED,
            age_at_visit=85))

    for registration, outcome in ((seat_r80, FollowUpOutcome.USES_INDEPENDENTLY),
                                  (seat_r45, FollowUpOutcome.NEEDS_MORE_HELP)):
        follow_up = await FollowUp.get(registration_id=registration.id,
                                       purpose=FollowUpPurpose.AFTER_CLASS)
        await followups.complete_follow_up(actor=actor, follow_up_id=follow_up.id,
                                           outcome=outcome)

    elsewhere = await factories.session(other_town.coordinator, factories.at(days=-10, hour=10))
    stranger = await people.create_resident(actor=other_town.coordinator, fields=people.ResidentFields(
        family_name="他市", given_name="花子", birth_year=day_a.year - 85))
    await _attend(other_town, elsewhere, stranger)
    return town


def _rows(report) -> dict[str, object]:
    return {row.label: row for row in report.rows}


async def test_exact_numbers_per_band(hand_built):
    town = hand_built
    survey = await _survey(town)
    report = await reports.participation_report(actor=town.coordinator, survey_id=survey.id,
                                                metric=METRIC, report_filter=_period())
    rows = _rows(report)
    assert list(rows)[:8] == list(HIRATSUKA)
    expected = {  # participants, registrations, attendances, no-shows, visits, done, independent
        "80歳以上": (3, 2, 2, 0, 3, 1, 1),
        "70～79歳": (1, 2, 1, 1, 0, 0, 0),
        "40～49歳": (1, 1, 1, 0, 0, 1, 0),
        "年齢不明": (1, 1, 1, 0, 0, 0, 0),
    }
    for label, row in rows.items():
        got = (row.participants, row.registrations, row.attendances, row.no_shows, row.visits,
               row.follow_ups_done, row.uses_independently)
        assert got == expected.get(label, (0, 0, 0, 0, 0, 0, 0)), label
    assert report.unknown_age == 1
    total = report.total
    assert (total.participants, total.registrations, total.attendances, total.no_shows,
            total.visits, total.follow_ups_done, total.uses_independently) == (6, 6, 5, 1, 3, 2, 1)
    assert rows["70～79歳"].no_show_rate == 0.5

    total_need = sum(NEED.values())
    for label, (participants, *_) in expected.items():
        if label == "年齢不明":
            continue
        row = rows[label]
        assert row.participant_share == round(participants / 5, 4)
        assert row.need_share == round(NEED[label] / total_need, 4)
        # from the unrounded shares, rounded once
        assert row.representation == round((participants / 5) / (NEED[label] / total_need), 4)
    assert report.weighting == "respondents"


async def test_the_band_edge_is_the_birthday_on_the_session_day(hand_built):
    """r80 turns 80 on class A's day (80歳以上); r79 turns 80 the day after (70～79歳)."""
    survey = await _survey(hand_built)
    only_a_day = _today() - timedelta(days=10)
    report = await reports.participation_report(
        actor=hand_built.coordinator, survey_id=survey.id, metric=METRIC,
        report_filter=ReportFilter(date_from=only_a_day, date_to=only_a_day))
    rows = _rows(report)
    assert rows["80歳以上"].attendances == 1 and rows["70～79歳"].attendances == 1


async def test_filters_narrow_the_sessions(hand_built):
    town = hand_built
    survey = await _survey(town)
    classes_only = await reports.participation_report(
        actor=town.coordinator, survey_id=survey.id, metric=METRIC,
        report_filter=ReportFilter(_period().date_from, _period().date_to, kinds=["CLASS"]))
    assert classes_only.total.visits == 0 and classes_only.total.participants == 4
    nowhere = await reports.participation_report(
        actor=town.coordinator, survey_id=survey.id, metric=METRIC,
        report_filter=ReportFilter(_period().date_from, _period().date_to, districts=["豊田"]))
    assert nowhere.total.participants == 0 and nowhere.total.registrations == 0


async def test_the_hiratsuka_worked_example_gives_index_one_in_every_band(town):
    """One participant per non-user in the survey sample: every band reached in proportion."""
    survey = await _survey(town)
    session = await factories.session(town.coordinator, factories.at(days=-2, hour=13),
                                      kind=SessionKind.HELP_SESSION)
    ages = {"16～19歳": 17, "20～29歳": 25, "30～39歳": 35, "40～49歳": 45, "50～59歳": 55,
            "60～69歳": 65, "70～79歳": 75, "80歳以上": 85}
    await Visit.bulk_create([
        Visit(municipality_id=town.municipality.id, session_id=session.id, age_at_visit=age,
              topic=CourseTopic.DEVICE_BASICS, outcome=VisitOutcome.RESOLVED)
        for band, age in ages.items() for _ in range(round(NEED[band]))])
    report = await reports.participation_report(actor=town.coordinator, survey_id=survey.id,
                                                metric=METRIC, report_filter=_period())
    for row in report.rows:
        assert row.representation == pytest.approx(1.0, abs=0.03), row.label
    assert report.total.participants == sum(round(v) for v in NEED.values())


async def test_population_figures_weight_the_need_when_they_cover_every_band(town):
    survey = await _survey(town)
    bands = await SurveyBand.filter(survey_id=survey.id).order_by("position")
    for band in bands:
        await PopulationFigure.create(municipality_id=town.municipality.id, as_of=date(2020, 10, 1),
                                      min_age=band.min_age, max_age=band.max_age,
                                      population=1000)
    report = await reports.participation_report(actor=town.coordinator, survey_id=survey.id,
                                                metric=METRIC, report_filter=_period())
    assert report.weighting == "population"
    non_use = {label: 100 - using for label, (_, using) in HIRATSUKA.items()}
    rows = _rows(report)
    assert rows["80歳以上"].need_share == round(non_use["80歳以上"] / sum(non_use.values()), 4)


async def test_the_index_comes_from_the_unrounded_shares_in_the_api_and_the_files(town, gql, client):
    """1 of 10 participants is 16～19 (a share of 0.1), whose share of need is 0.99 / 393.131
    = 0.2518 %: the index is 0.1 / 0.002518... = 39.71, not 0.1 / 0.0025 = 40.0 (the quotient
    of two shares already rounded to four places). Each published number is rounded once,
    from the exact shares: the field, the CSV cell and the chart's labels alike."""
    from fractions import Fraction

    survey = await _survey(town)
    session = await factories.session(town.coordinator, factories.at(days=-2, hour=13),
                                      kind=SessionKind.HELP_SESSION)
    await Visit.bulk_create([
        Visit(municipality_id=town.municipality.id, session_id=session.id, age_at_visit=age,
              topic=CourseTopic.DEVICE_BASICS, outcome=VisitOutcome.RESOLVED)
        for age in (17, *[85] * 9)])
    need = {band: Fraction(n) * (100 - Fraction(str(using))) / 100
            for band, (n, using) in HIRATSUKA.items()}
    need_share = need["16～19歳"] / sum(need.values())
    exact_index = Fraction(1, 10) / need_share
    assert round(float(exact_index), 2) == 39.71

    data = await gql().data("""query ($s: ID!, $f: ParticipationFilter!) {
        participationReport(surveyId: $s, metric: "internet_use.using", filter: $f) {
          csvUrl chartUrl rows { band { label } participantShare baselineNeedShare
          representationIndex } } }""",
                            {"s": to_global_id("Survey", survey.id),
                             "f": {"from": _period().date_from.isoformat(),
                                   "to": _period().date_to.isoformat()}})
    report = data["participationReport"]
    row = next(r for r in report["rows"] if r["band"]["label"] == "16～19歳")
    assert row["participantShare"] == 0.1
    assert row["baselineNeedShare"] == round(float(need_share), 4) == 0.0025
    assert row["representationIndex"] == round(float(exact_index), 4)

    auth = {"Authorization": f"Bearer {town.tokens[Role.COORDINATOR]}"}
    response = await client.get(report["csvUrl"].split("127.0.0.1:8000", 1)[1], headers=auth)
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header, cells = lines[1], {line[0]: line for line in lines[2:] if line}["16～19歳"]
    assert cells[header.index("代表性指数")] == f"{float(exact_index):.4f}"
    assert cells[header.index("支援が必要な人の割合")] == "0.0025"

    svg = await client.get(report["chartUrl"].split("127.0.0.1:8000", 1)[1], headers=auth)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    band = next(g for g in ET.fromstring(svg.content).findall(".//svg:g[@class='band']", ns)
                if g.get("data-label") == "16～19歳")
    # 0.2518 % shows as 0.3 %, not as 0.2 % (0.0025 -> 0.25 -> 0.2, rounded twice)
    assert band.find("svg:rect[@class='need']/svg:title", ns).text == "16～19歳 0.3%"
    assert band.find("svg:rect[@class='participants']/svg:title", ns).text == "16～19歳 10.0%"


# --- planners ------------------------------------------------------------------------------

async def test_planners_never_see_a_cell_of_one_to_four(hand_built):
    """The planner's counts are perturbed (cell key method, at most 2 off) before the small
    ones are hidden: a true 1 may show as 0, never as 1-4."""
    survey = await _survey(hand_built)
    report = await reports.participation_report(actor=hand_built.planner, survey_id=survey.id,
                                                metric=METRIC, report_filter=_period())
    for row in [*report.rows, report.total]:
        for name in reports.COUNT_FIELDS:
            value = getattr(row, name)
            assert value is None or value == 0 or value >= 5, (row.label, name, value)
        if any(getattr(row, name) is None for name in reports.COUNT_FIELDS):
            assert row.suppressed
        if row.participants is None:
            assert row.participant_share is None and row.representation is None
    # every row with people in it has something hidden (true participants 3, 1, 1, 1)
    assert {r.label for r in report.rows if r.suppressed} == {"80歳以上", "70～79歳", "40～49歳",
                                                               "年齢不明"}
    assert report.unknown_age in (None, 0)  # one person: 0-3 after the noise, 1-3 hidden
    assert report.total.suppressed
    assert report.total.participants is None or 5 <= report.total.participants <= 6 + 2
    staff = await reports.participation_report(actor=hand_built.coordinator, survey_id=survey.id,
                                               metric=METRIC, report_filter=_period())
    assert not any(r.suppressed for r in staff.rows)


async def test_a_single_hidden_cell_takes_the_next_smallest_with_it(town):
    """7 + 6 + 2 = 15: hiding only the 2 would let anyone compute it from the total."""
    survey = await _survey(town)
    session = await factories.session(town.coordinator, factories.at(days=-2, hour=13),
                                      kind=SessionKind.HELP_SESSION)
    await Visit.bulk_create([
        Visit(municipality_id=town.municipality.id, session_id=session.id, age_at_visit=age,
              topic=CourseTopic.DEVICE_BASICS, outcome=VisitOutcome.RESOLVED)
        for age, count in ((85, 7), (75, 6), (65, 2)) for _ in range(count)])
    report = await reports.participation_report(actor=town.planner, survey_id=survey.id,
                                                metric=METRIC, report_filter=_period())
    rows = _rows(report)
    assert rows["60～69歳"].suppressed and rows["70～79歳"].suppressed
    assert not rows["80歳以上"].suppressed and abs(rows["80歳以上"].participants - 7) <= 2
    assert abs(report.total.participants - 15) <= 2  # perturbed on its own (cell key method)


async def test_a_hidden_age_unknown_count_cannot_be_worked_out_from_the_shares(town):
    """The shares reveal how many participants have a known age (here 7 + 8 = 15); with the
    total visible, the 2 of unknown age would follow from it. So the total is hidden too."""
    survey = await _survey(town)
    session = await factories.session(town.coordinator, factories.at(days=-2, hour=13),
                                      kind=SessionKind.HELP_SESSION)
    await Visit.bulk_create([
        Visit(municipality_id=town.municipality.id, session_id=session.id, age_at_visit=age,
              topic=CourseTopic.DEVICE_BASICS, outcome=VisitOutcome.RESOLVED)
        for age, count in ((85, 7), (75, 8), (None, 2)) for _ in range(count)])
    report = await reports.participation_report(actor=town.planner, survey_id=survey.id,
                                                metric=METRIC, report_filter=_period())
    rows = _rows(report)
    assert rows["80歳以上"].participants == 7 and rows["80歳以上"].participant_share == round(7 / 15, 4)
    assert rows["年齢不明"].suppressed and report.unknown_age is None
    assert report.total.participants is None
    # visits: the total stays, but the unknown row's 2 never stands alone among hidden cells
    assert sum(1 for r in report.rows if r.visits is None) >= 2
    staff = await reports.participation_report(actor=town.coordinator, survey_id=survey.id,
                                               metric=METRIC, report_filter=_period())
    assert staff.total.participants == 17 and staff.unknown_age == 2


# --- files ---------------------------------------------------------------------------------

async def test_csv_and_svg_for_the_same_query(hand_built, gql, client):
    survey = await _survey(hand_built)
    data = await gql().data("""query ($s: ID!, $f: ParticipationFilter!) {
        participationReport(surveyId: $s, metric: "internet_use.using", filter: $f) {
          csvUrl chartUrl total { uniqueParticipants } rows { band { label } uniqueParticipants } } }""",
                            {"s": to_global_id("Survey", survey.id),
                             "f": {"from": _period().date_from.isoformat(),
                                   "to": _period().date_to.isoformat()}})
    report = data["participationReport"]
    assert report["total"]["uniqueParticipants"] == 6
    auth = {"Authorization": f"Bearer {hand_built.tokens[Role.COORDINATOR]}"}
    csv_path = report["csvUrl"].split("127.0.0.1:8000", 1)[1]
    response = await client.get(csv_path, headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # BOM
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert lines[1][0] == "年齢区分" and "参加者数（実人数）" in lines[1]
    by_label = {line[0]: line for line in lines[2:] if line}
    assert by_label["80歳以上"][4] == "3" and by_label["合計"][4] == "6"

    svg = await client.get(report["chartUrl"].split("127.0.0.1:8000", 1)[1], headers=auth)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.content)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    groups = root.findall(".//svg:g[@class='band']", ns)
    assert [g.get("data-label") for g in groups] == list(HIRATSUKA)
    for group in groups:
        assert len(group.findall("svg:rect[@class='participants']", ns)) == 1
        assert len(group.findall("svg:rect[@class='need']", ns)) == 1
    assert "平塚市" in root.find("svg:title", ns).text

    assert (await client.get(csv_path)).status_code == 401
    supporter_like = await client.get(csv_path.replace("from=", "from=x"), headers=auth)
    assert supporter_like.status_code == 400


async def test_the_files_are_suppressed_for_planners_too(hand_built, client):
    survey = await _survey(hand_built)
    period = _period()
    path = (f"/reports/participation.csv?surveyId={to_global_id('Survey', survey.id)}"
            f"&metric={METRIC}&from={period.date_from}&to={period.date_to}")
    response = await client.get(path, headers={
        "Authorization": f"Bearer {hand_built.tokens[Role.PLANNER]}"})
    rows = {line[0]: line for line in csv.reader(io.StringIO(response.content.decode("utf-8-sig")))
            if line}
    assert rows["80歳以上"][4] == "" and rows["80歳以上"][-1] == "秘匿"
    svg = await client.get(path.replace(".csv", ".svg"), headers={
        "Authorization": f"Bearer {hand_built.tokens[Role.PLANNER]}"})
    text = svg.content.decode("utf-8")
    assert "None" not in text
    # six people, perturbed (at most 2 off): hidden, or the same 5-8 as the CSV's total
    shown = re.search(r"参加者 (秘匿|(\d+)人)", text)
    assert shown is not None
    if shown.group(2) is None:
        assert rows["合計"][4] == ""
    else:
        assert 5 <= int(shown.group(2)) <= 8 and rows["合計"][4] == shown.group(2)
    ET.fromstring(svg.content)


async def test_another_municipalitys_survey_is_not_found(town, other_town, gql):
    await load_reference_data()
    yaizu = await Survey.get(municipality_id=other_town.municipality.id)
    body = await gql()("""query ($s: ID!) { participationReport(surveyId: $s, metric: "course_wish.sns",
        filter: {from: "2026-01-01", to: "2026-01-31"}) { metric } }""",
                       {"s": to_global_id("Survey", yaizu.id)})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


# --- surveys -------------------------------------------------------------------------------

async def test_seeded_surveys_are_listed_with_bands_and_metrics(town, gql):
    await load_reference_data()
    data = await gql(Role.PLANNER).data(
        "{ surveys { title year sampleSize source metrics bands { label minAge maxAge respondents } } }")
    [survey] = data["surveys"]
    assert survey["year"] == 2020 and survey["sampleSize"] == 1699
    assert "internet_use.using" in survey["metrics"]
    assert survey["bands"][-1] == {"label": "80歳以上", "minAge": 80, "maxAge": None,
                                   "respondents": 148}


GOOD = """
municipality: "142034"
key: test-survey
title: テスト調査
year: 2024
metric_groups:
  - key: use
    exhaustive: true
    metrics: [{key: using, need: complement}, {key: not_using}]
bands:
  - {label: 60代, min_age: 60, max_age: 69, respondents: 10, values: {use.using: 60, use.not_using: 40}}
  - {label: 70歳以上, min_age: 70, max_age: null, respondents: 10, values: {use.using: 30, use.not_using: 70}}
"""


@pytest.mark.parametrize(("change", "expected"), [
    (("min_age: 70, max_age: null", "min_age: 65, max_age: null"), "重なっています"),
    (("min_age: 70, max_age: null", "min_age: 50, max_age: 55"), "若い順"),
    (("use.using: 30, use.not_using: 70", "use.using: 130, use.not_using: 70"), "0〜100"),
    (("use.using: 30, use.not_using: 70", "use.using: 30, use.not_using: 60"), "合計が 90.0%"),
    (('municipality: "142034"', 'municipality: "999999"'), "999999"),
    (("use.using: 30, use.not_using: 70", "use.using: 30, use.maybe: 70"), "use.maybe"),
    (("year: 2024", "year: soon"), "year"),
])
async def test_malformed_surveys_are_refused_whole_with_the_reason(town, change, expected):
    before = await Survey.all().count()
    document = GOOD.replace(*change)
    with pytest.raises(DomainError) as caught:
        await reports.import_survey(actor=town.admin, document_text=document)
    assert expected in caught.value.message
    assert await Survey.all().count() == before
    assert await SurveyBand.all().count() == 0


async def test_import_survey_as_admin_and_again_changes_nothing(town, gql):
    query = """mutation ($d: String!) { importSurvey(input: {document: $d}) {
        survey { key bands { label } metrics } errors { code message field } } }"""
    data = await gql(Role.ADMIN).data(query, {"d": GOOD})
    assert data["importSurvey"]["survey"]["metrics"] == ["use.using", "use.not_using"]
    first = await SurveyBand.all().values_list("id", flat=True)
    await gql(Role.ADMIN).data(query, {"d": GOOD})
    assert await SurveyBand.all().values_list("id", flat=True) == first
    coordinator = await gql(Role.COORDINATOR).data(query, {"d": GOOD})
    assert coordinator["importSurvey"]["errors"][0]["code"] == "FORBIDDEN"
    broken = await gql(Role.ADMIN).data(query, {"d": "bands: [1, 2"})
    assert broken["importSurvey"]["errors"][0]["code"] == "INVALID_SURVEY"
    assert broken["importSurvey"]["errors"][0]["field"] == ["input", "document"]


async def test_json_documents_are_accepted_too(town):
    import json

    import yaml

    survey = await reports.import_survey(actor=town.admin,
                                         document_text=json.dumps(yaml.safe_load(GOOD)))
    assert survey.key == "test-survey"


def test_the_worked_example_of_survey_baselines_md():
    """Non-users in the sample: 70-79 about 188, 80+ about 117, about 393 in all."""
    assert round(NEED["70～79歳"]) == 188 and round(NEED["80歳以上"]) == 117
    assert round(sum(NEED.values())) == 393


# --- the programme's activity report and the course-wish comparison --------------------------

async def test_activity_report_per_month_and_venue(town, gql, client):
    actor = town.coordinator
    venue = await factories.venue(actor, name="駅前デジタルステーション")
    lead = await factories.supporter(actor, certified=True)
    helper = await factories.supporter(actor, certified=False)
    basic = await factories.session(actor, factories.at(days=-2, hour=9), venue_obj=venue)
    single = await factories.session(actor, factories.at(days=-2, hour=11), venue_obj=venue,
                                     kind=SessionKind.HELP_SESSION)
    empty = await factories.session(actor, factories.at(days=-2, hour=14), venue_obj=venue)
    cancelled = await factories.session(actor, factories.at(days=3, hour=9), venue_obj=venue)
    await scheduling.cancel_session(actor=actor, session_id=cancelled.id)
    # Staffing of past sessions as the paper records show it, entered afterwards.
    for session, supporter, role in ((basic, lead, AssignmentRole.LEAD),
                                     (single, lead, AssignmentRole.LEAD),
                                     (empty, lead, AssignmentRole.LEAD),
                                     (basic, helper, AssignmentRole.ASSISTANT)):
        await scheduling.assign_supporter(actor=actor, session_id=session.id,
                                          supporter_id=supporter.id, role=role)
    for age in (70, 81):
        await _attend(town, basic, await _person(town, birth_year=_today().year - age))
    await scheduling.record_visit(actor=actor, data=scheduling.VisitInput(
        session_id=single.id, topic=CourseTopic.DEVICE_BASICS, outcome=VisitOutcome.RESOLVED,
        age_at_visit=77))

    day = _today() - timedelta(days=2)
    rows, total = await reports.activity_report(actor=town.coordinator,
                                                date_from=day - timedelta(days=1),
                                                date_to=day + timedelta(days=10))
    [row] = rows
    assert row.month == basic.starts_at.astimezone(TOKYO).strftime("%Y-%m")
    assert row.venue_name == "駅前デジタルステーション"
    assert (row.sessions, row.classes, row.help_sessions) == (3, 2, 1)
    assert (row.attendees, row.attendees_per_session) == (3, 1.0)
    assert (row.single_attendee_sessions, row.empty_sessions) == (1, 1)
    assert (row.basic_classes, row.applied_classes) == (2, 0)
    assert (row.supporters, row.certified_supporters, row.supporters_per_session) == (4, 3, 1.33)
    assert total.sessions == 3

    data = await gql(Role.PLANNER).data("""query ($f: Date!, $t: Date!) {
        activityReport(from: $f, to: $t) { csvUrl rows { month venueName sessions attendees
        attendeesPerSession } total { sessions attendees } } }""",
                                        {"f": (day - timedelta(days=1)).isoformat(),
                                         "t": (day + timedelta(days=10)).isoformat()})
    assert data["activityReport"]["rows"][0]["sessions"] == 3
    # three people: a planner sees the sessions but not so small an attendee count
    assert data["activityReport"]["rows"][0]["attendees"] is None
    assert data["activityReport"]["total"]["attendees"] is None
    path = data["activityReport"]["csvUrl"].split("127.0.0.1:8000", 1)[1]
    response = await client.get(path, headers={"Authorization": f"Bearer {town.tokens[Role.PLANNER]}"})
    assert response.status_code == 200 and response.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert lines[1][:3] == ["月", "会場", "開催回数（コマ）"]
    assert lines[2][1:4] == ["駅前デジタルステーション", "3", "2"]
    assert lines[2][5] == ""  # attendees hidden for the planner


async def test_what_each_band_asked_for_against_what_it_attended(other_town, town):
    """焼津市: 70代以上 asked most for device operation (38.5 %); a 75-year-old attends a basic
    device class and manages on their own afterwards."""
    await load_reference_data()
    actor = other_town.coordinator
    survey = await Survey.get(municipality_id=other_town.municipality.id, key="yaizu-2021-course-wish")
    session = await factories.session(actor, factories.at(days=-4, hour=10))
    resident = await people.create_resident(actor=actor, fields=people.ResidentFields(
        family_name="焼津", given_name="一郎", birth_year=_today().year - 75))
    registration = await _attend(other_town, session, resident)
    follow_up = await FollowUp.get(registration_id=registration.id)
    await followups.complete_follow_up(actor=actor, follow_up_id=follow_up.id,
                                       outcome=FollowUpOutcome.USES_INDEPENDENTLY)
    rows = await reports.topic_report(actor=actor, survey_id=survey.id,
                                      date_from=_today() - timedelta(days=30), date_to=_today())
    cell = next(r for r in rows if r.band == "70代以上" and r.topic == "DEVICE_BASICS")
    assert cell.wished_percent == 38.5
    assert (cell.attendances, cell.follow_ups_done, cell.uses_independently) == (1, 1, 1)
    assert cell.attendance_share == 1.0
    sns = next(r for r in rows if r.band == "70代以上" and r.topic == "MESSAGING_SNS")
    assert (sns.wished_percent, sns.attendances) == (12.2, 0)
    unknown = next(r for r in rows if r.band == "10代" and r.topic == "DEVICE_BASICS")
    assert unknown.wished_percent is None  # not in the survey's text: unknown, not zero
    planner = await reports.topic_report(actor=other_town.planner, survey_id=survey.id,
                                         date_from=_today() - timedelta(days=30), date_to=_today())
    hidden = next(r for r in planner if r.band == "70代以上" and r.topic == "DEVICE_BASICS")
    assert hidden.suppressed and hidden.attendances is None


# --- found in review: nothing small can be worked out ---------------------------------------

async def _visits(town, ages: dict[int | None, int]) -> None:
    session = await factories.session(town.coordinator, factories.at(days=-2, hour=13),
                                      kind=SessionKind.HELP_SESSION)
    await Visit.bulk_create([
        Visit(municipality_id=town.municipality.id, session_id=session.id, age_at_visit=age,
              topic=CourseTopic.DEVICE_BASICS, outcome=VisitOutcome.RESOLVED)
        for age, count in ages.items() for _ in range(count)])


async def test_a_lone_small_band_hides_the_total(town):
    survey = await _survey(town)
    await _visits(town, {85: 3})
    report = await reports.participation_report(actor=town.planner, survey_id=survey.id,
                                                metric=METRIC, report_filter=_period())
    assert _rows(report)["80歳以上"].suppressed
    assert report.total.participants is None and report.total.visits is None


async def test_small_counts_other_than_participants_are_hidden_too(town):
    """Two residents aged 83 registered for a class still to come: no participant yet, but a
    planner must not learn "two 80+ people from this district signed up"."""
    survey = await _survey(town)
    session = await factories.session(town.coordinator, factories.at(days=3, hour=10))
    for _ in range(2):
        resident = await _person(town, birth_year=_today().year - 83, district="大神")
        await scheduling.register(actor=town.coordinator, session_id=session.id,
                                  resident_id=resident.id)
    report = await reports.participation_report(
        actor=town.planner, survey_id=survey.id, metric=METRIC,
        report_filter=ReportFilter(_period().date_from, _period().date_to, districts=["大神"]))
    eighty = _rows(report)["80歳以上"]
    assert eighty.registrations is None and eighty.suppressed
    assert report.total.registrations is None


async def test_topic_shares_do_not_give_a_hidden_cell_away(other_town):
    await load_reference_data()
    actor = other_town.coordinator
    survey = await Survey.get(municipality_id=other_town.municipality.id)
    basic = await factories.session(actor, factories.at(days=-4, hour=10), capacity=20)
    security = await scheduling.create_course(actor=actor, title="詐欺対策", duration_minutes=60,
                                              topic=CourseTopic.SECURITY)
    venue = await factories.venue(actor)
    starts = factories.at(days=-3, hour=10)
    [guarded] = await scheduling.schedule_sessions(
        actor=actor, kind=SessionKind.CLASS, venue_id=venue.id, course_id=security.id,
        starts_at=starts, ends_at=starts + timedelta(hours=1), capacity=10)
    for session, count in ((basic, 6), (guarded, 2)):
        for _ in range(count):
            resident = await people.create_resident(actor=actor, fields=people.ResidentFields(
                family_name="焼津", given_name=f"花子{next(_PEOPLE)}", birth_year=_today().year - 75))
            await _attend(other_town, session, resident)
    rows = await reports.topic_report(actor=other_town.planner, survey_id=survey.id,
                                      date_from=_today() - timedelta(days=30), date_to=_today())
    band = [r for r in rows if r.band == "70代以上"]
    assert all(r.attendance_share is None for r in band)
    hidden = [r for r in band if r.attendances is None]
    assert len(hidden) >= 2  # the 2 never stands alone
    staff = await reports.topic_report(actor=actor, survey_id=survey.id,
                                       date_from=_today() - timedelta(days=30), date_to=_today())
    shares = {r.topic: r.attendance_share for r in staff if r.band == "70代以上" and r.attendances}
    assert shares == {"DEVICE_BASICS": 0.75, "SECURITY": 0.25}


async def test_files_are_safe_to_open(town, client):
    """A label that looks like a formula stays text in a spreadsheet; quotes stay in the SVG
    attribute."""
    from divide_support.reports import render

    survey = await _survey(town)
    await SurveyBand.filter(survey_id=survey.id, position=7).update(label='=HYPERLINK("x")"80')
    report = await reports.participation_report(actor=town.coordinator, survey_id=survey.id,
                                                metric=METRIC, report_filter=_period())
    lines = list(csv.reader(io.StringIO(render.to_csv(report).decode("utf-8-sig"))))
    assert any(line and line[0] == "'=HYPERLINK(\"x\")\"80" for line in lines)
    root = ET.fromstring(render.to_svg(report))
    labels = [g.get("data-label") for g in root.iter("{http://www.w3.org/2000/svg}g")]
    assert '=HYPERLINK("x")"80' in labels
