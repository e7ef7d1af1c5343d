"""The planners' pages: the participation report against the survey with its chart and CSV,
the activity report; small cells hidden for planners exactly as in the API."""

from __future__ import annotations

import csv
import io

import factories
import pytest
from console_helpers import text_of

from divide_support.people import service as people
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import Attendance, RegistrationSource
from divide_support.seed import load_reference_data


@pytest.fixture
async def two_classes(town):
    """Two past classes: 6 residents in their 70s attend one, 2 in their 80s the other."""
    await load_reference_data()
    actor = town.coordinator
    today = factories.at().date()
    for index, (age, count) in enumerate(((75, 6), (85, 2))):
        session = await factories.session(actor, factories.at(days=-3 - index, hour=10))
        for n in range(count):
            person = await people.create_resident(actor=actor, fields=people.ResidentFields(
                family_name="市民", given_name=f"{age}の{n}", kana=f"シミン {age}ノ{n}",
                birth_year=today.year - age))
            registration = await scheduling.register(
                actor=actor, session_id=session.id, resident_id=person.id,
                source=RegistrationSource.WALK_IN)
            await scheduling.record_attendance(actor=actor, registration_id=registration.id,
                                               attendance=Attendance.ATTENDED)


def _row(page: str, band: str) -> str:
    text = text_of(page)
    start = text.index(band)
    return text[start:start + 80]


async def test_a_planner_sees_the_report_with_its_chart_and_hidden_small_cells(
        console, town, two_classes):
    await console.login("hiratsuka-planner@example.jp")
    response = await console.get("/planning/participation")
    assert response.status_code == 200, response.text
    text = console.text()
    assert "参加状況（年代別）" in text and "市民意識調査" in text
    # 2 people in their 80s: hidden, never shown as a number or a zero
    assert _row(console.page, "80歳以上").split()[1] == "―"
    assert "5人未満のため非表示" in text
    chart = console.page.split('<img src="', 1)[1].split('"', 1)[0]
    assert chart.startswith("/reports/participation.svg?")
    svg = await console.client.get(chart.replace("&amp;", "&"))
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    link = console.page.split('download', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
    download = await console.client.get(link.replace("&amp;", "&"))
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    eighty = next(row for row in rows if row and row[0] == "80歳以上")
    assert "2" not in eighty[1:3]  # hidden in the file as on the page


async def test_a_coordinator_sees_exact_counts(console, town, two_classes):
    await console.login("hiratsuka-coordinator@example.jp")
    await console.get("/planning/participation")
    assert _row(console.page, "80歳以上").split()[1] == "2"
    assert _row(console.page, "70～79歳").split()[1] == "6"


async def test_the_filters_narrow_the_report_and_a_bad_date_is_shown_at_its_field(
        console, town, two_classes):
    await console.login("hiratsuka-coordinator@example.jp")
    await console.get("/planning/participation?kinds=HELP_SESSION")
    assert _row(console.page, "70～79歳").split()[1] == "0"
    assert 'value="HELP_SESSION" checked' in console.page
    await console.get("/planning/participation?from=2026-13-01")
    assert "開始日は 2026-04-01 の形で入力してください。" in console.text()


async def test_the_activity_report_per_month_and_venue(console, town, two_classes):
    await console.login("hiratsuka-planner@example.jp")
    response = await console.get("/planning/activity")
    assert response.status_code == 200
    text = console.text()
    assert "活動実績" in text and "合計" in text and "CSVでダウンロード" in text


async def test_the_report_files_need_a_signed_in_browser(console, town, two_classes):
    await console.login("hiratsuka-planner@example.jp")
    await console.get("/planning/participation")
    chart = console.page.split('<img src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    await console.post("/logout")
    assert (await console.client.get(chart)).status_code == 401


async def test_a_supporter_may_not_open_the_reports(console, town):
    await factories.supporter_login(town)
    await console.login("sato@example.jp")
    response = await console.get("/planning/participation")
    assert response.status_code == 403
    assert "権限がありません" in console.text()
