"""Driving the staff console over HTTP in-process (httpx, no browser): sign in as a person
would, read the CSRF token off the page they are on, post its forms."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from conftest import PASSWORD

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def text_of(page: str) -> str:
    """What a person reads: the page without tags, scripts or extra spaces."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return _SPACE.sub(" ", html.unescape(_TAGS.sub(" ", body))).strip()


class ConsoleClient:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.page = ""

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.get(path, **kwargs)
        if "text/html" in response.headers.get("content-type", ""):
            self.page = response.text
        return response

    async def post(self, path: str, data: dict[str, Any] | None = None, *,
                   csrf: str | None = None, follow: bool = True) -> httpx.Response:
        """Post a form with the CSRF token of the page last opened (or `csrf`)."""
        fields = {"csrf_token": csrf if csrf is not None else csrf_of(self.page), **(data or {})}
        response = await self.client.post(path, data=fields, follow_redirects=follow)
        if "text/html" in response.headers.get("content-type", ""):
            self.page = response.text
        return response

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        await self.get("/login")
        return await self.post("/login", {"email": email, "password": password})

    def text(self) -> str:
        return text_of(self.page)
