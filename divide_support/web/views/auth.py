"""Sign in and out: the API's `login` and `logout`, so its lockout, audit and token expiry
apply to the console as they do to every client."""

from __future__ import annotations

from datetime import datetime

from starlette.responses import Response
from starlette.routing import Route

from divide_support.core import timeutil
from divide_support.web.pages import CSRF_MESSAGE, Console, page, redirect
from divide_support.web.session import (
    CSRF_FIELD,
    clear_session,
    csrf_ok,
    login_csrf,
    set_login_csrf,
    set_session,
)


def _safe_next(value: str) -> str:
    """Only a path of this server (never //host or a scheme: no open redirect)."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _login_form(console: Console, *, values: dict[str, str], message: str = "",
                status_code: int = 200) -> Response:
    value = login_csrf(console.request)
    response = console.render("login.html", status_code=status_code, title="ログイン",
                              values=values, message=message, login_csrf=value,
                              next=_safe_next(console.request.query_params.get("next", "")
                                              or values.get("next", "")))
    set_login_csrf(response, console.request, value)
    return response


@page(public=True)
async def login_page(console: Console) -> Response:
    if console.actor is not None:
        return redirect(_safe_next(console.request.query_params.get("next", "")))
    return _login_form(console, values={})


@page(public=True)
async def login_submit(console: Console) -> Response:
    form = await console.request.form()
    values = {"email": str(form.get("email", "")), "next": str(form.get("next", ""))}
    if not csrf_ok(console.request, str(form.get(CSRF_FIELD, "")), login=True):
        return _login_form(console, values=values, message=CSRF_MESSAGE, status_code=403)
    result = await console.mutate("ConsoleLogin", {"email": values["email"],
                                                   "password": str(form.get("password", ""))})
    payload = result.data.get("login") or {}
    if not payload.get("token"):
        # The API's own words: wrong password and unknown e-mail read the same.
        messages = [e["message"] for e in payload.get("errors") or []] or [
            e["message"] for e in result.errors]
        return _login_form(console, values=values, message=" ".join(messages),
                           status_code=400)
    expires = datetime.fromisoformat(payload["expiresAt"])
    response = redirect(_safe_next(values["next"]))
    set_session(response, console.request, payload["token"],
                max(60, int((expires - timeutil.now()).total_seconds())))
    response.delete_cookie("ds_login_csrf", path="/login")
    return response


@page()
async def logout_submit(console: Console) -> Response:
    await console.form()
    await console.mutate("ConsoleLogout")
    response = redirect("/login")
    clear_session(response, console.request)
    return response


ROUTES = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_submit, methods=["POST"]),
    Route("/logout", logout_submit, methods=["POST"]),
]
