"""/metrics: what it counts after real requests, what it never shows (calendar tokens, raw
paths, made-up operation names, anything about a person), the outbox and the dispatcher's lag
as the database holds them (read as the service role), and who may read it."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import factories
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from divide_support.core.actor import Role
from divide_support.core.metrics import OTHER, OperationNames
from divide_support.messaging.models import Message, MessageKind, MessageStatus
from divide_support.scheduling import service as scheduling

TOKEN = "metrics-scraper-token-0123456789"

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@contextlib.asynccontextmanager
async def app_client(address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app made now (its middleware reads the settings as they are now),
    calling from `address`."""
    from divide_support.app import create_app

    transport = httpx.ASGITransport(app=create_app(init_orm=False), client=(address, 40123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def scrape(client: httpx.AsyncClient, **headers: str) -> tuple[str, Samples]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text, parse(response.text)


def graphql(client: httpx.AsyncClient, query: str, token: str | None = None,
            operation: str | None = None, variables: dict | None = None):
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body: dict = {"query": query, "variables": variables}
    if operation is not None:
        body["operationName"] = operation
    return client.post("/graphql", json=body, headers=headers)


@pytest.fixture
def embedded(settings_env):
    """The embedded mode without METRICS_TOKEN: /metrics open to this machine only."""
    settings_env(DATABASE_URL=None, METRICS_TOKEN=None)


# --- requests ------------------------------------------------------------------------------

async def test_requests_are_counted_by_route_template_and_operation_never_by_path(town, embedded):
    session = await factories.session(town.coordinator, factories.at(days=3, hour=10))
    resident = await factories.resident(town.coordinator, "鬼塚", "菫子", sms=True)
    seat = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                     resident_id=resident.id)
    invite = f"/calendar/registrations/{seat.calendar_token}.ics"
    unknown_token = secrets.token_hex(16)
    wandering = f"/nowhere/{secrets.token_hex(12)}/鬼塚"
    coordinator = town.tokens[Role.COORDINATOR]

    async with app_client() as client:
        _, before = await scrape(client)
        started = time.perf_counter()
        for _ in range(3):
            answer = await graphql(client, "query WhoAmI { me { email role } }", coordinator)
            assert answer.json()["data"]["me"]["role"] == "COORDINATOR"
        created = await graphql(
            client, "mutation NewVenue { createVenue(input: {name: \"北公民館\", "
            "kind: COMMUNITY_CENTRE, capacity: 20}) { venue { id } errors { code } } }", coordinator)
        assert created.json()["data"]["createVenue"]["venue"]["id"]
        assert (await graphql(client, "{ __typename }")).status_code == 200
        refused = await graphql(client, "query PeopleList { residents { totalCount } }",
                                town.tokens[Role.PLANNER])
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        # operationName is the caller's to choose: neither Japanese nor markup becomes a label.
        odd = await graphql(client, "query Fine { __typename }", operation="鬼塚<script>")
        assert odd.status_code == 200 and odd.json()["errors"]
        assert (await client.get(invite)).status_code == 200
        assert (await client.get(f"/calendar/registrations/{unknown_token}.ics")).status_code == 404
        assert (await client.get(wandering)).status_code == 404
        assert (await client.post("/healthz")).status_code == 405
        elapsed = time.perf_counter() - started
        text, after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "divide_support_http_requests_total"
    assert moved(requests, route="/graphql", method="POST", status="200") == 7
    assert moved(requests, route="/calendar/registrations/{token}.ics", method="GET",
                 status="200") == 1
    assert moved(requests, route="/calendar/registrations/{token}.ics", method="GET",
                 status="404") == 1
    assert moved(requests, route="unmatched", method="GET", status="404") == 1
    assert moved(requests, route="/healthz", method="POST", status="405") == 1
    # The first scrape was answered before the second one was read: it counts.
    assert moved(requests, route="/metrics", method="GET", status="200") == 1

    duration = "divide_support_http_request_duration_seconds"
    assert moved(f"{duration}_count", route="/graphql", method="POST") == 7
    assert 0 < moved(f"{duration}_sum", route="/graphql", method="POST") <= elapsed
    assert moved(f"{duration}_bucket", route="/graphql", method="POST", le="+Inf") == 7
    assert moved(f"{duration}_bucket", route="/graphql", method="POST", le="30.0") == 7
    buckets = sorted((float(dict(labels)["le"]), sample) for (name, labels), sample
                     in after.items() if name == f"{duration}_bucket"
                     and dict(labels).get("route") == "/graphql"
                     and dict(labels).get("method") == "POST")
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)  # cumulative

    operations = "divide_support_graphql_operations_total"
    assert moved(operations, operation="WhoAmI", type="query", outcome="ok") == 3
    assert moved(operations, operation="NewVenue", type="mutation", outcome="ok") == 1
    assert moved(operations, operation="anonymous", type="query", outcome="ok") == 1
    assert moved(operations, operation="PeopleList", type="query", outcome="error") == 1
    assert moved(operations, operation=OTHER, type="unknown", outcome="error") == 1
    latency = "divide_support_graphql_operation_duration_seconds"
    assert moved(f"{latency}_count", operation="WhoAmI", type="query") == 3
    assert moved(f"{latency}_bucket", operation="WhoAmI", type="query", le="+Inf") == 3
    assert 0 < moved(f"{latency}_sum", operation="WhoAmI", type="query") <= elapsed

    # The pool behind the requests: open, within DB_POOL_MAX, and idle once they are done.
    pool = {name: value(after, f"divide_support_db_pool_{name}") for name in (
        "connections", "idle_connections", "in_use_connections", "max_connections")}
    assert pool["max_connections"] == 10
    assert 1 <= pool["connections"] <= pool["max_connections"]
    assert pool["in_use_connections"] == pool["connections"] - pool["idle_connections"]
    assert pool["in_use_connections"] >= 0
    assert value(after, "divide_support_db_pool_acquire_seconds_count") > value(
        before, "divide_support_db_pool_acquire_seconds_count")
    assert value(after, "divide_support_metrics_database_up") == 1
    assert "process_cpu_seconds_total" in text  # the process's own numbers come along

    # What the paths and documents held stays out.
    for secret in (seat.calendar_token, seat.calendar_token[:8], unknown_token, wandering,
                   "/nowhere", "鬼塚", "菫子", "<script>", coordinator, "北公民館"):
        assert secret not in text, secret


async def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(db, embedded):
    async with app_client() as client:
        response = await client.get("/metrics", headers={
            "Accept": "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert "divide_support_http_requests_total" in response.text


def test_operation_names_are_bounded_and_outsiders_cannot_crowd_out_the_staff():
    names = OperationNames(signed_in=3, anonymous=2)
    assert names.label(None, signed_in=True) == "anonymous"
    assert names.label("", signed_in=False) == "anonymous"
    for refused in ("鬼塚", "has-dash", "9starts_with_digit", "a" * 65, "x y", "<b>"):
        assert names.label(refused, signed_in=True) == OTHER, refused
    assert names.label("a" * 64, signed_in=False) == "a" * 64
    # Anonymous callers fill only their own places...
    assert names.label("Spam0", signed_in=False) == "Spam0"
    assert names.label("Spam1", signed_in=False) == OTHER
    assert names.label("a" * 64, signed_in=False) == "a" * 64  # kept names stay
    # ...so the staff's operations still get theirs.
    assert [names.label(n, signed_in=True) for n in ("Today", "Seats", "Calls", "More")] == [
        "Today", "Seats", "Calls", OTHER]
    # A kept name is the same label for everyone.
    assert names.label("Today", signed_in=False) == "Today"


# --- the outbox ----------------------------------------------------------------------------

async def _seats(town, residents: int) -> list[int]:
    """Registrations of SMS residents for a class in three days: each plans a confirmation
    (due now) and two reminders (due later). Returns the confirmations' ids."""
    session = await factories.session(town.coordinator, factories.at(days=3, hour=10))
    for _ in range(residents):
        person = await factories.resident(town.coordinator, sms=True)
        await scheduling.register(actor=town.coordinator, session_id=session.id,
                                  resident_id=person.id)
    return list(await Message.filter(municipality_id=town.municipality.id,
                                     kind=MessageKind.CONFIRMATION).order_by("id")
                .values_list("id", flat=True))


async def test_outbox_gauges_are_the_rows_per_status_and_the_lag_is_the_oldest_due(
        town, other_town, embedded):
    sent, failed, overdue, backing_off = await _seats(town, 4)
    [claimed] = await _seats(other_town, 1)
    now = datetime.now(UTC)
    await Message.filter(id=sent).update(status=MessageStatus.SENT, sent_at=now)
    await Message.filter(id=failed).update(status=MessageStatus.FAILED, error_code="21211")
    await Message.filter(id=overdue).update(send_after=now - timedelta(seconds=120))
    # Due by its time but waiting out a retry's backoff: not late yet.
    await Message.filter(id=backing_off).update(send_after=now - timedelta(hours=1),
                                                next_attempt_at=now + timedelta(minutes=10))
    # Claimed by a worker that has not sent it: still owed to the resident.
    await Message.filter(id=claimed).update(status=MessageStatus.SENDING, claimed_by="w1",
                                            send_after=now - timedelta(seconds=40))

    async with app_client() as client:
        text, samples = await scrape(client)

    outbox = "divide_support_sms_outbox_messages"
    for municipality in (town.municipality, other_town.municipality):
        for status in MessageStatus:
            rows = await Message.filter(municipality_id=municipality.id, status=status).count()
            assert value(samples, outbox, municipality=municipality.code,
                         status=status.value) == rows, (municipality.code, status)
    # The rows the test made, spelled out.
    assert value(samples, outbox, municipality="142034", status="PENDING") == 10
    assert value(samples, outbox, municipality="142034", status="SENT") == 1
    assert value(samples, outbox, municipality="142034", status="FAILED") == 1
    assert value(samples, outbox, municipality="222127", status="SENDING") == 1
    assert value(samples, outbox, municipality="222127", status="PENDING") == 2
    assert (outbox, frozenset({("municipality", "142034"), ("status", "SKIPPED")})) in samples

    elapsed = (datetime.now(UTC) - now).total_seconds()
    assert value(samples, "divide_support_sms_due_messages", municipality="142034") == 1
    assert value(samples, "divide_support_sms_due_messages", municipality="222127") == 1
    lag = "divide_support_sms_dispatch_lag_seconds"
    assert 120 - 2 <= value(samples, lag, municipality="142034") <= 120 + elapsed + 2
    assert 40 - 2 <= value(samples, lag, municipality="222127") <= 40 + elapsed + 2

    # Once sent, nothing is late.
    await Message.filter(id__in=[overdue, claimed]).update(status=MessageStatus.SENT)
    async with app_client() as client:
        _, samples = await scrape(client)
    assert value(samples, lag, municipality="142034") == 0
    assert value(samples, lag, municipality="222127") == 0
    assert value(samples, "divide_support_sms_due_messages", municipality="142034") == 0

    # Labels name municipalities by code and nothing about anyone.
    bodies = await Message.filter(municipality_id=town.municipality.id).values_list("body", "to")
    for body, number in bodies:
        assert number not in text and body.splitlines()[0] not in text
    assert "平塚" not in text and "焼津" not in text


# --- who may read it -----------------------------------------------------------------------

async def test_embedded_without_a_token_only_this_machine_reads_metrics(db, embedded):
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        async with app_client(address) as client:
            assert (await client.get("/metrics")).status_code == 200, address
    for address in ("203.0.113.7", "192.168.1.20", "::ffff:203.0.113.7"):
        async with app_client(address) as client:
            refused = await client.get("/metrics")
        assert refused.status_code == 403, address
        assert "METRICS_TOKEN" in refused.text and "divide_support_" not in refused.text


async def test_with_a_database_url_and_no_token_metrics_are_off(db, settings_env):
    settings_env(DATABASE_URL="postgres://app@db.example.jp/divide_support", METRICS_TOKEN=None)
    async with app_client("127.0.0.1") as client:
        refused = await client.get("/metrics")
    assert refused.status_code == 404
    assert "METRICS_TOKEN" in refused.text and "divide_support_" not in refused.text


@pytest.mark.parametrize("database_url", [None, "postgres://app@db.example.jp/divide_support"])
async def test_with_a_token_only_its_bearer_reads_metrics(db, settings_env, database_url):
    settings_env(DATABASE_URL=database_url, METRICS_TOKEN=TOKEN)
    for address in ("127.0.0.1", "203.0.113.7"):
        async with app_client(address) as client:
            for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789abc"},
                            {"Authorization": f"Bearer {TOKEN}x"},
                            {"Authorization": f"Bearer {TOKEN[:-1]}"},
                            {"Authorization": f"Basic {TOKEN}"},
                            {"Authorization": TOKEN}):
                refused = await client.get("/metrics", headers=headers)
                assert refused.status_code == 401, (address, headers)
                assert refused.headers["www-authenticate"] == 'Bearer realm="metrics"'
                assert "divide_support_" not in refused.text
            # Not from the query string either (it would land in access logs).
            assert (await client.get(f"/metrics?token={TOKEN}")).status_code == 401
            text, _ = await scrape(client, Authorization=f"Bearer {TOKEN}")
            assert "divide_support_http_requests_total" in text
            assert TOKEN not in text


def test_a_short_metrics_token_is_refused_at_start(tmp_path):
    script = Path(sys.executable).with_name("divide-support")
    env = {**os.environ, "METRICS_TOKEN": "short"}
    done = subprocess.run([str(script), "export-schema", "--output", str(tmp_path / "s")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "METRICS_TOKEN" in done.stderr, done.stderr
