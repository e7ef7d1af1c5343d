"""The printed pages: the A4 monthly schedule per venue and a resident's A5 confirmation slip,
fetched as staff would (the GraphQL URL field, then the file with the bearer token), and read
back with poppler (pdffonts, pdftotext, pdftoppm) and a QR decoder, as a printer would."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import zxingcpp
from factories import TOKYO, course, resident, session, venue
from helpers_scheduling import audit_entries
from PIL import Image

from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import CourseTopic, SessionKind

# CI requires poppler (DIVIDE_SUPPORT_REQUIRE_POPPLER=1): there a missing tool fails the tests.
pytestmark = pytest.mark.skipif(
    shutil.which("pdftotext") is None and not os.environ.get("DIVIDE_SUPPORT_REQUIRE_POPPLER"),
    reason="poppler-utils (pdftotext, pdffonts, pdftoppm) missing")


def _next_month() -> date:
    today = datetime.now(TOKYO).date()
    return (today.replace(day=1) + timedelta(days=32)).replace(day=1)


def _local(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=TOKYO).astimezone(UTC)


def _run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def _pdf_text(path: Path) -> str:
    return _run("pdftotext", "-layout", str(path), "-")


def _embedded_fonts(path: Path) -> list[tuple[str, str]]:
    """(name, emb) per font of the PDF, from pdffonts' table."""
    lines = _run("pdffonts", str(path)).splitlines()[2:]
    return [(line.split()[0], line.split()[-5]) for line in lines]


def _word_heights(path: Path) -> list[float]:
    html = _run("pdftotext", "-bbox", str(path), "-")
    heights = []
    for line in html.splitlines():
        if "<word" in line:
            attrs = dict(part.split("=", 1) for part in line.strip()[6:].split(">")[0].split())
            heights.append(float(attrs["yMax"].strip('"')) - float(attrs["yMin"].strip('"')))
    return heights


async def _fetch(client, url: str, token: str | None, tmp_path: Path, name: str):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.get(url.split("127.0.0.1:8000", 1)[1], headers=headers)
    path = tmp_path / name
    path.write_bytes(response.content)
    return response, path


@pytest.fixture
async def month_at_a_centre(town, other_town):
    month = _next_month()
    centre = await venue(town.coordinator, name="中央公民館")
    elsewhere = await venue(town.coordinator, name="北部公民館")
    small = await session(town.coordinator, _local(month.replace(day=8), 10), capacity=1,
                          venue_obj=centre)
    wide = await session(town.coordinator, _local(month.replace(day=15), 14), capacity=10,
                         venue_obj=centre)
    drop_in = await session(town.coordinator, _local(month.replace(day=22), 13),
                            capacity=None, kind=SessionKind.HELP_SESSION, venue_obj=centre)
    cancelled = await session(town.coordinator, _local(month.replace(day=9), 10),
                              venue_obj=centre)
    await scheduling.cancel_session(actor=town.coordinator, session_id=cancelled.id)
    await session(town.coordinator, _local(month.replace(day=10), 10), venue_obj=elsewhere)
    await session(town.coordinator, _local(month.replace(day=8), 10) + timedelta(days=40),
                  venue_obj=centre)
    first = await resident(town.coordinator, "山田", "花子")
    second = await resident(town.coordinator, "鈴木", "一郎")
    seat = await scheduling.register(actor=town.coordinator, session_id=small.id,
                                     resident_id=first.id)
    waiting = await scheduling.register(actor=town.coordinator, session_id=small.id,
                                        resident_id=second.id)
    await scheduling.register(actor=town.coordinator, session_id=wide.id, resident_id=first.id)
    return month, centre, small, wide, drop_in, seat, waiting


async def test_the_monthly_schedule_lists_the_venues_month_in_large_embedded_print(
        month_at_a_centre, town, gql, client, tmp_path):
    month, centre, small, wide, drop_in, *_ = month_at_a_centre
    data = await gql().data("query ($id: ID!, $m: String!) { node(id: $id) { ... on Venue {"
                            " monthlyScheduleUrl(month: $m) } } }",
                            {"id": to_global_id("Venue", centre.id), "m": f"{month:%Y-%m}"})
    url = data["node"]["monthlyScheduleUrl"]
    assert url.endswith(f"month={month:%Y-%m}")
    response, pdf = await _fetch(client, url, town.tokens[Role.COORDINATOR], tmp_path, "m.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "private, no-store"

    assert "595.276 x 841.89 pts (A4)" in _run("pdfinfo", str(pdf))
    fonts = _embedded_fonts(pdf)
    assert fonts and all(emb == "yes" for _, emb in fonts), fonts
    assert all("IPAexGothic" in name for name, _ in fonts), fonts

    text = _pdf_text(pdf)
    assert f"中央公民館 {month.year}年{month.month}月の予定" in text
    weekdays = "月火水木金土日"
    for moment, hours in ((small.starts_at, "10:00〜12:00"), (wide.starts_at, "14:00〜16:00"),
                          (drop_in.starts_at, "13:00〜15:00")):
        day = moment.astimezone(TOKYO).date()
        assert f"{day.month}月{day.day}日({weekdays[day.weekday()]}) {hours}" in text
    assert f"スマホ教室「{small.title}」" in text
    assert "持ち物：スマートフォン、充電器" in text
    assert "満席です。キャンセル待ちを受け付けます" in text  # 1 seat, taken
    assert "残り 9 席" in text
    assert "予約はいりません。当日、会場へお越しください。" in text
    assert "平塚市 電話 0463-21-1111" in text
    # not the cancelled session, another venue's or next month's
    assert text.count("スマホ教室「") == 2 and "北部公民館" not in text
    assert f"{month.month}月9日" not in text
    # large print: every word at least 14 pt tall
    assert min(_word_heights(pdf)) >= 14 - 0.5

    _run("pdftoppm", "-r", "50", "-png", "-singlefile", str(pdf), str(tmp_path / "page"))
    page = Image.open(tmp_path / "page.png").convert("L")
    assert sum(page.histogram()[:128]) > 1000  # ink on the page


async def test_a_month_without_sessions_says_so(town, gql, client, tmp_path):
    empty = await venue(town.coordinator, name="南部公民館")
    data = await gql().data("query ($id: ID!) { node(id: $id) { ... on Venue {"
                            " monthlyScheduleUrl(month: \"2031-02\") } } }",
                            {"id": to_global_id("Venue", empty.id)})
    response, pdf = await _fetch(client, data["node"]["monthlyScheduleUrl"],
                                 town.tokens[Role.ADMIN], tmp_path, "e.pdf")
    assert response.status_code == 200
    assert "この月の予定はありません。" in _pdf_text(pdf)


async def test_the_slip_has_the_seat_and_a_qr_code_of_the_invite(
        month_at_a_centre, town, gql, client, tmp_path):
    _, _, small, _, _, seat, waiting = month_at_a_centre
    data = await gql().data("query ($id: ID!) { node(id: $id) { ... on Registration {"
                            " inviteUrl confirmationSlipUrl } } }",
                            {"id": to_global_id("Registration", seat.id)})
    invite = data["node"]["inviteUrl"]
    response, pdf = await _fetch(client, data["node"]["confirmationSlipUrl"],
                                 town.tokens[Role.COORDINATOR], tmp_path, "s.pdf")
    assert response.status_code == 200, response.text
    assert "419.528 x 595.276 pts" in _run("pdfinfo", str(pdf))
    assert all(emb == "yes" for _, emb in _embedded_fonts(pdf))
    text = _pdf_text(pdf)
    day = small.starts_at.astimezone(TOKYO).date()
    for expected in ("申込み確認票", "山田 花子 様", f"「{small.title}」", "10:00〜12:00",
                     f"{day.month}月{day.day}日", "会場：中央公民館（平塚市浅間町1-1）",
                     "持ち物：スマートフォン、充電器", "平塚市 電話 0463-21-1111"):
        assert expected in text, expected
    assert "キャンセル待ち" not in text
    assert min(_word_heights(pdf)) >= 14 - 0.5

    _run("pdftoppm", "-r", "200", "-png", "-singlefile", str(pdf), str(tmp_path / "slip"))
    [code] = zxingcpp.read_barcodes(Image.open(tmp_path / "slip.png"))
    assert code.text == invite

    [entry] = await audit_entries("registration.slip_printed", seat.id)
    assert entry.details == {"residentId": seat.resident_id}

    waiting_url = (await gql().data(
        "query ($id: ID!) { node(id: $id) { ... on Registration { confirmationSlipUrl } } }",
        {"id": to_global_id("Registration", waiting.id)}))["node"]["confirmationSlipUrl"]
    _, waiting_pdf = await _fetch(client, waiting_url, town.tokens[Role.COORDINATOR], tmp_path,
                                  "w.pdf")
    assert "キャンセル待ち 1 番目です。" in _pdf_text(waiting_pdf)


async def test_who_may_print(month_at_a_centre, town, other_town, gql, client, tmp_path):
    month, centre, _, _, _, seat, _ = month_at_a_centre
    slip = f"http://127.0.0.1:8000/paper/slip.pdf?registrationId={to_global_id('Registration', seat.id)}"
    sheet = (f"http://127.0.0.1:8000/paper/schedule.pdf?venueId="
             f"{to_global_id('Venue', centre.id)}&month={month:%Y-%m}")
    for url in (slip, sheet):
        assert (await _fetch(client, url, None, tmp_path, "x"))[0].status_code == 401
        planner, _ = await _fetch(client, url, town.tokens[Role.PLANNER], tmp_path, "x")
        assert planner.status_code == 403
        foreign, _ = await _fetch(client, url, other_town.tokens[Role.COORDINATOR], tmp_path, "x")
        assert foreign.status_code == 404 and "山田" not in foreign.text
    assert await audit_entries("registration.slip_printed", seat.id) == []

    bad, _ = await _fetch(client, sheet.replace(f"{month:%Y-%m}", "2027-13"),
                          town.tokens[Role.COORDINATOR], tmp_path, "x")
    assert bad.status_code == 400 and bad.json()["errors"][0]["extensions"]["code"] == \
        "INVALID_MONTH"
    answer = await gql()("query ($id: ID!) { node(id: $id) { ... on Venue {"
                         " monthlyScheduleUrl(month: \"4月\") } } }",
                         {"id": to_global_id("Venue", centre.id)})
    assert answer["errors"][0]["message"] == "月は 2027-04 の形で指定してください。"

    await scheduling.cancel_registration(actor=town.coordinator, registration_id=seat.id)
    cancelled, _ = await _fetch(client, slip, town.tokens[Role.COORDINATOR], tmp_path, "x")
    assert cancelled.status_code == 400
    assert cancelled.json()["errors"][0]["extensions"]["code"] == "ALREADY_CANCELLED"


async def test_a_my_number_class_asks_for_the_card(town, client, tmp_path):
    month = _next_month()
    place = await venue(town.coordinator, name="市民センター")
    card = await course(town.coordinator, CourseTopic.MY_NUMBER_CARD)
    await scheduling.schedule_sessions(
        actor=town.coordinator, kind=SessionKind.CLASS, venue_id=place.id, course_id=card.id,
        starts_at=_local(month.replace(day=12), 10),
        ends_at=_local(month.replace(day=12), 12), capacity=8)
    url = (f"http://127.0.0.1:8000/paper/schedule.pdf?venueId={to_global_id('Venue', place.id)}"
           f"&month={month:%Y-%m}")
    _, pdf = await _fetch(client, url, town.tokens[Role.COORDINATOR], tmp_path, "c.pdf")
    # the long line wraps on paper
    assert "マイナンバーカード（暗証番号もご確認ください）" in "".join(_pdf_text(pdf).split())


async def test_the_console_prints_both_from_its_pages(month_at_a_centre, town, console,
                                                      tmp_path):
    """Staff press the print links on the venues page and on a session's roster; the console's
    session cookie is enough (the files answer the console like the report CSV does)."""
    month, _, small, _, _, seat, _ = month_at_a_centre
    await console.login("hiratsuka-coordinator@example.jp")
    await console.get("/venues")
    link = re.search(r'href="([^"]*month=' + f"{month:%Y-%m}" + r')"[^>]*aria-label="中央公民館の'
                     + f"{month.month}" + r'月の予定表を印刷"', console.page)
    assert link, console.text()
    sheet = await console.get(link.group(1).replace("&amp;", "&"))
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "application/pdf"
    (tmp_path / "sheet.pdf").write_bytes(sheet.content)
    assert f"中央公民館 {month.year}年{month.month}月の予定" in _pdf_text(tmp_path / "sheet.pdf")

    await console.get(f"/sessions/{to_global_id('Session', small.id)}")
    slip = re.search(r'href="([^"]*)"[^>]*aria-label="山田 花子 様の確認票を印刷"', console.page)
    assert slip, console.text()
    printed = await console.get(slip.group(1).replace("&amp;", "&"))
    assert printed.status_code == 200
    (tmp_path / "slip.pdf").write_bytes(printed.content)
    assert "山田 花子 様" in _pdf_text(tmp_path / "slip.pdf")
    assert len(await audit_entries("registration.slip_printed", seat.id)) == 1
