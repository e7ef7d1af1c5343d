"""A user changes their own password in the console."""

from __future__ import annotations

from conftest import PASSWORD

EMAIL = "hiratsuka-coordinator@example.jp"
NEW = "a-new-password-2026"


async def test_a_user_changes_their_password_and_signs_in_with_it(console, town):
    await console.login(EMAIL)
    await console.get("/account/password")
    response = await console.post("/account/password", {
        "currentPassword": PASSWORD, "newPassword": NEW, "newPasswordAgain": NEW})
    assert response.status_code == 200
    assert "パスワードを変更しました。" in console.text()
    await console.post("/logout")
    await console.login(EMAIL, PASSWORD)
    assert "メールアドレスまたはパスワードが正しくありません" in console.text()
    await console.login(EMAIL, NEW)
    assert "今日の予定" in console.text()


async def test_a_wrong_current_password_is_shown_at_its_field(console, town):
    await console.login(EMAIL)
    await console.get("/account/password")
    response = await console.post("/account/password", {
        "currentPassword": "not-the-password", "newPassword": NEW, "newPasswordAgain": NEW})
    assert response.status_code == 400
    assert 'id="currentPassword-error"' in console.page
    assert "今のパスワードが正しくありません。" in console.text()
    await console.post("/logout")
    await console.login(EMAIL, PASSWORD)  # unchanged
    assert "今日の予定" in console.text()


async def test_two_different_typings_change_nothing(console, town):
    await console.login(EMAIL)
    await console.get("/account/password")
    await console.post("/account/password", {
        "currentPassword": PASSWORD, "newPassword": NEW, "newPasswordAgain": NEW + "x"})
    assert "同じ新しいパスワードを2回入力してください" in console.text()
    await console.post("/logout")
    await console.login(EMAIL, PASSWORD)
    assert "今日の予定" in console.text()


async def test_a_short_password_gets_the_apis_message(console, town):
    await console.login(EMAIL)
    await console.get("/account/password")
    await console.post("/account/password", {
        "currentPassword": PASSWORD, "newPassword": "short", "newPasswordAgain": "short"})
    assert "パスワードは10文字以上にしてください。" in console.text()
    assert 'id="newPassword-error"' in console.page
