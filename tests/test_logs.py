"""What the logs say, and what they never say.

The scenario test runs the real `divide-support serve` and `divide-support worker --once`
(SMS through the console backend) against a database of its own, drives registration, SMS,
calendar links and searches over HTTP, and then searches everything both processes wrote for
the residents' names, numbers, message bodies and tokens, in every spelling they could take
on the way (as typed, E.164, full-width, percent-encoded, JSON-escaped)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode, urlsplit

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from divide_support.core.ids import parse_global_id
from divide_support.core.logging import JsonFormatter, SafeFormatter, mask_target

SCRIPT = Path(sys.executable).with_name("divide-support")
PASSWORD = "logs-test-password-7"
STAFF_EMAIL = "logs-coordinator@example.jp"

# Distinctive people, so that any trace of them in the log is theirs.
RESIDENTS = [
    {"familyName": "鬼塚", "givenName": "菫子", "kana": "オニヅカ スミレコ",
     "phone": "090-3141-5926", "landline": "0463-27-1828", "contactPreference": "SMS",
     "smsConsent": True, "notes": "耳が遠いのでゆっくり話す"},
    {"familyName": "勅使河原", "givenName": "百合江", "kana": "テシガワラ ユリエ",
     "phone": "０８０－２７１８－２８１８", "contactPreference": "SMS", "smsConsent": True},
    {"familyName": "御手洗", "givenName": "千鶴", "kana": "ミタライ チヅル",
     "landline": "0465-86-4455", "contactPreference": "PHONE_CALL"},
]
SUPPORTER = {"displayName": "五月女 巌", "kana": "サオトメ イワオ", "affiliation": "NPO",
             "phone": "070-5772-1566", "certified": True}
NUMBERS = ["09031415926", "0463271828", "08027182818", "0465864455", "07057721566"]
# As staff type them into the search box: kanji, kana (also half-width), numbers in any form.
SEARCH_TERMS = ["鬼塚", "オニヅカ", "ｵﾆﾂﾞｶ", "テシガワラ ユリエ", "090-3141-5926", "31415926",
                "０８０－２７１８－２８１８", "0465-86-4455", "+819031415926"]


# --- helpers ---------------------------------------------------------------------------

def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env.update(DATABASE_URL=database_url, LOG_LEVEL="DEBUG", SMS_BACKEND="console",
               SMS_POLL_SECONDS="0.2")
    return env


async def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    done = await asyncio.to_thread(subprocess.run, [str(SCRIPT), *args], env=env, cwd=cwd,
                                   capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def _full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "0" <= ch <= "9" else "－" if ch == "-" else ch
                   for ch in text)


def _spellings(text: str) -> set[str]:
    """Every form a value can take on its way into a log line."""
    forms = {text, quote(text), quote(text).lower(), quote_plus(text), quote(text, safe="")}
    escaped = json.dumps(text)[1:-1]  # \uXXXX escapes, as ensure_ascii writes them
    forms |= {escaped, escaped.upper().replace("\\U", "\\u")}
    return {form for form in forms if form}


def _number_spellings(national: str) -> set[str]:
    """090-1234-5678, 09012345678, +819012345678, 819012345678, the subscriber part, ..."""
    e164 = "+81" + national[1:]
    if national.startswith(("070", "080", "090")):
        hyphenated = f"{national[:3]}-{national[3:7]}-{national[7:]}"
    else:
        hyphenated = f"{national[:4]}-{national[4:6]}-{national[6:]}"
    forms = {national, hyphenated, e164, e164[1:], national[-8:], hyphenated[-9:],
             _full_width(national), _full_width(hyphenated)}
    return {spelling for form in forms for spelling in _spellings(form)}


def _token_of(url: str) -> str:
    return url.rsplit("/", 1)[1].removesuffix(".ics")


class Api:
    """The scenario's HTTP client: remembers every request id the server answered with."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.token: str | None = None
        self.request_ids: list[str] = []

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _seen(self, response: httpx.Response) -> httpx.Response:
        self.request_ids.append(response.headers["x-request-id"])
        return response

    async def post(self, query: str, variables: dict | None = None) -> dict:
        response = self._seen(await self.client.post(
            "/graphql", content=json.dumps({"query": query, "variables": variables}),
            headers={**self._headers(), "Content-Type": "application/json"}))
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict | None = None) -> dict:
        body = await self.post(query, variables)
        assert "errors" not in body, body
        for value in body["data"].values():
            assert not (isinstance(value, dict) and value.get("errors")), body
        return body["data"]

    async def get_graphql(self, query: str, variables: dict | None = None) -> dict:
        params = {"query": query}
        if variables is not None:
            params["variables"] = json.dumps(variables)
        response = self._seen(await self.client.get("/graphql?" + urlencode(params),
                                                    headers=self._headers()))
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, path: str, **headers: str) -> httpx.Response:
        return self._seen(await self.client.get(path, headers=headers))


SEARCH = "query($s: String) { residents(search: $s) { totalCount edges { node { id familyName } } } }"


async def _scenario(api: Api) -> dict:
    """Everything a day at the counter does; returns what must never reach the log."""
    login = await api.data(
        "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) "
        "{ token errors { code } } }", {"e": STAFF_EMAIL, "p": PASSWORD})
    api.token = login["login"]["token"]
    venue = (await api.data(
        'mutation { createVenue(input: {name: "中央公民館 第2会議室", kind: COMMUNITY_CENTRE, '
        "capacity: 20}) { venue { id } errors { code } } }"))["createVenue"]["venue"]["id"]
    course = (await api.data("{ courses { id } }"))["courses"][0]["id"]
    day = (datetime.now() + timedelta(days=14)).date().isoformat()
    session = (await api.data(
        "mutation($v: ID!, $c: ID!, $from: DateTime!, $to: DateTime!) { scheduleSession(input: "
        "{kind: CLASS, venueId: $v, courseId: $c, startsAt: $from, endsAt: $to, capacity: 10}) "
        "{ sessions { id } errors { code message } } }",
        {"v": venue, "c": course, "from": f"{day}T10:00:00+09:00",
         "to": f"{day}T12:00:00+09:00"}))["scheduleSession"]["sessions"][0]["id"]

    residents, invites = [], []
    for person in RESIDENTS:
        made = await api.data(
            "mutation($i: CreateResidentInput!) { createResident(input: $i) "
            "{ resident { id } errors { code message } } }", {"i": person})
        resident = made["createResident"]["resident"]["id"]
        residents.append(resident)
        seat = await api.data(
            "mutation($s: ID!, $r: ID!) { register(input: {sessionId: $s, residentId: $r, "
            "source: PHONE}) { registration { id status inviteUrl } errors { code } } }",
            {"s": session, "r": resident})
        invites.append(seat["register"]["registration"]["inviteUrl"])

    supporter = (await api.data(
        "mutation($i: CreateSupporterInput!) { createSupporter(input: $i) "
        "{ supporter { id calendarFeedUrl } errors { code message } } }",
        {"i": SUPPORTER}))["createSupporter"]["supporter"]
    duty = (await api.data(
        "mutation($s: ID!, $p: ID!) { assignSupporter(input: {sessionId: $s, supporterId: $p, "
        "role: LEAD}) { assignment { inviteUrl } errors { code message } } }",
        {"s": session, "p": supporter["id"]}))["assignSupporter"]["assignment"]["inviteUrl"]
    return {"residents": residents, "invites": invites, "duty": duty,
            "feed": supporter["calendarFeedUrl"]}


async def _calendar_and_searches(api: Api, made: dict) -> dict:
    for url in [*made["invites"], made["duty"], made["feed"]]:
        response = await api.get(urlsplit(url).path)
        assert response.status_code == 200, (url, response.status_code)
        assert response.headers["content-type"].startswith("text/calendar")

    found = {}
    for term in SEARCH_TERMS:
        posted = await api.data(SEARCH, {"s": term})
        assert posted["residents"]["totalCount"] == 1, (term, posted)
        by_get = await api.get_graphql(SEARCH, {"s": term})
        assert by_get["data"]["residents"]["totalCount"] == 1, (term, by_get)
        found[term] = posted["residents"]["edges"][0]["node"]["familyName"]
    # The search written into the document itself, not into variables.
    inline = await api.get_graphql('{ residents(search: "勅使河原") { totalCount } }')
    assert inline["data"]["residents"]["totalCount"] == 1
    inline = await api.get_graphql('{ residents(search: "0463-27-1828") { totalCount } }')
    assert inline["data"]["residents"]["totalCount"] == 1
    # Staff read numbers through the API (an audited read), never in the log.
    first = await api.data("{ residents(first: 1) { edges { node { phone landline } } } }")
    assert first["residents"]["edges"][0]["node"]["landline"]
    return found


# --- reading what was logged --------------------------------------------------------------

_TEXT_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>\S+) "
    r"\[(?P<context>[^\]]*)\]: (?P<message>.*)")


def _records(output: str, log_format: str) -> list[dict]:
    """Log output as records, whichever the format: level, logger, ids (`request`,
    `message`, as strings), message and exception text. Every line must belong to a record:
    text lines start one or continue its traceback; JSON lines are each one object."""
    records: list[dict] = []
    for line in output.splitlines():
        if log_format == "json":
            entry = json.loads(line)  # fails the test on any line that is not JSON
            assert isinstance(entry, dict), line
            assert {"time", "level", "logger", "message"} <= entry.keys(), line
            assert datetime.fromisoformat(entry["time"]).tzinfo is not None, line
            ids = {key.removesuffix("_id"): str(value) for key, value in entry.items()
                   if key.endswith("_id")}
            records.append({"level": entry["level"], "logger": entry["logger"], "ids": ids,
                            "message": entry["message"],
                            "exception": entry.get("exception"),
                            "exception_type": entry.get("exception_type")})
            continue
        matched = _TEXT_LINE.fullmatch(line)
        if matched:
            context = matched["context"]
            ids = dict(part.split("=", 1) for part in context.split()) if context != "-" else {}
            records.append({"level": matched["level"], "logger": matched["logger"], "ids": ids,
                            "message": matched["message"], "exception": None})
        else:
            assert records, f"a line before any log record: {line!r}"
            last = records[-1]
            last["exception"] = (f"{last['exception']}\n{line}" if last["exception"] is not None
                                 else line)
    return records


# --- the scenario --------------------------------------------------------------------------

METRICS_TOKEN = "logs-test-metrics-token-31415926"


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_logs_of_a_full_day_carry_request_ids_and_no_personal_data(fresh_database, tmp_path,
                                                                         log_format):
    url, params = fresh_database
    env = {**_env(url), "LOG_FORMAT": log_format, "METRICS_TOKEN": METRICS_TOKEN}
    await _cli("migrate", env=env, cwd=tmp_path)
    await _cli("seed", env=env, cwd=tmp_path)
    await _cli("create-user", "--email", STAFF_EMAIL, "--role", "COORDINATOR", "--municipality",
               "142034", "--password", PASSWORD, env=env, cwd=tmp_path)
    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:  # the confirmation goes out now, whatever the hour of the test run
        await conn.execute("UPDATE municipality SET sms_quiet_from_minute = 0, "
                           "sms_quiet_until_minute = 0, sms_per_second = 0 WHERE code = '142034'")
    finally:
        await conn.close()

    port = _free_port()
    serve_log, serve_out = tmp_path / "serve.log", tmp_path / "serve.out"
    with serve_log.open("w") as err, serve_out.open("w") as out:
        server = await asyncio.to_thread(
            subprocess.Popen, [str(SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=out, stderr=err)
    internal_ids: list[str] = []
    try:
        await asyncio.to_thread(_wait_for, f"http://127.0.0.1:{port}/healthz")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            api = Api(client)
            made = await _scenario(api)
            worker = await _cli("worker", "--once", env=env, cwd=tmp_path)
            assert "sent=2" in worker.stdout, worker.stdout + worker.stderr
            found = await _calendar_and_searches(api, made)
            assert found["31415926"] == "鬼塚" and found["0465-86-4455"] == "御手洗"
            messages = (await api.data(
                "{ messages(first: 50) { edges { node { id body status to } } } }"
            ))["messages"]["edges"]
            sent = [edge["node"] for edge in messages if edge["node"]["status"] == "SENT"]
            assert len(sent) == 2

            # Unexpected errors, caused the way a client can cause them (no mocking): a lone
            # surrogate next to a name in a search, and a token with a trailing newline. Once
            # these are refused cleanly they are no longer INTERNAL; the log must hold no
            # trace of the name or token either way.
            for send in (api.post, api.get_graphql):
                body = await send(SEARCH, {"s": "鬼塚\ud800"})
                for error in body.get("errors", []):
                    if error["extensions"]["code"] == "INTERNAL":
                        internal_ids.append(error["extensions"]["requestId"])
            broken = await api.get(f"/calendar/registrations/{_token_of(made['invites'][0])}%0A.ics")
            assert broken.status_code in (404, 500)
            if broken.status_code == 500:
                internal_ids.append(broken.headers["x-request-id"])
            # What the day looks like to a scraper: counted, and as anonymous as the log.
            scraped = await api.get("/metrics", Authorization=f"Bearer {METRICS_TOKEN}")
            assert scraped.status_code == 200
            metrics = scraped.text
            request_ids = list(api.request_ids)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(server.wait, 30)
        except subprocess.TimeoutExpired:
            server.kill()
    (tmp_path / "worker.log").write_text(worker.stderr, encoding="utf-8")  # to read on failure
    serve_stderr = serve_log.read_text(encoding="utf-8")
    records = _records(serve_stderr, log_format) + _records(worker.stderr, log_format)
    everything = "\n".join([serve_stderr, serve_out.read_text(encoding="utf-8"), worker.stderr,
                            worker.stdout, metrics,
                            # JSON escapes quotes and newlines: search the values too
                            *(f"{r['message']}\n{r['exception'] or ''}" for r in records)])

    # Nothing personal, in any spelling.
    secrets_ = set()
    for person in [*RESIDENTS, SUPPORTER]:
        for key in ("familyName", "givenName", "displayName", "notes"):
            if person.get(key):
                secrets_ |= _spellings(person[key])
        for part in [*person["kana"].split(), person["kana"]]:
            secrets_ |= _spellings(part)
    for number in NUMBERS:
        secrets_ |= _number_spellings(number)
    for term in SEARCH_TERMS:
        secrets_ |= _spellings(term)
    for message in sent:
        secrets_ |= _spellings(message["body"])
        secrets_ |= {line for line in message["body"].splitlines() if len(line) >= 12}
    tokens = [_token_of(u) for u in [*made["invites"], made["duty"], made["feed"]]]
    for token in tokens:
        secrets_ |= {token, token[:8], token[-8:]}
    secrets_ |= {api.token, api.token[:12], api.token[-12:], PASSWORD, *_spellings(STAFF_EMAIL),
                 METRICS_TOKEN}
    leaked = sorted(s for s in secrets_ if s in everything)
    assert not leaked, f"found in the logs or metrics: {leaked}"

    # ... and not silent: every request left records under its own id, the access log is
    # there (masked), the console backend says what it sent, and internal errors have a
    # traceback under the id the client was given.
    missing = [rid for rid in request_ids if not any(r["ids"].get("request") == rid
                                                     for r in records)]
    assert not missing, f"request ids without a log record: {missing[:5]}"
    access = [r["message"] for r in records if r["logger"] == "uvicorn.access"]
    assert any('"POST /graphql HTTP/1.1" 200' in line for line in access)
    assert any('"GET /graphql?query=…&variables=… HTTP/1.1" 200' in line for line in access)
    assert any('"GET /metrics HTTP/1.1" 200' in line for line in access)
    for token in tokens:
        assert any(f"/{token[:4]}….ics HTTP/1.1\" 200" in line for line in access), token[:4]
    worker_records = _records(worker.stderr, log_format)
    for message in sent:
        _, number = parse_global_id(message["id"])
        assert any(r["ids"].get("message") == str(number) and "sent" in r["message"]
                   for r in worker_records), worker.stderr
    for rid in internal_ids:
        errors = [r for r in records if r["level"] == "ERROR" and rid in r["message"]]
        assert errors and all(r["ids"].get("request") == rid for r in errors), errors
        assert any((r["exception"] or "").startswith("Traceback") for r in errors), errors

    # The scraper saw the day by route template, never by path.
    samples = {(sample.name, frozenset(sample.labels.items())): sample.value
               for family in text_string_to_metric_families(metrics) for sample in family.samples}
    calendar_hits = samples[("divide_support_http_requests_total", frozenset({
        "route": "/calendar/registrations/{token}.ics", "method": "GET", "status": "200"}.items()))]
    assert calendar_hits >= len(made["invites"])
    assert samples[("divide_support_sms_outbox_messages",
                    frozenset({"municipality": "142034", "status": "SENT"}.items()))] == 2


def test_log_format_takes_text_or_json_only(tmp_path):
    done = subprocess.run([str(SCRIPT), "export-schema", "--output", str(tmp_path / "s")],
                          env={**os.environ, "LOG_FORMAT": "xml"}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "LOG_FORMAT" in done.stderr and "Traceback" not in done.stderr


# --- the pieces ----------------------------------------------------------------------------

@pytest.mark.parametrize(("target", "logged"), [
    ("/graphql?query=%7B+residents%28search%3A+%22%E9%AC%BC%22%29%7D&variables=%7B%7D",
     "/graphql?query=…&variables=…"),
    ("/graphql?09031415926", "/graphql?…"),
    ("/graphql?%E9%AC%BC=1&operationName=x", "/graphql?…&operationName=…"),
    ("/calendar/registrations/3f2a9c0e1b7d4a5f8e6c2b1a0d9f8e7c.ics",
     "/calendar/registrations/3f2a….ics"),
    ("/calendar/supporters/3f2a9c0e1b7d4a5f8e6c2b1a0d9f8e7c.ics?x=1",
     "/calendar/supporters/3f2a….ics?x=…"),
    ("/calendar/assignments/3f2a9c0e1b7d4a5f8e6c2b1a0d9f8e7c%0A.ics",
     "/calendar/assignments/3f2a….ics"),
    ("/calendar/assignments/3f2a9c0e1b7d4a5f8e6c2b1a0d9f8e7c", "/calendar/assignments/3f2a…"),
    ("/somewhere/3f2a9c0e1b7d4a5f8e6c2b1a0d9f8e7c/else", "/somewhere/3f2a…/else"),
    ("/calendar/venues/12.ics", "/calendar/venues/12.ics"),
    ("/healthz", "/healthz"),
])
def test_the_access_log_shows_paths_without_values_or_tokens(target, logged):
    assert mask_target(target) == logged


def _raise_with_personal_data(error: BaseException) -> None:
    raise error


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_tracebacks_name_the_error_and_where_not_its_message(database, log_format):
    """A real unique violation quotes the value (`Key (email)=(...) already exists`); the
    log keeps its type, its SQLSTATE, constraint and frames, and drops the quote, in either
    format."""
    conn = await asyncpg.connect(**database.dsn_kwargs())
    try:
        await conn.execute("CREATE TEMP TABLE people_seen (email text UNIQUE)")
        await conn.execute("INSERT INTO people_seen VALUES ('onizuka.sumireko@example.jp')")
        try:
            await conn.execute("INSERT INTO people_seen VALUES ('onizuka.sumireko@example.jp')")
        except asyncpg.UniqueViolationError as error:
            caught = error
    finally:
        await conn.close()
    assert "onizuka.sumireko" in str(caught) + str(caught.detail)  # what would leak

    out = StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(SafeFormatter("%(levelname)s %(message)s") if log_format == "text"
                         else JsonFormatter())
    logger = logging.getLogger("divide_support.test_logs")
    logger.addHandler(handler)
    # Another handler that formats first caches the full text on the record; ours must
    # not reuse it.
    plain = logging.StreamHandler(StringIO())
    logger.addHandler(plain)
    logger.propagate = False
    try:
        try:
            try:
                _raise_with_personal_data(caught)
            except asyncpg.UniqueViolationError as inner:
                raise RuntimeError("登録できません: 鬼塚 菫子 090-3141-5926") from inner
        except RuntimeError:
            plain.handle(logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "x", (),
                                           sys.exc_info()))
            record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1,
                                       "unexpected error in request %s", ("abc123",),
                                       sys.exc_info())
            plain.format(record)
            assert "鬼塚" in (record.exc_text or "")
            logger.handle(record)
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(plain)
        logger.propagate = True
    text = out.getvalue()
    if log_format == "text":
        assert text.startswith("ERROR unexpected error in request abc123\nTraceback")
    else:
        [line] = text.splitlines()
        entry = json.loads(line)
        assert entry["level"] == "ERROR" and entry["logger"] == "divide_support.test_logs"
        assert entry["message"] == "unexpected error in request abc123"
        assert entry["exception_type"] == "RuntimeError"
        assert entry["exception"].startswith("Traceback")
        text = f"{text}\n{entry['exception']}"  # the frames as the text format has them
    for kept in ("asyncpg.exceptions.UniqueViolationError", "RuntimeError", "sqlstate=23505",
                 "people_seen_email_key", "_raise_with_personal_data",
                 "test_tracebacks_name_the_error_and_where_not_its_message",
                 'test_logs.py", line', "direct cause"):
        assert kept in text, (kept, text)
    for dropped in ("onizuka", "鬼塚", "090-3141-5926", "INSERT INTO", "Key (email)"):
        assert dropped not in text, (dropped, text)
    # The record itself keeps the exception for whoever handles it in-process.
    assert record.exc_info and record.exc_info[1] is not None


def test_a_recursion_traceback_stays_short():
    def deep(n: int) -> int:
        return deep(n + 1)

    try:
        deep(0)
    except RecursionError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    text = SafeFormatter("%(message)s").format(record)
    assert "RecursionError" in text and "repeated" in text
    assert len(text.splitlines()) < 30
    assert re.search(r"in deep$", text, re.MULTILINE)


async def test_an_unhandled_error_is_logged_under_the_request_id_and_answered_with_it(caplog):
    """What no route handles (the server would log it once the id is gone) is logged while
    the request id is still set, and the 500 tells the client that id."""
    from divide_support.core.logging import ContextFilter
    from divide_support.core.requestctx import RequestContextMiddleware, current

    async def broken(scope, receive, send):
        assert current() is not None
        raise LookupError("鬼塚 菫子 090-3141-5926")

    transport = httpx.ASGITransport(app=RequestContextMiddleware(broken))
    context = ContextFilter()
    caplog.handler.addFilter(context)
    try:
        with caplog.at_level(logging.ERROR, logger="divide_support.core.requestctx"):
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                response = await c.get("/calendar/registrations/x.ics")
    finally:
        caplog.handler.removeFilter(context)
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert request_id in response.text and "鬼塚" not in response.text
    [record] = [r for r in caplog.records if r.name == "divide_support.core.requestctx"]
    assert record.context == f"request={request_id}" and request_id in record.getMessage()
    text = SafeFormatter("%(message)s").format(record)
    assert "LookupError" in text and "in broken" in text and "鬼塚" not in text
    assert current() is None  # nothing of the request stays behind
