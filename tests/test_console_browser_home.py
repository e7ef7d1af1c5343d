"""The console's front door in Chromium: sign in, the home page, sign out; axe-core on each
page; nothing requested from any host but the server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import factories
from browser import run_in_browser

from divide_support.core import timeutil


async def test_sign_in_home_and_sign_out(console_server, town):
    venue = await factories.venue(town.admin, name="中央公民館")
    session = await factories.session(town.admin, timeutil.now() + timedelta(minutes=30),
                                      venue_obj=venue)

    def walk(browser):
        browser.open("/")
        assert browser.path().startswith("/login")
        browser.check("login")
        browser.login("hiratsuka-coordinator@example.jp", "not-the-password")
        wrong = browser.text()
        browser.login("hiratsuka-coordinator@example.jp")
        home = browser.text()
        browser.check("home")
        browser.press("ログアウト")
        after = browser.text()
        return wrong, home, after, browser.requests(), browser.external

    wrong, home, after, urls, external = await asyncio.to_thread(
        run_in_browser, console_server, "console-front-door", walk)
    assert "メールアドレスまたはパスワードが正しくありません" in wrong
    assert "今日の予定" in home and session.title in home and "中央公民館" in home
    assert "ログイン" in after and "今日の予定" not in after
    assert external(urls) == []
    assert any(url.endswith("/static/console/console.css") for url in urls)


async def test_the_home_page_fits_a_tablet_at_the_door(console_server, town):
    venue = await factories.venue(town.admin, name="中央公民館")
    await factories.session(town.admin, timeutil.now() + timedelta(hours=2), venue_obj=venue)

    def walk(browser):
        browser.login("hiratsuka-coordinator@example.jp")
        browser.check("home-tablet")
        return browser.driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth,"
            " parseFloat(getComputedStyle(document.body).fontSize)];")

    scroll_width, width, font_size = await asyncio.to_thread(
        run_in_browser, console_server, "console-tablet", walk, width=800, height=1280)
    assert scroll_width <= width, "the page scrolls sideways on a tablet"
    assert font_size >= 16
