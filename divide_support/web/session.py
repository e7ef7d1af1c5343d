"""The console's sign-in: an HttpOnly, SameSite cookie holding an API token (issued by the
API's `login`, revoked by its `logout`, expiring like every token), and CSRF tokens.

The CSRF token of a signed-in page is an HMAC of the session token: a page on another site
can neither read the cookie nor compute it. Before sign-in, the login form carries a random
value that must match a cookie of its own (double submit)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from divide_support.accounts.service import SESSION_COOKIE
from divide_support.core.publicurl import public_base_url

LOGIN_CSRF_COOKIE = "ds_login_csrf"
CSRF_FIELD = "csrf_token"


def session_token(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or public_base_url().startswith("https://")


def set_session(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True,
                        samesite="lax", secure=_secure(request))


def set_preference(response: Response, request: Request, name: str, value: str,
                   max_age: int) -> None:
    """A choice the console remembers (the venue of the home page): the same flags as the
    session's, so under https it never travels in clear text nor can be planted over http."""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=_secure(request))


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=_secure(request))


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"divide-support console csrf", hashlib.sha256).hexdigest()


def login_csrf(request: Request) -> str:
    """The login form's value: the cookie's when there is one, else a new one."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def set_login_csrf(response: Response, request: Request, value: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, value, max_age=3600, path="/login", httponly=True,
                        samesite="strict", secure=_secure(request))


def csrf_ok(request: Request, submitted: str, *, login: bool = False) -> bool:
    expected = (request.cookies.get(LOGIN_CSRF_COOKIE, "") if login
                else (csrf_for(session_token(request)) if session_token(request) else ""))
    return bool(expected) and hmac.compare_digest(expected.encode(), (submitted or "").encode())
