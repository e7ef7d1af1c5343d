"""The console's sign-in, CSRF and error pages, over HTTP in-process (the browser tests walk
the same pages in Chromium)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

from console_helpers import csrf_of, text_of

from divide_support.accounts.models import AuthToken


async def test_a_visitor_is_sent_to_the_login_page(console):
    response = await console.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F"
    page = await console.get("/login")
    assert page.status_code == 200
    assert "ログイン" in console.text() and "メールアドレス" in console.text()


async def test_login_sets_an_httponly_cookie_and_shows_the_home_page(console, town):
    response = await console.login("hiratsuka-coordinator@example.jp")
    assert response.status_code == 200, response.text
    cookie = next(c for c in console.client.cookies.jar if c.name == "ds_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    set_cookie = response.history[0].headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
    text = console.text()
    assert "ホーム" in text and "今日の予定" in text and "平塚市COORDINATOR（窓口担当）" in text


async def test_a_wrong_password_and_an_unknown_email_read_the_same(console, town):
    await console.login("hiratsuka-coordinator@example.jp", "wrong-password-123")
    wrong = console.text()
    await console.login("nobody@example.jp", "wrong-password-123")
    unknown = console.text()
    assert "メールアドレスまたはパスワードが正しくありません" in wrong
    assert wrong.replace("hiratsuka-coordinator@example.jp", "X") == \
        unknown.replace("nobody@example.jp", "X")
    assert "ds_session" not in console.client.cookies


async def test_a_login_form_without_its_token_is_refused(console, town):
    await console.get("/login")
    response = await console.post("/login", {"email": "hiratsuka-coordinator@example.jp",
                                             "password": "correct-horse-battery"},
                                  csrf="forged")
    assert response.status_code == 403
    assert "受け付けません" in console.text()
    assert "ds_session" not in console.client.cookies


async def test_logout_makes_the_old_cookie_useless(console, town):
    await console.login("hiratsuka-coordinator@example.jp")
    old = console.client.cookies["ds_session"]
    await console.post("/logout")
    assert "ログイン" in console.text()
    assert await AuthToken.filter(revoked_at__isnull=False).count() == 1
    console.client.cookies.set("ds_session", old)
    response = await console.get("/")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_a_form_without_the_csrf_token_changes_nothing(console, town):
    await console.login("hiratsuka-coordinator@example.jp")
    response = await console.post("/logout", csrf="")
    assert response.status_code == 403
    assert "何も変更していません" in text_of(response.text)
    assert await AuthToken.filter(revoked_at__isnull=False).count() == 0
    assert (await console.get("/")).status_code == 200


async def test_the_csrf_token_of_one_session_does_not_work_for_another(console, town):
    await console.login("hiratsuka-admin@example.jp")
    admin_token = csrf_of(console.page)
    await console.post("/logout")
    await console.login("hiratsuka-coordinator@example.jp")
    response = await console.post("/logout", csrf=admin_token)
    assert response.status_code == 403


async def test_next_never_leaves_the_server(console, town):
    await console.get("/login?next=//evil.example/")
    response = await console.post("/login", {"email": "hiratsuka-coordinator@example.jp",
                                             "password": "correct-horse-battery",
                                             "next": "//evil.example/"}, follow=False)
    assert response.status_code == 303 and response.headers["location"] == "/"


async def test_an_unexpected_error_shows_a_polite_page_with_the_request_id(
        console, town, owner_connection, service_database, caplog):
    """The database refuses the service a table (a real failure, nothing mocked): the page
    apologises in Japanese with the request id that the server's log carries, and shows no
    trace, SQL or table name."""
    await console.login("hiratsuka-coordinator@example.jp")
    await owner_connection.execute(f'REVOKE SELECT ON follow_up FROM "{service_database.user}"')
    try:
        with caplog.at_level(logging.ERROR):
            response = await console.get("/")
    finally:
        await owner_connection.execute(
            f'GRANT SELECT ON follow_up TO "{service_database.user}"')
    assert response.status_code == 500
    text = console.text()
    assert "申し訳ありません" in text and "受付番号" in text
    request_id = response.headers["x-request-id"]
    assert request_id in text
    for leak in ("Traceback", "follow_up", "permission denied", "SELECT", "asyncpg"):
        assert leak not in response.text
    assert any(request_id in record.getMessage() or request_id == getattr(
        record, "request_id", None) for record in caplog.records)


async def test_a_page_that_does_not_exist_answers_in_japanese(console, town):
    await console.login("hiratsuka-planner@example.jp")
    response = await console.get("/")
    assert response.status_code == 303  # planners start at their report
    missing = await console.get("/no-such-page", headers={"Accept": "text/html"})
    assert missing.status_code == 404
    assert "見つかりません" in console.text()
    api = await console.client.get("/no-such-page", headers={"Accept": "application/json"})
    assert api.status_code == 404 and "text/html" not in api.headers["content-type"]


def test_no_page_of_the_console_names_another_host():
    """Templates, styles and operations load nothing from elsewhere (intranets block CDNs)."""
    from importlib.resources import files

    web = files("divide_support.web")
    found = []
    for folder in ("templates", "static/console"):
        for entry in web.joinpath(folder).iterdir():
            text = entry.read_text("utf-8")
            found += [f"{entry.name}: {url}" for url in re.findall(r"(?:https?:)?//[\w.-]+\.\w+",
                                                                   text)]
    assert found == []


async def test_the_lockout_of_the_api_holds_in_the_console(console, town, settings_env):
    settings_env(LOGIN_MAX_FAILURES="3")
    for _ in range(3):
        await console.login("hiratsuka-coordinator@example.jp", "wrong-password-123")
    await console.login("hiratsuka-coordinator@example.jp")  # the right one, too late
    assert "ds_session" not in console.client.cookies
    assert "ログインの失敗が続いたため、しばらくログインできません。" in console.text()


async def test_an_expired_session_sends_the_user_to_the_login_page(console, town):
    await console.login("hiratsuka-coordinator@example.jp")
    await AuthToken.filter(revoked_at__isnull=True).update(
        expires_at=datetime.now(UTC) - timedelta(minutes=1))
    response = await console.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2F"


async def test_a_nul_in_a_form_never_reaches_the_api(console, town):
    """The console goes through the API's edge net like any client."""
    await console.get("/login")
    response = await console.post("/login", {"email": "hiratsuka-coordinator@example.jp\x00",
                                             "password": "correct-horse-battery"})
    assert response.status_code == 400
    assert "使えない文字" in console.text()
    assert "ds_session" not in console.client.cookies
