"""The console's page layer: who is signed in, running the page's operations, rendering
templates, CSRF on every form, and the Japanese error pages (403, 404, 500 with the request
id). No product rule lives here: the API decides, the page shows what it decided."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from divide_support.accounts import service as accounts
from divide_support.api.http import request_id_of
from divide_support.core.actor import Actor, Role
from divide_support.core.timeutil import WEEKDAYS_JA, format_local
from divide_support.web import client
from divide_support.web.session import CSRF_FIELD, csrf_for, csrf_ok, session_token

log = logging.getLogger("divide_support.web")

STAFF = frozenset({Role.ADMIN, Role.COORDINATOR})
ADMIN = frozenset({Role.ADMIN})
PLANNER = frozenset({Role.PLANNER})
SUPPORTER = frozenset({Role.SUPPORTER})
EVERYONE = frozenset(Role)

# The menu: (path, label, roles offered the page). Pages of one area sit together.
MENU: list[tuple[str, str, frozenset[Role]]] = [
    ("/", "ホーム", EVERYONE),
    ("/duties", "担当の予定", SUPPORTER),
    ("/sessions", "教室・相談会", STAFF),
    ("/residents", "住民", STAFF),
    ("/follow-ups", "フォローアップ", STAFF),
    ("/messages", "SMS・返信", STAFF),
    ("/supporters", "支援員", STAFF),
    ("/venues", "会場", STAFF),
    ("/planning/participation", "参加状況（年代別）", PLANNER | STAFF),
    ("/planning/activity", "活動実績", PLANNER | STAFF),
    ("/admin/users", "ユーザー", ADMIN),
    ("/admin/audit", "監査ログ", ADMIN),
]


def navigation(role: Role | None) -> list[tuple[str, str]]:
    return [(href, label) for href, label, roles in MENU if role in roles]


ROLE_NAMES = {Role.ADMIN: "管理者", Role.COORDINATOR: "窓口担当", Role.SUPPORTER: "支援員",
              Role.PLANNER: "企画担当"}


def _parse_moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def jp_datetime(value: Any, tz: str = "Asia/Tokyo") -> str:
    """12月3日(木) 10:00, in the municipality's time zone (the glossary's form)."""
    moment = _parse_moment(value)
    if moment is None:
        return ""
    # the SMS's 12月3日(木)10:00 with the glossary's space for the screen
    return format_local(moment, tz).replace(")", ") ", 1)


def jp_date(value: Any) -> str:
    if isinstance(value, str) and value:
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, date):
        return f"{value.year}年{value.month}月{value.day}日({WEEKDAYS_JA[value.weekday()]})"
    return ""


def jp_time(value: Any, tz: str = "Asia/Tokyo") -> str:
    moment = _parse_moment(value)
    return moment.astimezone(ZoneInfo(tz)).strftime("%H:%M") if moment else ""


def jp_span(starts: Any, ends: Any, tz: str = "Asia/Tokyo") -> str:
    """12月3日(木) 10:00〜12:00"""
    return f"{jp_datetime(starts, tz)}〜{jp_time(ends, tz)}" if starts else ""


def local_input(value: Any, tz: str = "Asia/Tokyo") -> str:
    """The value of an <input type="datetime-local">."""
    moment = _parse_moment(value)
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M") if moment else ""


def local_path(url: str) -> str:
    """A link the API handed out, as a path on this server: the page works however the
    browser reached it (the intranet name need not be PUBLIC_BASE_URL)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


templates = Environment(loader=PackageLoader("divide_support.web", "templates"),
                        autoescape=select_autoescape(["html"]), trim_blocks=True,
                        lstrip_blocks=True)
templates.filters.update(jp_datetime=jp_datetime, jp_date=jp_date, jp_time=jp_time,
                         jp_span=jp_span, local_input=local_input, local_path=local_path)
# Words of the glossary for the API's enum values, shared by every template.
CHANNELS = {"PHONE_CALL": "電話で確認", "SMS": "SMSで確認", "VISIT": "訪問・窓口で確認",
            "POST": "郵送で確認"}
templates.globals.update(ROLE_NAMES=ROLE_NAMES, CSRF_FIELD=CSRF_FIELD, CHANNELS=CHANNELS)


class CsrfRefused(Exception):
    pass


@dataclass
class Console:
    """One console request: the signed-in user (or nobody) and what a page needs."""

    request: Request
    actor: Actor | None
    token: str
    me: dict[str, Any] = field(default_factory=dict)

    @property
    def csrf(self) -> str:
        return csrf_for(self.token) if self.token else ""

    @property
    def role(self) -> Role | None:
        return self.actor.role if self.actor else None

    @property
    def timezone(self) -> str:
        return self.actor.timezone if self.actor else "Asia/Tokyo"

    async def query(self, name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """A page's read: any top-level error becomes the matching error page."""
        result = await client.run(self.request, self.actor, self.token, name, variables)
        return result.data

    async def mutate(self, name: str, variables: dict[str, Any] | None = None
                     ) -> client.Result:
        """A form's change; the payload's UserErrors are data for the form to show."""
        return await client.run(self.request, self.actor, self.token, name, variables)

    async def form(self) -> FormData:
        """The posted form, once its CSRF token is checked (else nothing happens)."""
        form = await self.request.form()
        if not csrf_ok(self.request, str(form.get(CSRF_FIELD, ""))):
            raise CsrfRefused
        return form

    def render(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        html = templates.get_template(template).render(
            console=self, me=self.me, role=self.role, csrf=self.csrf, tz=self.timezone,
            request=self.request, path=self.request.url.path, nav=navigation(self.role),
            **values)
        return HTMLResponse(html, status_code=status_code)


def user_errors(payload: dict[str, Any] | None) -> tuple[dict[str, str], list[str]]:
    """A payload's UserErrors as {field: message} (the last part of the input path, e.g.
    "phone") and the messages that concern no field."""
    by_field: dict[str, str] = {}
    general: list[str] = []
    for error in (payload or {}).get("errors") or []:
        path = error.get("field") or []
        name = str(path[-1]) if path else ""
        if name and name != "input" and name not in by_field:
            by_field[name] = error["message"]
        else:
            general.append(error["message"])
    return by_field, general


def redirect(url: str) -> RedirectResponse:
    """After a successful POST: see the result with a GET (reloading repeats nothing)."""
    return RedirectResponse(url, status_code=303)


def error_page(console: Console, status: int, title: str, message: str) -> HTMLResponse:
    return console.render("error.html", status_code=status, title=title, message=message,
                          request_id=request_id_of(console.request))


def not_found_page(console: Console) -> HTMLResponse:
    """What a page shows for an ID the API does not give this user (another municipality's,
    or none at all): the same 404 either way."""
    return error_page(console, 404, "見つかりません", NOT_FOUND_MESSAGE)


FORBIDDEN_MESSAGE = ("このページを見る権限がありません。必要な場合は、管理者に権限を確認して"
                     "ください。")
NOT_FOUND_MESSAGE = "お探しのページや記録は見つかりませんでした。URLをご確認ください。"
INTERNAL_MESSAGE = ("申し訳ありません。処理中に問題が発生しました。時間をおいてもう一度お試し"
                    "ください。続く場合は、下の受付番号を添えて管理者にお知らせください。")
CSRF_MESSAGE = ("画面を開いてから時間がたったか、別の画面から送信されたため、受け付けません"
                "でした。何も変更していません。もう一度画面を開いてやり直してください。")


def _problem_page(console: Console, problem: client.PageProblem) -> Response:
    if problem.code == "UNAUTHENTICATED":
        return _to_login(console.request)
    if problem.code == "FORBIDDEN":
        return error_page(console, 403, "権限がありません", FORBIDDEN_MESSAGE)
    if problem.code == "NOT_FOUND":
        return not_found_page(console)
    if problem.code in ("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"):
        return error_page(console, 400, "入力を確認してください", problem.message)
    return error_page(console, 500, "エラーが発生しました", INTERNAL_MESSAGE)


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


Handler = Callable[[Console], Awaitable[Response]]


def page(roles: Iterable[Role] = EVERYONE, *, public: bool = False
         ) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A console page. `roles` says whom the page is offered to (its menu entry, and a 403
    before any work); what each role may read or change is still the API's decision."""
    allowed = frozenset(roles)

    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            token = session_token(request)
            actor = await accounts.authenticate(token) if token else None
            console = Console(request=request, actor=actor, token=token if actor else "")
            try:
                if not public:
                    if actor is None:
                        return _to_login(request)
                    # the header and menu first, so a refused page still leads somewhere
                    console.me = (await console.query("ConsoleMe")).get("me") or {}
                    if actor.role not in allowed:
                        return error_page(console, 403, "権限がありません", FORBIDDEN_MESSAGE)
                return await handler(console)
            except CsrfRefused:
                return error_page(console, 403, "受け付けできませんでした", CSRF_MESSAGE)
            except client.PageProblem as problem:
                if problem.code not in ("UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND",
                                        "BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"):
                    log.error("console page %s got %s (request %s)", request.url.path,
                              problem.code, problem.request_id)
                return _problem_page(console, problem)
            except Exception:  # never a trace on the page; the log has it with the request id
                log.exception("console page %s failed (request %s)", request.url.path,
                              request_id_of(request))
                return error_page(console, 500, "エラーが発生しました", INTERNAL_MESSAGE)

        return endpoint

    return decorate


async def not_found(request: Request, exc: Exception) -> Response:
    """A path nobody serves: the console's Japanese page for a browser, a short plain answer
    for a program."""
    if "text/html" not in request.headers.get("accept", ""):
        return PlainTextResponse("Not Found", status_code=404)
    token = session_token(request)
    actor = await accounts.authenticate(token) if token else None
    console = Console(request=request, actor=actor, token=token if actor else "")
    return not_found_page(console)
