"""The signed-in user's own account: a new password (the API's changePassword; their other
sessions are signed out, this one stays)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from divide_support.web.pages import Console, page, redirect, user_errors

MISMATCH = "確認のため、同じ新しいパスワードを2回入力してください。"


@page()
async def password_form(console: Console) -> Response:
    done = console.request.query_params.get("done") == "changed"
    return console.render("account_password.html", title="パスワードの変更", values={},
                          errors={}, general=[],
                          notice="パスワードを変更しました。" if done else "")


@page()
async def change_password(console: Console) -> Response:
    form = await console.form()
    current = str(form.get("currentPassword", ""))
    new = str(form.get("newPassword", ""))
    if new != str(form.get("newPasswordAgain", "")):
        # Only the form's own question: whether the two typings agree. The rules of a
        # password are the API's.
        return console.render("account_password.html", status_code=400,
                              title="パスワードの変更", values={},
                              errors={"newPasswordAgain": MISMATCH}, general=[])
    result = await console.mutate("ConsoleChangePassword",
                                  {"current": current, "new": new})
    payload = result.data["changePassword"]
    if payload.get("errors"):
        by_field, general = user_errors(payload)
        return console.render("account_password.html", status_code=400,
                              title="パスワードの変更", values={}, errors=by_field,
                              general=general)
    return redirect("/account/password?done=changed")


ROUTES = [
    Route("/account/password", password_form, methods=["GET"]),
    Route("/account/password", change_password, methods=["POST"]),
]
