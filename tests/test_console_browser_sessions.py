"""The counter's session flow in Chromium, as staff walk it: schedule a weekly class, open
one of its sessions, register a resident found by hiragana, fill the class until the next
person lands on the waitlist, cancel a seat and see the promotion, record attendance.
axe-core on every page of the flow; screenshots in test-output/console-sessions/."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import factories
from browser import run_in_browser
from factories import at

from divide_support.core import timeutil
from divide_support.core.ids import to_global_id
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import RegistrationSource, Session


async def test_schedule_register_waitlist_promote_and_attendance(console_server, town):
    actor = town.coordinator
    await factories.venue(actor, capacity=30, name="中央公民館")
    course = await factories.course(actor)
    for family, given, kana, sms in (("山田", "花子", "ヤマダ ハナコ", False),
                                     ("鈴木", "一郎", "スズキ イチロウ", False),
                                     ("田中", "恵子", "タナカ ケイコ", True)):
        await factories.resident(actor, family, given, kana=kana, sms=sms)
    running = await factories.session(actor, at(days=-0.02), capacity=5)
    guest = await factories.resident(actor, "高橋", "直美", kana="タカハシ ナオミ")
    await scheduling.register(actor=actor, session_id=running.id, resident_id=guest.id,
                              source=RegistrationSource.WALK_IN)
    day = factories.ordinary_weeks_from(timeutil.today("Asia/Tokyo") + timedelta(days=7), 4).isoformat()
    running_page = f"/sessions/{to_global_id('Session', running.id)}"

    def shown(browser, words: str) -> str:
        """The page's text once these words are on it (a press only starts the load)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                text = browser.text()
                if words in text or time.monotonic() > deadline:
                    return text
            except Exception:  # the page was replaced while being read
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def register(browser, hiragana: str, name: str, then: str) -> str:
        browser.fill("お名前（漢字・ひらがな・カタカナ）または電話番号", hiragana)
        browser.press("住民を探す")
        shown(browser, "で見つかった住民")
        browser.press("電話の申込を登録", within=browser.row(name))
        return shown(browser, then)

    def walk(browser):
        seen = {}
        browser.login("hiratsuka-coordinator@example.jp")
        browser.open("/sessions")
        browser.check("sessions-list")
        browser.press("教室・相談会を登録")
        shown(browser, "毎週くり返す回数")
        browser.check("sessions-new")
        browser.fill("講座", f"{course.title}（基本）")
        browser.fill("会場", "中央公民館（収容人数 30人）")
        browser.fill("日付", day)
        browser.fill("開始時刻", "10:00")
        browser.fill("終了時刻", "12:00")
        browser.fill("定員", "2")
        browser.fill("毎週くり返す回数", "3")
        browser.press("登録する")
        seen["scheduled"] = shown(browser, "回分を登録しました")
        browser.check("session-scheduled")
        seen["first"] = register(browser, "やまだはなこ", "山田 花子 様", "申込を受け付けました")
        browser.check("session-registered")
        register(browser, "すずき いちろう", "鈴木 一郎 様", "満席")
        seen["waitlisted"] = register(browser, "たなかけいこ", "田中 恵子 様", "キャンセル待ちで")
        browser.check("session-waitlisted")
        browser.press("取消", within=browser.row("山田 花子 様"))
        seen["promoted"] = shown(browser, "繰り上げで参加確定になりました")
        browser.check("session-promoted")
        browser.open(running_page)
        shown(browser, "高橋 直美 様")
        browser.press("出席", within=browser.row("高橋 直美 様"))
        seen["attended"] = shown(browser, "出欠を記録しました")
        browser.check("session-attendance")
        browser.open(running_page + "?print=1")
        seen["sheet"] = shown(browser, "受付簿")
        browser.check("session-sign-in-sheet")
        return seen

    seen = await asyncio.to_thread(run_in_browser, console_server, "console-sessions", walk)
    assert "4回分を登録しました" in seen["scheduled"]
    assert "残り2席（定員2人）" in seen["scheduled"]
    assert "申込を受け付けました。" in seen["first"] and "山田 花子 様" in seen["first"]
    assert "満席のため、キャンセル待ちで受け付けました。" in seen["waitlisted"]
    assert "キャンセル待ち（1番目） 田中 恵子 様" in seen["waitlisted"]
    assert "田中 恵子 様がキャンセル待ちから繰り上げで参加確定になりました。" in seen["promoted"]
    assert "ご本人にはSMSでお知らせします。" in seen["promoted"]
    assert "キャンセル待ちの方はいません。" in seen["promoted"]
    assert "出欠を記録しました。" in seen["attended"]
    assert "高橋 直美 様 タカハシ ナオミ 当日参加" in seen["attended"].replace("\n", " ")
    assert "受付簿" in seen["sheet"] and "高橋 直美 様" in seen["sheet"]
    assert await Session.filter(title=course.title).count() == 4
