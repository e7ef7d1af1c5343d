"""Prometheus metrics: what `/metrics` shows, and the only place metric objects are defined.

Label values are chosen here, never taken from a request as they come: a route is its
template (`/calendar/registrations/{token}.ics`, never the path: calendar tokens are
capabilities), a path no route knows is `unmatched`, a method outside the usual ones `OTHER`,
and a GraphQL operation name is kept only while the set of names stays small (callers choose
names; see `OperationNames`). Nothing about a person is ever a label: the outbox is counted by
municipality code and status only.

Three kinds of numbers:
- counted as they happen, in this process: HTTP requests (MetricsMiddleware), GraphQL
  operations (api/metrics.py records them through `observe_graphql_operation`), waits for a
  pooled database connection (core/db_backend.py);
- read at scrape time from this process: the database pool's size, idle and busy connections;
- read at scrape time from the database, the same from every replica: the SMS outbox by
  status and the dispatcher's lag (messaging/dispatcher.py `outbox_state`, handed in by app.py
  so that core does not depend on messaging).

Access (`metrics_access`): with METRICS_TOKEN set, a scraper sends `Authorization: Bearer
<token>`; unset, only clients on this machine in the embedded mode, and nobody once
DATABASE_URL is set (the numbers tell outsiders about load and outbox sizes).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from tortoise import connections

from divide_support.core.settings import Settings, get_settings

log = logging.getLogger(__name__)

PREFIX = "divide_support"
# Seconds; reports and CSV exports may take a few.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# `*_created` series (when each label set first appeared) only double the output here.
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    with contextlib.suppress(ValueError):  # already registered (a module reload)
        REGISTRY.register(_collector)

HTTP_REQUESTS = Counter(
    f"{PREFIX}_http_requests", "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"], registry=REGISTRY)
HTTP_DURATION = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route template and method.",
    ["route", "method"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
GRAPHQL_OPERATIONS = Counter(
    f"{PREFIX}_graphql_operations",
    "GraphQL operations, by operation name (bounded: see README), type and outcome "
    "(error: the answer carries GraphQL errors).",
    ["operation", "type", "outcome"], registry=REGISTRY)
GRAPHQL_DURATION = Histogram(
    f"{PREFIX}_graphql_operation_duration_seconds",
    "Time to parse, validate and execute one GraphQL operation, by operation name and type.",
    ["operation", "type"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
DB_POOL_ACQUIRE = Histogram(
    f"{PREFIX}_db_pool_acquire_seconds",
    "Time a query outside a transaction waited for a pooled database connection "
    "(DB_ACQUIRE_TIMEOUT_SECONDS bounds it).",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0), registry=REGISTRY)

# --- HTTP requests ---------------------------------------------------------------------------

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(routes: Sequence[BaseRoute], scope: dict[str, Any]) -> str:
    """The template of the route that serves `scope` (a path-only match too: that route
    answers 405), or `unmatched`. Matched the way Starlette's router matches, before it runs."""
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            template = route.path + "/{path}"
        elif isinstance(route, Route):
            template = route.path
        else:
            template = UNMATCHED
        if match is Match.FULL:
            return template
        partial = partial or template
    return partial or UNMATCHED


class MetricsMiddleware:
    """Pure ASGI, outermost: counts every HTTP answer (the 500s the request-context middleware
    writes too) by route template, method and status, and times it to its last byte."""

    def __init__(self, app: Any, *, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_template(self.routes, scope)
        method = scope.get("method", "")
        method = method if method in _METHODS else "OTHER"
        status = "none"  # the client went away before an answer started
        started = time.perf_counter()

        async def send_counted(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        except BaseException:
            if status == "none":
                status = "500"
            raise
        finally:
            HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(route, method, status).inc()


# --- GraphQL operations ----------------------------------------------------------------------

ANONYMOUS = "anonymous"
OTHER = "other"
_OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass
class OperationNames:
    """Which operation names become label values. Callers choose names, so each distinct
    name would be a new series: a name is kept only if it looks like a GraphQL name of at
    most 64 characters and the set has room; names first seen from signed-in callers have
    `signed_in` places, names first seen from anonymous callers (anyone on the network) only
    `anonymous` places, so an outsider cannot crowd the staff's operations out."""

    signed_in: int = 150
    anonymous: int = 20
    _kept: dict[str, bool] = field(default_factory=dict)  # name -> first seen signed in
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def label(self, name: str | None, *, signed_in: bool) -> str:
        if not name:
            return ANONYMOUS
        if not _OPERATION_NAME.fullmatch(name):
            return OTHER
        if name in self._kept:
            return name
        with self._lock:
            if name in self._kept:
                return name
            used = sum(1 for by_staff in self._kept.values() if by_staff == signed_in)
            if used >= (self.signed_in if signed_in else self.anonymous):
                return OTHER
            self._kept[name] = signed_in
            return name


OPERATION_NAMES = OperationNames()


def observe_graphql_operation(name: str | None, operation_type: str, *, ok: bool,
                              signed_in: bool, seconds: float) -> None:
    """`operation_type`: query, mutation or subscription (anything else is `unknown`)."""
    label = OPERATION_NAMES.label(name, signed_in=signed_in)
    kind = operation_type if operation_type in ("query", "mutation", "subscription") else "unknown"
    GRAPHQL_OPERATIONS.labels(label, kind, "ok" if ok else "error").inc()
    GRAPHQL_DURATION.labels(label, kind).observe(seconds)


# --- read at scrape time ---------------------------------------------------------------------

def pool_families() -> list[Metric]:
    """The asyncpg pool behind Tortoise's default connection (none yet: zeros)."""
    pool = None
    with contextlib.suppress(Exception):  # Tortoise not initialised in this process
        pool = getattr(connections.get("default"), "_pool", None)
    size = pool.get_size() if pool is not None else 0
    idle = pool.get_idle_size() if pool is not None else 0
    settings = get_settings()
    families = []
    for name, documentation, value in (
        ("db_pool_connections", "Open connections in the database pool.", size),
        ("db_pool_idle_connections", "Open connections not lent to a query.", idle),
        ("db_pool_in_use_connections", "Connections lent to a query right now.", size - idle),
        ("db_pool_max_connections", "DB_POOL_MAX: the most the pool opens.",
         pool.get_max_size() if pool is not None else max(settings.db_pool_min,
                                                             settings.db_pool_max)),
    ):
        family = GaugeMetricFamily(f"{PREFIX}_{name}", documentation)
        family.add_metric([], value)
        families.append(family)
    return families


@dataclass(frozen=True)
class OutboxState:
    """The SMS outbox as one query sees it (messaging/dispatcher.py `outbox_state`)."""

    # (municipality code, status) -> messages; every status of every municipality, zeros too
    messages: dict[tuple[str, str], int]
    # municipality code -> messages due and not yet sent
    due: dict[str, int]
    # municipality code -> seconds since the oldest of those became due (0: none)
    lag_seconds: dict[str, float]


def outbox_families(state: OutboxState) -> list[Metric]:
    messages = GaugeMetricFamily(
        f"{PREFIX}_sms_outbox_messages", "SMS in the outbox, by municipality code and status.",
        labels=["municipality", "status"])
    for (code, status), count in sorted(state.messages.items()):
        messages.add_metric([code, status], count)
    due = GaugeMetricFamily(
        f"{PREFIX}_sms_due_messages",
        "SMS whose time has come and that no worker has sent yet (PENDING and due, or SENDING).",
        labels=["municipality"])
    lag = GaugeMetricFamily(
        f"{PREFIX}_sms_dispatch_lag_seconds",
        "How long the oldest SMS that is due and not yet sent has been due (0: none).",
        labels=["municipality"])
    for code in sorted(state.lag_seconds):
        due.add_metric([code], state.due.get(code, 0))
        lag.add_metric([code], state.lag_seconds[code])
    return [messages, due, lag]


Scraper = Callable[[], Awaitable[Iterable[Metric]]]
SCRAPE_TIMEOUT_SECONDS = 5.0


class _Snapshot(Collector):
    """The process's registry plus what this scrape read from the database."""

    def __init__(self, extra: list[Metric]) -> None:
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from self.extra


async def _scrape(scrapers: Sequence[Scraper]) -> list[Metric]:
    extra: list[Metric] = pool_families()
    ok = 1
    for scraper in scrapers:
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS):
                extra.extend(await scraper())
        except Exception:  # the database is down or slow: the other numbers still count
            log.warning("metrics: reading the database failed", exc_info=True)
            ok = 0
    success = GaugeMetricFamily(
        f"{PREFIX}_metrics_database_up",
        "1 when this scrape read the outbox from the database, 0 when that failed.")
    success.add_metric([], ok)
    extra.append(success)
    return extra


# --- /metrics --------------------------------------------------------------------------------

def _is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return (mapped or ip).is_loopback


def metrics_access(request: Request, settings: Settings) -> Response | None:
    """None when the caller may read /metrics, else the answer to give."""
    if settings.metrics_token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
                given.strip().encode(), settings.metrics_token.encode()):
            return None
        return PlainTextResponse(
            "認証が必要です（Authorization: Bearer に METRICS_TOKEN の値を付けてください）。",
            status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    if not settings.embedded:
        return PlainTextResponse(
            "ページが見つかりません（/metrics を使うには METRICS_TOKEN を設定してください）。",
            status_code=404)
    if not _is_loopback(request.client.host if request.client else None):
        return PlainTextResponse(
            "このアドレスからは読めません（組み込みモードの /metrics は同じマシンからだけ読めます。"
            "ほかから読むには METRICS_TOKEN を設定してください）。", status_code=403)
    return None


def metrics_endpoint(*scrapers: Scraper) -> Callable[[Request], Awaitable[Response]]:
    """The /metrics route; `scrapers` read database-wide numbers at scrape time."""

    async def metrics(request: Request) -> Response:
        refused = metrics_access(request, get_settings())
        if refused is not None:
            return refused
        extra = await _scrape(scrapers)
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        body = encoder(_Snapshot(extra))
        return Response(body, headers={"Content-Type": content_type})

    return metrics
