"""Who sent the current HTTP request, for the audit trail and the logs.

Every request gets an id generated here, on the server: a client may send X-Request-ID to
correlate with its own logs, and that id is kept beside ours, but it is never taken as ours
(a client could otherwise forge or reuse the id that audit rows are found by).
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class RequestInfo:
    request_id: str
    client_request_id: str | None = None
    client_address: str | None = None


_current: ContextVar[RequestInfo | None] = ContextVar("divide_support_request", default=None)


def current() -> RequestInfo | None:
    """The request being served, or None outside one (CLI, worker, tests calling services)."""
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    """The current request's id, or a fresh one for work outside a request."""
    info = _current.get()
    return info.request_id if info else new_request_id()


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def info_from_scope(scope: dict[str, Any]) -> RequestInfo:
    given = _header(scope, b"x-request-id") or ""
    client = scope.get("client")
    return RequestInfo(
        request_id=new_request_id(),
        client_request_id=given if _CLIENT_REQUEST_ID.fullmatch(given) else None,
        # uvicorn puts the forwarded address here when the proxy is trusted (--proxy-headers).
        client_address=client[0] if client else None,
    )


class RequestContextMiddleware:
    """Pure ASGI: sets the request context for the whole request (and the tasks it starts)
    and answers with our id in X-Request-ID (the client's own id, if any, in
    X-Client-Request-ID). An exception nothing else handled is logged here, under the
    request's id (the server would log it after the id is gone), and answered with a plain
    500 that carries the id."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = info_from_scope(scope)
        scope.setdefault("state", {})["request_info"] = info
        token = _current.set(info)
        started = False

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"x-request-id", b"x-client-request-id")]
                headers.append((b"x-request-id", info.request_id.encode()))
                if info.client_request_id:
                    headers.append((b"x-client-request-id", info.client_request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in request %s", info.request_id)
            if started:  # too late for a 500: the server closes the connection
                return
            await send_with_id({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"text/plain; charset=utf-8")]})
            await send_with_id({"type": "http.response.body", "body": (
                f"Internal Server Error (request id {info.request_id})").encode()})
        finally:
            _current.reset(token)
