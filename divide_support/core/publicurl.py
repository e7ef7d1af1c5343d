"""The service's public base URL: the one place links and webhook URLs start from.

Links handed out (csvUrl, inviteUrl, calendarFeedUrl, Venue.calendarUrl), the status-callback
URL given to Twilio with each SMS and the URL its signatures are checked against all come from
`public_base_url()`, so they always agree. PUBLIC_BASE_URL wins when it is set; otherwise
`serve` says where it listens (`serve_at`), so `serve --port 8080` hands out links on 8080.
Processes that serve nothing (`worker`, the tests) fall back to DEFAULT_BASE_URL.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from divide_support.core.settings import Settings, get_settings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
_WILDCARDS = ("", "0.0.0.0", "::")

_served: str | None = None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve_at(host: str, port: int) -> None:
    """`serve` listens on host:port: without PUBLIC_BASE_URL, links point there (an address
    that listens everywhere is reached at 127.0.0.1 from this machine)."""
    global _served
    _served = f"http://{_url_host('127.0.0.1' if host in _WILDCARDS else host)}:{port}"


def public_base_url(settings: Settings | None = None) -> str:
    """Without a trailing `/`: links are this plus a path."""
    configured = (settings or get_settings()).public_base_url
    return (configured or _served or DEFAULT_BASE_URL).rstrip("/")


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url_warnings(host: str | None, port: int | None) -> list[str]:
    """What an operator should know about the links this process will hand out (`serve` on
    host:port, or `worker` with None): a PUBLIC_BASE_URL on this machine but another port,
    one over plain http to another machine, none at all where others must reach it."""
    settings = get_settings()
    configured = settings.public_base_url
    problems: list[str] = []
    if configured:
        parts = urlsplit(configured)
        name = parts.hostname or ""
        if port is not None and _is_local(name) \
                and (parts.port or {"http": 80, "https": 443}[parts.scheme]) != port:
            problems.append(
                f"PUBLIC_BASE_URL ({configured}) points at this machine on port "
                f"{parts.port or {'http': 80, 'https': 443}[parts.scheme]}, but serve listens on "
                f"port {port}: links and Twilio callbacks will miss this server")
        if parts.scheme == "http" and not _is_local(name):
            problems.append(
                f"PUBLIC_BASE_URL ({configured}) is plain http to another machine: links carry "
                "calendar tokens and report URLs unencrypted; use https:// (behind a TLS proxy)")
        return problems
    base = public_base_url()
    if host is not None and host in _WILDCARDS:
        problems.append(
            f"PUBLIC_BASE_URL is unset: links point at {base}, which only this machine can open; "
            "set PUBLIC_BASE_URL to the address others use")
    if settings.sms_backend == "twilio":
        problems.append(
            f"PUBLIC_BASE_URL is unset: Twilio's status callbacks go to {base}/webhooks/twilio/status,"
            " which Twilio cannot reach; set PUBLIC_BASE_URL to the service's public https URL")
    return problems


def log_base_url_warnings(host: str | None, port: int | None) -> None:
    """Once, at start."""
    for problem in base_url_warnings(host, port):
        log.warning(problem)
