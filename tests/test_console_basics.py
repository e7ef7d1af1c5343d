"""The console's sign-in, CSRF and error pages, over HTTP in-process (the browser tests walk
the same pages in Chromium)."""

from __future__ import annotations

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
