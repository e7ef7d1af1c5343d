"""Administration (ADMIN): logins (create, deactivate and reactivate, reset a password, sign
out everywhere, unlock an e-mail that is locked out) and the audit log with filters."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import Route

from divide_support.core.actor import Role
from divide_support.web.pages import (
    ADMIN,
    ROLE_NAMES,
    Console,
    not_found_page,
    page,
    redirect,
    user_errors,
)

ROLE_OPTIONS = [(role.value, ROLE_NAMES[role]) for role in
                (Role.COORDINATOR, Role.SUPPORTER, Role.PLANNER, Role.ADMIN)]
# What the list says after an action (the user is named from the list, not from the URL).
DONE = {"created": "を作成しました。", "deactivated": "を無効にしました。ログインできなくなり、"
        "使用中の端末からもログアウトしました。", "activated": "を有効に戻しました。",
        "revoked": "を、すべての端末からログアウトさせました。",
        "unlocked": "のロックを解除しました。すぐにログインできます。",
        "not_locked": "はロックされていませんでした（失敗の回数は0に戻しました）。",
        "reset": "のパスワードを再設定しました。使用中の端末からはログアウトしました。"}
# The audit log's object types and actions, in plain words (unknown ones show as recorded).
OBJECT_TYPES = [("Resident", "住民"), ("Registration", "申込"), ("Session", "教室・相談会"),
                ("Supporter", "支援員"), ("Assignment", "支援員の担当"), ("Venue", "会場"),
                ("Course", "講座"), ("Visit", "相談記録"), ("FollowUp", "フォローアップ"),
                ("Message", "SMS"), ("InboundMessage", "SMSの返信"), ("User", "ユーザー"),
                ("Survey", "調査")]
ACTIONS = {
    "auth.login": "ログイン", "auth.login_failed": "ログイン失敗", "auth.logout": "ログアウト",
    "mutation.refused": "受け付けなかった操作", "resident.pii_read": "住民の個人情報を表示",
    "supporter.pii_read": "支援員の電話番号を表示", "resident.create": "住民を登録",
    "resident.update": "住民の情報を変更", "resident.erase": "住民の個人情報を消去",
    "resident.export": "住民の情報を開示用に出力", "registration.create": "申込",
    "registration.cancel": "申込の取消", "registration.attendance": "出欠の記録",
    "session.schedule": "教室・相談会を登録", "session.reschedule": "日時・定員の変更",
    "session.cancel": "中止", "assignment.create": "支援員の担当を登録",
    "assignment.delete": "支援員の担当を外す", "supporter.create": "支援員を登録",
    "supporter.update": "支援員の情報を変更", "venue.create": "会場を登録",
    "venue.update": "会場の情報を変更", "user.create": "ユーザーを作成",
    "user.deactivate": "ユーザーを無効に", "user.activate": "ユーザーを有効に",
    "user.reset_password": "パスワードの再設定", "user.change_password": "パスワードの変更",
    "user.set_password": "パスワードの変更（サーバーで）", "user.revoke_tokens": "すべての端末からログアウト",
    "user.unlock_login": "ログインのロック解除", "followup.create": "フォローアップを予定",
    "followup.complete": "フォローアップの結果", "message.resend": "SMSの再送",
}


def _user_of(users: list[dict[str, Any]], user_id: str) -> dict[str, Any] | None:
    return next((u for u in users if u["id"] == user_id), None)


async def _users_page(console: Console, *, status_code: int = 200,
                      unlock_values: dict[str, str] | None = None,
                      unlock_errors: dict[str, str] | None = None,
                      general: list[str] | None = None) -> Response:
    users = [e["node"] for e in (await console.query("ConsoleUsers"))["users"]["edges"]]
    params = console.request.query_params
    notice = ""
    done, who = params.get("done", ""), _user_of(users, params.get("user", ""))
    if done in DONE and who:
        notice = f"{who['displayName']}さん（{who['email']}）{DONE[done]}"
    return console.render("admin_users.html", status_code=status_code, title="ユーザー",
                          users=users, notice=notice, unlock_values=unlock_values or {},
                          unlock_errors=unlock_errors or {}, general=general or [])


@page(ADMIN)
async def user_list(console: Console) -> Response:
    return await _users_page(console)


async def _new_user_form(console: Console, values: dict[str, str], errors: dict[str, str],
                         general: list[str], status_code: int = 200) -> Response:
    supporters = [e["node"] for e in
                  (await console.query("ConsoleSupportersToLink"))["supporters"]["edges"]]
    return console.render("admin_user_form.html", status_code=status_code,
                          title="ユーザーを作成", values=values, errors=errors, general=general,
                          roles=ROLE_OPTIONS,
                          supporters=[(s["id"], s["displayName"]) for s in supporters])


@page(ADMIN)
async def user_new(console: Console) -> Response:
    return await _new_user_form(console, {"role": "COORDINATOR"}, {}, [])


@page(ADMIN)
async def user_create(console: Console) -> Response:
    form = await console.form()
    values = {name: str(form.get(name, "")) for name in
              ("email", "displayName", "role", "supporterId")}
    result = await console.mutate("ConsoleCreateUser", {"input": {
        "email": values["email"], "displayName": values["displayName"] or None,
        "role": values["role"] or "COORDINATOR",
        "password": str(form.get("password", "")) or None,
        "supporterId": values["supporterId"] or None}})
    payload = result.data.get("createUser") or {}
    if not payload.get("user"):
        errors, general = user_errors(payload)
        return await _new_user_form(console, values, errors, general, 400)
    if not payload.get("generatedPassword"):
        return redirect(f"/admin/users?done=created&user={payload['user']['id']}")
    # A generated password is shown this once, on this answer (never in a URL or a log).
    return _password_shown(console, payload["user"], payload["generatedPassword"],
                           "ユーザーを作成しました")


def _password_shown(console: Console, user: dict[str, Any], password: str, title: str
                    ) -> Response:
    response = console.render("admin_password_shown.html", title=title, user=user,
                              password=password)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _user_action(console: Console, operation: str, field: str, variables: dict[str, Any],
                       done: str) -> Response:
    await console.form()
    user_id = console.request.path_params["id"]
    result = await console.mutate(operation, {"input": {"userId": user_id, **variables}})
    payload = result.data.get(field) or {}
    if payload.get("user"):
        return redirect(f"/admin/users?{urlencode({'done': done, 'user': user_id})}")
    errors, general = user_errors(payload)
    if "userId" in errors and any(e["code"] == "NOT_FOUND" for e in payload["errors"]):
        return not_found_page(console)
    return await _users_page(console, status_code=400,
                             general=[*errors.values(), *general])


@page(ADMIN)
async def user_deactivate(console: Console) -> Response:
    return await _user_action(console, "ConsoleSetUserActive", "setUserActive",
                              {"active": False}, "deactivated")


@page(ADMIN)
async def user_activate(console: Console) -> Response:
    return await _user_action(console, "ConsoleSetUserActive", "setUserActive",
                              {"active": True}, "activated")


@page(ADMIN)
async def user_revoke(console: Console) -> Response:
    return await _user_action(console, "ConsoleRevokeUserTokens", "revokeUserTokens", {},
                              "revoked")


async def _password_form(console: Console, user: dict[str, Any], errors: dict[str, str],
                         general: list[str], status_code: int = 200) -> Response:
    return console.render("admin_password_form.html", status_code=status_code,
                          title="パスワードの再設定", user=user, errors=errors, general=general)


@page(ADMIN)
async def password_form(console: Console) -> Response:
    node = (await console.query("ConsoleUserForPassword",
                                {"id": console.request.path_params["id"]})).get("node")
    if not node or node.get("__typename") != "User":
        return not_found_page(console)
    return await _password_form(console, node, {}, [])


@page(ADMIN)
async def password_reset(console: Console) -> Response:
    form = await console.form()
    user_id = console.request.path_params["id"]
    result = await console.mutate("ConsoleResetPassword", {"input": {
        "userId": user_id, "password": str(form.get("password", "")) or None}})
    payload = result.data.get("resetPassword") or {}
    if payload.get("user"):
        if payload.get("generatedPassword"):
            return _password_shown(console, payload["user"], payload["generatedPassword"],
                                   "パスワードを再設定しました")
        return redirect(f"/admin/users?{urlencode({'done': 'reset', 'user': user_id})}")
    errors, general = user_errors(payload)
    node = (await console.query("ConsoleUserForPassword", {"id": user_id})).get("node")
    if not node or node.get("__typename") != "User":
        return not_found_page(console)
    return await _password_form(console, node, errors, general, 400)


@page(ADMIN)
async def unlock(console: Console) -> Response:
    form = await console.form()
    email = str(form.get("email", ""))
    result = await console.mutate("ConsoleUnlockLogin", {"input": {"email": email}})
    payload = result.data.get("unlockLogin") or {}
    if payload.get("user"):
        done = "unlocked" if payload["lockedCount"] else "not_locked"
        return redirect(f"/admin/users?{urlencode({'done': done, 'user': payload['user']['id']})}")
    errors, general = user_errors(payload)
    return await _users_page(console, status_code=400, unlock_values={"email": email},
                             unlock_errors=errors, general=general)


@page(ADMIN)
async def audit_log(console: Console) -> Response:
    params = console.request.query_params
    filters = {"action": params.get("action", "").strip(),
               "objectType": params.get("objectType", "").strip()}
    data = await console.query("ConsoleAuditLog", {
        "action": filters["action"] or None, "objectType": filters["objectType"] or None,
        "after": params.get("after") or None})
    log = data["auditLog"]
    next_url = ""
    if log["pageInfo"]["hasNextPage"]:
        next_url = "/admin/audit?" + urlencode(
            {**{k: v for k, v in filters.items() if v}, "after": log["pageInfo"]["endCursor"]})
    return console.render(
        "admin_audit.html", title="監査ログ", log=log, filters=filters, next_url=next_url,
        first_url="/admin/audit?" + urlencode({k: v for k, v in filters.items() if v}),
        paged=bool(params.get("after")), actions=ACTIONS,
        action_options=sorted(ACTIONS.items(), key=lambda item: item[0]),
        object_types=OBJECT_TYPES, object_names=dict(OBJECT_TYPES))


ROUTES = [
    Route("/admin/users", user_list, methods=["GET"]),
    Route("/admin/users/new", user_new, methods=["GET"]),
    Route("/admin/users/new", user_create, methods=["POST"]),
    Route("/admin/users/{id}/deactivate", user_deactivate, methods=["POST"]),
    Route("/admin/users/{id}/activate", user_activate, methods=["POST"]),
    Route("/admin/users/{id}/sign-out", user_revoke, methods=["POST"]),
    Route("/admin/users/{id}/password", password_form, methods=["GET"]),
    Route("/admin/users/{id}/password", password_reset, methods=["POST"]),
    Route("/admin/unlock", unlock, methods=["POST"]),
    Route("/admin/audit", audit_log, methods=["GET"]),
]
