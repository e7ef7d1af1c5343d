"""A planner in Chromium: the participation report with its chart drawn on the page, the CSV
downloaded as a file, the activity report; axe-core on each page."""

from __future__ import annotations

import asyncio
import time

from browser import run_in_browser
from test_console_planning import two_classes  # noqa: F401


async def test_a_planner_sees_the_chart_and_downloads_the_csv(console_server, town,
                                                              two_classes, tmp_path):  # noqa: F811
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    def walk(browser):
        browser.driver.execute_cdp_cmd("Page.setDownloadBehavior",
                                       {"behavior": "allow", "downloadPath": str(downloads)})
        browser.login("hiratsuka-planner@example.jp")
        assert browser.path() == "/planning/participation"
        chart = browser.driver.execute_script(
            "const img = document.querySelector('figure.chart img');"
            "return img && img.complete ? [img.naturalWidth, img.naturalHeight] : null;")
        text = browser.text()
        browser.check("participation")
        browser.press("CSVでダウンロード", navigates=False)
        deadline = time.monotonic() + 20
        while not [p for p in downloads.iterdir() if p.suffix == ".csv"]:
            assert time.monotonic() < deadline, "no CSV arrived"
            time.sleep(0.2)
        [csv_file] = [p for p in downloads.iterdir() if p.suffix == ".csv"]
        content = csv_file.read_bytes().decode("utf-8-sig")
        browser.open("/planning/activity")
        activity = browser.text()
        browser.check("activity")
        return chart, text, content, activity, browser.external(browser.requests())

    chart, text, content, activity, external = await asyncio.to_thread(
        run_in_browser, console_server, "console-planner", walk)
    assert chart and chart[0] > 100 and chart[1] > 100, "the chart did not render"
    assert "到達度（1.0 = 必要度どおり）" in text and "80歳以上" in text
    assert "70～79歳" in content and "80歳以上" in content
    assert "活動実績" in activity and "合計" in activity
    assert external == []
