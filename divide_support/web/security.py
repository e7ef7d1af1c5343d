"""HTTP security for every response, in one place: the headers browsers act on, and CORS.

The policy is strict because it can be: every page we serve (GraphiQL today, the staff console
later) loads scripts and styles only from this server and has no inline script or style.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from divide_support.core.publicurl import public_base_url
from divide_support.core.settings import Settings

GRAPHIQL_DIALOG_STYLE = "sha256-Y/huXlwoYkVyQlxwSVcCi1RCDGDCSVBzDt0hYP9qlTc="

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    # The one inline <style> GraphiQL's dialogs inject (react-remove-scroll-bar's scroll lock,
    # identical on every screen with the page's stylesheet): allowed by its hash, not by
    # 'unsafe-inline'. Another GraphiQL build has another one; the browser test shows it.
    f"style-src 'self' '{GRAPHIQL_DIALOG_STYLE}'",
    "img-src 'self' data:",
    # GraphiQL's stylesheet carries its fonts as data: URLs.
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

# Nothing we serve uses any of these; an injected script or a framing page gets none of them.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "geolocation",
    "gyroscope", "hid", "magnetometer", "microphone", "midi", "payment", "screen-wake-lock",
    "serial", "usb", "xr-spatial-tracking",
))

HSTS = "max-age=31536000"

_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    # Capability tokens live in calendar URLs: never hand a URL of ours to another site.
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", PERMISSIONS_POLICY),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


class SecurityHeadersMiddleware:
    """Pure ASGI: adds the headers to every HTTP response that does not set them itself, and
    `Cache-Control: no-store` to every response without its own (answers carry personal data;
    static assets are revalidated instead)."""

    def __init__(self, app: Any, *, hsts: bool) -> None:
        self.app = app
        self.headers = (*_HEADERS, ("Strict-Transport-Security", HSTS)) if hsts else _HEADERS

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    headers.setdefault(name, value)
                headers.setdefault("Cache-Control", "no-cache" if static else "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def security_middleware(settings: Settings) -> list[Middleware]:
    """The headers on everything; CORS only for the origins CORS_ALLOWED_ORIGINS names (none by
    default: no CORS header at all, so a page on another origin cannot read an answer)."""
    middleware = [Middleware(SecurityHeadersMiddleware,
                             hsts=public_base_url(settings).lower().startswith("https://"))]
    if settings.cors_allowed_origins:
        middleware.append(Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
            # Bearer tokens, never cookies: no credentialed cross-origin requests.
            allow_credentials=False,
            max_age=600,
        ))
    return middleware
