"""Supporters and administrators in Chromium: a supporter sees only their own duties (names,
no phone numbers) and how to subscribe to them; an admin walks the supporter, venue, user and
audit pages and deactivates a user, who then cannot log in. axe-core on every page."""

from __future__ import annotations

import asyncio
from datetime import date

import factories
from browser import run_in_browser
from factories import at

from divide_support.core.ids import to_global_id
from divide_support.scheduling import service as scheduling


def go(browser, words: str, within=None) -> None:
    """Press a button or link and wait for the next page (a click does not wait for it)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = browser.driver.find_element("tag name", "html")
    browser.press(words, within)
    WebDriverWait(browser.driver, 15).until(expected_conditions.staleness_of(page))


def sign_in(browser, email: str) -> None:
    browser.open("/login")
    browser.fill("メールアドレス", email)
    browser.fill("パスワード", "correct-horse-battery")
    go(browser, "ログイン")


async def test_a_supporter_sees_only_their_own_duties(console_server, town):
    me, _ = await factories.supporter_login(town, name="佐藤 健")
    colleague = await factories.supporter(town.coordinator, name="高橋 支援員")
    mine = await factories.session(town.coordinator, at(days=2, hour=10))
    others = await factories.session(town.coordinator, at(days=4, hour=14))
    await scheduling.assign_supporter(actor=town.coordinator, session_id=mine.id,
                                      supporter_id=me.id)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=others.id,
                                      supporter_id=colleague.id)
    guest = await factories.resident(town.coordinator, "参加", "花子", sms=True,
                                     phone="090-3141-5926", birth_date=date(1948, 2, 3),
                                     device="ANDROID")
    stranger = await factories.resident(town.coordinator, "別の回", "一郎", sms=True,
                                        phone="090-2718-2818")
    await scheduling.register(actor=town.coordinator, session_id=mine.id, resident_id=guest.id)
    await scheduling.register(actor=town.coordinator, session_id=others.id,
                              resident_id=stranger.id)

    def walk(browser):
        sign_in(browser, "sato@example.jp")
        landed = browser.path()
        browser.check("supporter-duties")
        text = browser.text()
        link = browser.driver.find_element("link text", "カレンダーに登録する").get_attribute("href")
        browser.open("/supporters")
        refused = browser.text()
        browser.check("supporter-refused")
        return landed, text, link, refused, browser.requests(), browser.external

    landed, text, link, refused, urls, external = await asyncio.to_thread(
        run_in_browser, console_server, "console-supporter", walk)
    assert landed == "/duties"
    assert mine.title in text and "参加 花子 様" in text and "Android" in text
    assert others.title not in text and "別の回" not in text
    for secret in ("3141", "5926", "2718", "1948"):
        assert secret not in text
    assert link.startswith("webcal://") and "/calendar/supporters/" in link
    assert "照会するカレンダーを追加" in text and "URLで追加" in text
    assert "権限がありません" in refused
    assert external(urls) == []


async def test_an_admin_deactivates_a_user_who_then_cannot_log_in(console_server, town):
    supporter = await factories.supporter(town.coordinator, name="山本 支援員")
    venue = await factories.venue(town.coordinator, name="北部公民館")
    session = await factories.session(town.coordinator, at(days=3, hour=10), venue_obj=venue)
    await scheduling.assign_supporter(actor=town.coordinator, session_id=session.id,
                                      supporter_id=supporter.id)
    supporter_id = to_global_id("Supporter", supporter.id)

    def walk(browser):
        seen = {}
        sign_in(browser, "hiratsuka-admin@example.jp")
        browser.open("/supporters")
        browser.check("supporters")
        seen["roster"] = browser.text()
        go(browser, "山本 支援員")
        browser.check("supporter")
        seen["supporter"] = browser.text()
        go(browser, "情報を変更")
        browser.check("supporter-edit")
        browser.fill("得意なこと", "LINE、iPhone")
        go(browser, "変更を保存")
        seen["saved"] = browser.text()
        browser.open("/supporters/new")
        browser.fill("電話番号", "123")
        browser.fill("お名前", "新しい 支援員")
        go(browser, "登録する")
        browser.check("supporter-new-refused")
        seen["refused"] = browser.text()
        browser.open("/venues")
        browser.check("venues")
        go(browser, "北部公民館を変更")
        browser.check("venue-edit")
        browser.fill("収容人数", "25")
        go(browser, "変更を保存")
        seen["venues"] = browser.text()
        browser.open("/admin/users")
        browser.check("admin-users")
        go(browser, "平塚市PLANNERさんを無効にする", within=browser.row("hiratsuka-planner"))
        browser.check("admin-users-deactivated")
        seen["deactivated"] = browser.text()
        browser.open("/admin/users/new")
        browser.check("admin-user-new")
        browser.fill("メールアドレス", "tanaka@example.jp")
        browser.fill("お名前", "田中 窓口")
        go(browser, "作成する")
        browser.check("admin-password-shown")
        seen["created"] = browser.text()
        browser.open("/admin/audit")
        browser.fill("操作", "ユーザーを無効に")
        go(browser, "絞り込む")
        browser.check("admin-audit")
        seen["audit"] = browser.text()
        go(browser, "ログアウト")
        sign_in(browser, "hiratsuka-planner@example.jp")
        seen["planner"] = browser.text()
        seen["planner_path"] = browser.path()
        browser.check("login-refused")
        return seen, browser.requests(), browser.external

    seen, urls, external = await asyncio.to_thread(
        run_in_browser, console_server, "console-admin", walk)
    assert "山本 支援員" in seen["roster"] and "認定" in seen["roster"]
    assert session.title in seen["supporter"]
    assert "保存しました" in seen["saved"] and "LINE、iPhone" in seen["saved"]
    assert "受け付けできませんでした" in seen["refused"] and "電話番号" in seen["refused"]
    assert "保存しました" in seen["venues"] and "25人" in seen["venues"]
    assert "を無効にしました" in seen["deactivated"]
    assert "この画面でしか表示しません" in seen["created"]
    assert "ユーザーを無効に" in seen["audit"] and "hiratsuka-admin@example.jp" in seen["audit"]
    assert seen["planner_path"].startswith("/login")
    assert "メールアドレスまたはパスワードが正しくありません" in seen["planner"]
    assert external(urls) == []
    assert supporter_id  # the supporter's page was opened from the roster by name
