"""A fake Twilio Messages API on 127.0.0.1, for driving the real twilio client over HTTP.

It speaks the shapes twilio-python 9 reads (twilio/rest/api/v2010/account/message and
twilio/base/page.py):

- POST /2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded, HTTP basic auth
  (AccountSid, AuthToken): 201 and the message resource (sid "SM" + 32 hex, status "queued",
  or "accepted" with a MessagingServiceSid; date_created in RFC 2822 like Twilio).
- GET the same path (?To=&From=&PageSize=): {"messages": [...], "next_page_uri": null,
  "page": 0, "page_size": 50, ...}, newest first.
- GET .../Messages/{sid}.json: one message.
- The Calls API likewise (twilio/rest/api/v2010/account/call): POST .../Calls.json (sid "CA"
  + 32 hex, status "queued"; Url or Twiml, To and From required, Twilio's 21205/21213/
  21211 otherwise), GET .../Calls.json (?To=) newest first, GET .../Calls/{sid}.json. The
  fake does not ring anyone: a test plays the call with `answer_call`, `press` and
  `end_call`, which post to our webhooks signed as Twilio signs them.
- Wrong credentials: 401 and Twilio's 20003 error body. Errors are Twilio's legacy shape
  {"code", "message", "more_info", "status"}, which the client turns into TwilioRestException.

It runs its own event loop in a background thread, so it works whatever loop the tests use
and goes on answering (or deliberately not answering) while the test's loop waits.

    fake.fail_next("429")               # 429 (20429): Twilio did not take it
    fake.fail_next("500")               # 500 (20500), but the message *is* stored (ambiguous)
    fake.fail_next("500", store=False)  # 500 and nothing stored
    fake.fail_next("21211")             # 400 with that Twilio error code, nothing stored
    fake.delay_next(3.0)                # stored at once, answered after 3 s (client timeout)

Tests use the fixture with ``from fake_twilio import fake_twilio_server  # noqa: F401`` and a
parameter named ``fake_twilio`` (a different imported name keeps ruff's F811 quiet).
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import partial
from typing import Any

import pytest
from aiohttp import web

API = "/2010-04-01"
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
TWILIO_FROM = "+815012345678"
PUBLIC_BASE_URL = "https://support.example.jp"
E164 = re.compile(r"^\+[1-9]\d{7,14}$")

ERRORS: dict[str, tuple[int, str]] = {
    "20003": (401, "Authenticate"),
    "20404": (404, "The requested resource was not found"),
    "20429": (429, "Too Many Requests"),
    "20500": (500, "Internal Server Error"),
    "20503": (503, "Service Unavailable"),
    "21205": (400, "Url parameter is required."),
    "21213": (400, "Caller phone number is required"),
    "21211": (400, "The 'To' number is not a valid phone number."),
    "21408": (400, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"),
    "21602": (400, "Message body is required."),
    "21603": (400, "A 'From' phone number is required."),
    "21604": (400, "A 'To' phone number is required."),
    "21610": (400, "Attempt to send to unsubscribed recipient"),
    "21612": (400, "The 'To' phone number is not currently reachable via SMS"),
    "21614": (400, "'To' number is not a valid mobile number"),
    "21617": (400, "The concatenated message body exceeds the 1600 character limit."),
    "21623": (400, "Validity period must be between 1 and 36000 seconds"),
}
# fail_next kinds that are an HTTP status rather than a Twilio error code
HTTP_KINDS = {"429": "20429", "500": "20500", "503": "20503"}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=False)  # "Wed, 15 Jan 2025 01:02:03 +0000", as Twilio


def num_segments(body: str) -> int:
    if all(ch in GSM7 for ch in body):
        single, multi, units = 160, 153, len(body)
    else:
        single, multi = 70, 67
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in body)  # UTF-16 code units
    if units <= single:
        return 1
    return -(-units // multi)


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    auth: tuple[str, str] | None
    status: int | None = None  # what the fake answered (None: no answer yet)


@dataclass
class _Plan:
    kind: str  # "error", "delay"
    code: str | None = None
    store: bool = False
    seconds: float = 0.0


@dataclass
class FakeTwilio:
    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    host: str = "127.0.0.1"
    port: int = 0
    # The provider's records: every message the fake has taken (oldest first).
    sent: list[dict[str, Any]] = field(default_factory=list)
    # The calls the fake has taken (oldest first).
    calls: list[dict[str, Any]] = field(default_factory=list)
    # Every request received, answered or not, in order.
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: list[_Plan] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # --- what tests use ----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What TWILIO_API_BASE is set to (the client appends /2010-04-01/...)."""
        return f"http://{self.host}:{self.port}"

    @property
    def posts(self) -> list[Request]:
        """Every attempt to create a message (accepted or not)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith("/Messages.json")]

    @property
    def lookups(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == "GET"]

    @property
    def call_posts(self) -> list[Request]:
        """Every attempt to place a call (accepted or not)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith("/Calls.json")]

    def set_call_status(self, sid: str, status: str, duration: int | None = None,
                        answered_by: str | None = None) -> dict[str, Any]:
        with self._lock:
            record = next(r for r in self.calls if r["sid"] == sid)
            record["status"] = status
            if duration is not None:
                record["duration"] = str(duration)
            if answered_by is not None:
                record["answered_by"] = answered_by
            record["date_updated"] = _rfc2822(_now())
            return dict(record)

    # --- playing a call (the Twilio side, towards our webhooks) -------------------------

    def _call_params(self, record: dict[str, Any], **extra: str) -> dict[str, str]:
        params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01",
                  "CallSid": record["sid"], "From": record["from"], "To": record["to"],
                  "Direction": "outbound-api", "CallStatus": record["status"]}
        params.update(extra)
        return params

    async def post_to_app(self, client: Any, url: str, params: dict[str, str]) -> Any:
        """POST to our app as Twilio does: form-encoded, signed over the public URL."""
        from twilio.request_validator import RequestValidator

        assert url.startswith(PUBLIC_BASE_URL), url
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        return await client.post(url.removeprefix(PUBLIC_BASE_URL), data=params,
                                 headers={"X-Twilio-Signature": signature})

    async def answer_call(self, client: Any, sid: str, answered_by: str = "human") -> Any:
        """The call is picked up: Twilio fetches the words from the call's Url."""
        record = self.set_call_status(sid, "in-progress", answered_by=answered_by)
        await self.post_to_app(client, record["_status_callback"],
                               self._call_params(record, CallStatus="in-progress"))
        return await self.post_to_app(client, record["_url"],
                                      self._call_params(record, AnsweredBy=answered_by))

    async def press(self, client: Any, sid: str, gather_url: str, digits: str) -> Any:
        with self._lock:
            record = dict(next(r for r in self.calls if r["sid"] == sid))
        return await self.post_to_app(client, gather_url,
                                      self._call_params(record, Digits=digits))

    async def end_call(self, client: Any, sid: str, status: str = "completed",
                       duration: int = 0) -> Any:
        """The call is over: Twilio posts its last status callback."""
        record = self.set_call_status(sid, status, duration=duration)
        extra = {"CallDuration": str(duration)}
        if record.get("answered_by"):
            extra["AnsweredBy"] = record["answered_by"]
        return await self.post_to_app(client, record["_status_callback"],
                                      self._call_params(record, **extra))

    def fail_next(self, kind: str | int, count: int = 1, *, store: bool | None = None) -> None:
        """The next `count` sends fail: "429", "500"/"503" (stored unless store=False: Twilio
        took it but the answer says otherwise), or a Twilio error code such as "21211" or
        "21610" (400, never stored)."""
        kind = str(kind)
        code = HTTP_KINDS.get(kind, kind)
        if code not in ERRORS:
            raise ValueError(f"unknown failure kind {kind!r}")
        status = ERRORS[code][0]
        if store is None:
            store = status >= 500
        with self._lock:
            self._plans.extend(_Plan("error", code=code, store=store) for _ in range(count))

    def delay_next(self, seconds: float, *, store: bool = True) -> None:
        """Answer the next send only after `seconds` (to run into the client's timeout). By
        default the message is stored at once, as when Twilio took it and the answer was lost."""
        with self._lock:
            self._plans.append(_Plan("delay", seconds=seconds, store=store))

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        """What Twilio later reports for a message (delivered, undelivered, ...)."""
        with self._lock:
            for record in self.sent:
                if record["sid"] == sid:
                    record["status"] = status
                    record["error_code"] = error_code
                    record["date_updated"] = _rfc2822(_now())

    def settings(self, **overrides: Any):
        """Settings with SMS_BACKEND=twilio pointed at this fake (and no wait for UNKNOWN)."""
        from divide_support.core.settings import Settings

        values: dict[str, Any] = {
            "sms_backend": "twilio", "twilio_account_sid": self.account_sid,
            "twilio_auth_token": self.auth_token, "twilio_from": TWILIO_FROM,
            "twilio_messaging_service_sid": None,
            "twilio_api_base": self.base_url, "public_base_url": PUBLIC_BASE_URL,
            "sms_unknown_grace_seconds": 0, "sms_send_timeout_seconds": 5,
        }
        values.update(overrides)
        return Settings(**values)

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()
            self.calls.clear()
            self.requests.clear()
            self._plans.clear()

    # --- the server --------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                app = web.Application()
                for name, records, invalid, resource in (
                        ("Messages", self.sent, self._invalid_message, self._resource),
                        ("Calls", self.calls, self._invalid_call, self._call_resource)):
                    base = API + "/Accounts/{account}/" + name
                    app.router.add_post(base + ".json", partial(
                        self._create, records=records, invalid=invalid, resource=resource))
                    app.router.add_get(base + ".json", partial(
                        self._list, records=records, key=name.lower(), resource_path=name))
                    app.router.add_get(base + "/{sid}.json", partial(self._fetch, records=records))
                self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
                loop.run_until_complete(self._runner.setup())
                loop.run_until_complete(web.SockSite(self._runner, sock).start())
            except BaseException as error:  # pragma: no cover - reported to start()
                failure.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-twilio", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake Twilio server did not start")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    # --- handlers ----------------------------------------------------------------------

    def _error(self, code: str, request: Request, message: str | None = None) -> web.Response:
        status, default = ERRORS[code]
        body = {"code": int(code), "message": message or default,
                "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
        if code == "20003":
            body["detail"] = "Your AccountSid or AuthToken was incorrect."
        request.status = status
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
        return web.json_response(body, status=status, headers=headers)

    async def _record(self, http: web.Request) -> Request:
        auth = None
        scheme, _, encoded = http.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
                auth = (user, password)
            except (ValueError, UnicodeDecodeError):
                auth = None
        form: dict[str, str] = {}
        if http.method == "POST":
            for key, value in (await http.post()).items():
                form.setdefault(key, str(value))
        request = Request(method=http.method, path=http.path, query=dict(http.query), form=form,
                          auth=auth)
        with self._lock:
            self.requests.append(request)
        return request

    def _authorised(self, http: web.Request, request: Request) -> bool:
        return request.auth == (self.account_sid, self.auth_token) and \
            http.match_info["account"] == self.account_sid

    def _resource(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = _rfc2822(_now())
        service = form.get("MessagingServiceSid")
        uri = f"{API}/Accounts/{self.account_sid}/Messages/{sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(num_segments(form.get("Body", ""))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": form.get("To"),
            "uri": uri,
            # not part of Twilio's answer: what the fake was asked, for tests
            "_status_callback": form.get("StatusCallback"),
            "_validity_period": form.get("ValidityPeriod"),
        }

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not k.startswith("_")}

    def _invalid_message(self, form: dict[str, str]) -> tuple[str, str | None] | None:
        """Twilio's own validation of a new message: (error code, message) or None."""
        to = form.get("To")
        if not to:
            return "21604", None
        if not E164.match(to):
            return "21211", f"The 'To' number {to} is not a valid phone number."
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return "21603", None
        if not form.get("Body"):
            return "21602", None
        if len(form["Body"]) > 1600:
            return "21617", None
        validity = form.get("ValidityPeriod")
        if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= 36000):
            return "21623", None
        return None

    async def _create(self, http: web.Request, *, records: list[dict[str, Any]],
                      invalid: Callable[[dict[str, str]], tuple[str, str | None] | None],
                      resource: Callable[[dict[str, str]], dict[str, Any]]) -> web.Response:
        """POST a message or a call: the planned failures first (a 429 before validation,
        as Twilio's rate limit comes first), then Twilio's validation, then the record."""
        request = await self._record(http)
        if not self._authorised(http, request):
            return self._error("20003", request)
        form = request.form
        with self._lock:
            plan = self._plans.pop(0) if self._plans else None
        if plan is not None and plan.kind == "error" and ERRORS[plan.code or ""][0] == 429:
            return self._error(plan.code or "20429", request)
        problem = invalid(form)
        if problem is not None:
            return self._error(problem[0], request, problem[1])
        record = resource(form)
        store = plan is None or plan.store
        if plan is not None and plan.kind == "error" and ERRORS[plan.code or ""][0] < 500:
            store = False
        if store:
            with self._lock:
                records.append(record)
        if plan is not None and plan.kind == "delay":
            await asyncio.sleep(plan.seconds)
        if plan is not None and plan.kind == "error":
            return self._error(plan.code or "20500", request)
        request.status = 201
        return web.json_response(self._public(record), status=201)

    async def _list(self, http: web.Request, *, records: list[dict[str, Any]], key: str,
                    resource_path: str) -> web.Response:
        request = await self._record(http)
        if not self._authorised(http, request):
            return self._error("20003", request)
        query = request.query
        page_size = int(query.get("PageSize", "50"))
        with self._lock:
            found = list(reversed(records))  # newest first
        if "To" in query:
            found = [r for r in found if r["to"] == query["To"]]
        if "From" in query:
            found = [r for r in found if r["from"] == query["From"]]
        page = [self._public(r) for r in found[:page_size]]
        uri = f"{API}/Accounts/{self.account_sid}/{resource_path}.json?PageSize={page_size}&Page=0"
        request.status = 200
        return web.json_response({
            "end": max(0, len(page) - 1),
            "first_page_uri": uri,
            key: page,
            "next_page_uri": None,
            "page": 0,
            "page_size": page_size,
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        })

    async def _fetch(self, http: web.Request, *, records: list[dict[str, Any]]) -> web.Response:
        request = await self._record(http)
        if not self._authorised(http, request):
            return self._error("20003", request)
        with self._lock:
            found = [r for r in records if r["sid"] == http.match_info["sid"]]
        if not found:
            return self._error("20404", request)
        request.status = 200
        return web.json_response(self._public(found[0]))

    # --- calls ---------------------------------------------------------------------------

    def _call_resource(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "CA" + secrets.token_hex(16)
        now = _rfc2822(_now())
        return {
            "account_sid": self.account_sid, "answered_by": None, "api_version": "2010-04-01",
            "caller_name": None, "date_created": now, "date_updated": now,
            "direction": "outbound-api", "duration": None, "end_time": None,
            "from": form.get("From"), "from_formatted": form.get("From"),
            "parent_call_sid": None, "price": None, "price_unit": "USD", "sid": sid,
            "start_time": None, "status": "queued", "to": form.get("To"),
            "to_formatted": form.get("To"),
            "uri": f"{API}/Accounts/{self.account_sid}/Calls/{sid}.json",
            # not part of Twilio's answer: what the fake was asked, for tests
            "_url": form.get("Url"), "_status_callback": form.get("StatusCallback"),
            "_machine_detection": form.get("MachineDetection"),
            "_status_callback_event": form.get("StatusCallbackEvent"),
        }

    @staticmethod
    def _invalid_call(form: dict[str, str]) -> tuple[str, str | None] | None:
        """Twilio's own validation of a new call."""
        to = form.get("To")
        if not to:
            return "21604", None
        if not E164.match(to):
            return "21211", f"The 'To' number {to} is not a valid phone number."
        if not form.get("From"):
            return "21213", None
        if not (form.get("Url") or form.get("Twiml")):
            return "21205", None
        return None


@contextmanager
def app_signed_by(monkeypatch: pytest.MonkeyPatch, token: str) -> Iterator[None]:
    """While inside, the app checks Twilio's webhooks with `token`, for PUBLIC_BASE_URL (it
    reads both through the cached get_settings(), cleared on the way in and out)."""
    from divide_support.core.settings import get_settings

    with monkeypatch.context() as env:
        env.setenv("TWILIO_AUTH_TOKEN", token)
        env.setenv("PUBLIC_BASE_URL", PUBLIC_BASE_URL)
        get_settings.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()
    get_settings.cache_clear()


@pytest.fixture(name="fake_twilio")
def fake_twilio_server() -> Iterator[FakeTwilio]:
    """A fresh fake Twilio for one test, listening on a free port of 127.0.0.1."""
    server = FakeTwilio().start()
    try:
        yield server
    finally:
        server.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connection refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


async def dispatch(settings) -> Any:
    """One dispatcher round with a fresh Twilio backend (closed afterwards), as a worker does."""
    from divide_support.messaging.backends.twilio import TwilioBackend
    from divide_support.messaging.dispatcher import Dispatcher

    backend = TwilioBackend.from_settings(settings)
    try:
        return await Dispatcher(backend, settings, worker_id="test-worker").run_once()
    finally:
        await backend.close()
