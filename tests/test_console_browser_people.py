"""Counter staff in Chromium: find a resident by hiragana, open them, start registering a caller
whose mobile number is already on file (the warning links to the record), record the outcome
of a follow-up that is due, look at the SMS that did not go out. axe-core on every page."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import factories
from browser import run_in_browser

from divide_support.core import timeutil
from divide_support.core.ids import to_global_id
from divide_support.followups import service as followups
from divide_support.followups.models import FollowUp, FollowUpChannel, FollowUpOutcome, FollowUpStatus
from divide_support.people import service as people
from divide_support.people.models import ContactPreference, Resident
from divide_support.scheduling import service as scheduling


def shown(browser, words: str, timeout: float = 15) -> str:
    """The page's text once it shows `words`: a form posts, is redirected (303) and the
    next page loads after the click has returned."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            text = browser.text()
            if words in text:
                return text
        except StaleElementReferenceException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{words!r} did not appear on {browser.path()}")
        time.sleep(0.1)


async def test_counter_staff_find_open_warn_follow_up_and_read_messages(console_server, town):
    hanako = await people.create_resident(actor=town.coordinator, fields=people.ResidentFields(
        family_name="山田", given_name="花子", kana="ヤマダ ハナコ", phone="090-1234-5678",
        birth_date=date(1948, 4, 2), contact_preference=ContactPreference.PHONE_CALL))
    session = await factories.session(town.coordinator, factories.at(days=4, hour=10))
    await scheduling.register(actor=town.coordinator, session_id=session.id,
                              resident_id=hanako.id)
    await followups.schedule_follow_up(resident_id=hanako.id,
                                       due_on=timeutil.today("Asia/Tokyo"),
                                       channel=FollowUpChannel.PHONE_CALL, actor=town.coordinator)

    def walk(browser):
        seen = {}
        browser.login("hiratsuka-coordinator@example.jp")
        browser.press("住民")
        browser.fill("お名前・フリガナ・電話番号", "やまだ")
        browser.press("さがす")
        seen["search"] = shown(browser, "検索結果")
        browser.check("residents-search")

        browser.press("山田 花子 様")
        seen["resident"] = shown(browser, "情報を変更する")
        browser.check("resident")

        browser.open("/residents/new")
        shown(browser, "住民を登録")
        browser.check("resident-new")
        browser.fill("姓", "山田")
        browser.fill("名", "太郎")
        browser.fill("携帯電話番号", "09012345678")
        browser.press("登録する")
        seen["duplicate"] = shown(browser, "まだ登録していません")
        browser.check("resident-duplicate")
        browser.press("山田 花子 様（登録済みの記録を見る）")
        shown(browser, "情報を変更する")
        seen["duplicate_link"] = browser.path()

        browser.press("フォローアップ")
        seen["follow_ups"] = shown(browser, "今日までに確認する方")
        browser.check("follow-ups")
        browser.press("結果を記録する")
        shown(browser, "確認すること")
        browser.check("follow-up")
        browser.fill("自分で使えるようになった", "on")
        browser.fill("メモ", "LINEで孫と写真をやりとりできています")
        browser.press("結果を記録する")
        seen["recorded"] = shown(browser, "結果を記録しました")
        browser.check("follow-up-recorded")

        browser.press("SMS・返信")
        seen["messages"] = shown(browser, "確認が必要な返信")
        browser.check("messages")
        seen["external"] = browser.external(browser.requests())
        return seen

    seen = await asyncio.to_thread(run_in_browser, console_server, "console-people", walk)
    assert "「やまだ」の検索結果（1人）" in seen["search"] and "山田 花子 様" in seen["search"]
    resident = seen["resident"]
    assert "090-1234-5678" in resident and "1948年4月2日" in resident
    assert session.title in resident and "受付済" in resident and "電話で確認" in resident
    assert "同じ方がすでに登録されているかもしれません" in seen["duplicate"]
    assert "まだ登録していません" in seen["duplicate"]
    assert seen["duplicate_link"] == f"/residents/{to_global_id('Resident', hanako.id)}"
    assert await Resident.all().count() == 1
    assert "今日までに確認する方（1件）" in seen["follow_ups"]
    assert "結果を記録しました" in seen["recorded"] and "自分で使えるようになった" in seen["recorded"]
    [done] = await FollowUp.filter(resident_id=hanako.id)
    assert (done.status, done.outcome) == (FollowUpStatus.DONE, FollowUpOutcome.USES_INDEPENDENTLY)
    assert "送らなかったSMS" in seen["messages"] and "山田 花子 様" in seen["messages"]
    assert seen["external"] == []
