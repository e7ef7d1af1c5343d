"""SMS that did not reach residents, with the API's reasons; replies from residents that
staff should read (they may want no more SMS); resending a failed message."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from divide_support.web.pages import STAFF, Console, page, redirect
from divide_support.web.views.people import LABELS

NOTICES = {"resent": "SMSをもう一度送ります（送信待ちにしました）。",
           "reviewed": "返信を確認済みにしました。",
           "opted-out": "SMSの配信を停止しました。返信は確認済みにしました。"}


async def _page(console: Console, *, notice: str = "", problems: list[str] | None = None,
                status_code: int = 200) -> Response:
    data = await console.query("MessagesProblems")
    not_sent = sorted((edge["node"] for key in ("failed", "undelivered")
                       for edge in data[key]["edges"]),
                      key=lambda m: m["sendAfter"], reverse=True)
    return console.render(
        "messages.html", status_code=status_code, title="SMS・返信", notice=notice,
        problems=problems or [], not_sent=not_sent,
        not_sent_total=data["failed"]["totalCount"] + data["undelivered"]["totalCount"],
        skipped=data["skipped"], replies=data["smsReplies"], labels=LABELS)


@page(STAFF)
async def messages(console: Console) -> Response:
    return await _page(console, notice=NOTICES.get(console.request.query_params.get("done", ""),
                                                   ""))


async def _act(console: Console, operation: str, variables: dict[str, str], done: str
               ) -> Response:
    result = await console.mutate(operation, variables)
    payload = next(iter(result.data.values()), None) or {}
    if payload.get("errors"):
        return await _page(console, status_code=400,
                           problems=[e["message"] for e in payload["errors"]])
    return redirect(f"/messages?done={done}")


@page(STAFF)
async def resend(console: Console) -> Response:
    await console.form()
    return await _act(console, "MessagesResend",
                      {"messageId": console.request.path_params["id"]}, "resent")


@page(STAFF)
async def mark_reviewed(console: Console) -> Response:
    await console.form()
    return await _act(console, "MessagesMarkReviewed",
                      {"replyId": console.request.path_params["id"]}, "reviewed")


@page(STAFF)
async def opt_out_from_reply(console: Console) -> Response:
    form = await console.form()
    return await _act(console, "MessagesOptOutFromReply",
                      {"replyId": console.request.path_params["id"],
                       "residentId": str(form.get("residentId", ""))}, "opted-out")


ROUTES = [
    Route("/messages", messages, methods=["GET"]),
    Route("/messages/{id}/resend", resend, methods=["POST"]),
    Route("/messages/replies/{id}/reviewed", mark_reviewed, methods=["POST"]),
    Route("/messages/replies/{id}/opt-out", opt_out_from_reply, methods=["POST"]),
]
