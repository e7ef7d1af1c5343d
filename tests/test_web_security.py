"""What browsers get over HTTP: security headers on every route, the CORS allow-list,
introspection and GraphiQL switched by the settings, and a GraphiQL page whose every asset
comes from this server (the browser itself is in test_graphiql_browser.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import factories
import httpx
import pytest

from divide_support.core.actor import Role
from divide_support.core.settings import get_settings
from divide_support.scheduling import service as scheduling

ALLOWED = "https://console.example.jp"
OTHER = "https://attacker.example.com"
INTROSPECTION = "{ __schema { queryType { name } } }"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@contextlib.asynccontextmanager
async def app_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app made now, with the settings as they are now."""
    from divide_support.app import create_app

    transport = httpx.ASGITransport(app=create_app(init_orm=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def _post(query: str, token: str | None = None, operation: str | None = None,
          **headers: str) -> dict:
    sent = {"Content-Type": "application/json", "Accept": "application/json", **headers}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    return {"json": {"query": query, "operationName": operation}, "headers": sent}


def _assert_security_headers(response: httpx.Response) -> None:
    h = response.headers
    csp = {d.split()[0]: d.split()[1:] for d in h["content-security-policy"].split("; ")}
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert "'unsafe-inline'" not in csp["style-src"] and "'self'" in csp["style-src"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-frame-options"] == "DENY"
    assert "camera=()" in h["permissions-policy"] and "geolocation=()" in h["permissions-policy"]
    assert "microphone=()" in h["permissions-policy"]


# --- security headers --------------------------------------------------------------------

async def test_every_route_carries_the_security_headers(client, town):
    session = await factories.session(town.coordinator, factories.at(days=5, hour=10))
    resident = await factories.resident(town.coordinator, "山田", "花子", sms=True)
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id)
    bearer = {"Authorization": f"Bearer {town.tokens[Role.COORDINATOR]}"}
    responses = {
        "graphql": await client.post("/graphql", **_post("{ me { email } }",
                                                          town.tokens[Role.COORDINATOR])),
        "graphql GET": await client.get("/graphql", params={"query": "{ __typename }"}),
        "graphiql": await client.get("/graphql", headers=BROWSER),
        "healthz": await client.get("/healthz"),
        "readyz": await client.get("/readyz"),
        "invite": await client.get(f"/calendar/registrations/{registration.calendar_token}.ics"),
        "venue feed": await client.get(f"/calendar/venues/{session.venue_id}.ics"),
        "unknown token": await client.get(f"/calendar/registrations/{'0' * 32}.ics"),
        "report": await client.get("/reports/activity.csv?from=2026-01-01&to=2026-12-31",
                                   headers=bearer),
        "report refused": await client.get("/reports/activity.csv?from=2026-01-01&to=2026-12-31"),
        "webhook refused": await client.post("/webhooks/twilio/status", data={"a": "b"}),
        "static": await client.get("/static/graphiql/graphiql-init.js"),
        "no such page": await client.get("/nothing-here"),
    }
    expected = {"graphql": 200, "graphql GET": 200, "graphiql": 200, "healthz": 200,
                "readyz": 200, "invite": 200, "venue feed": 200, "unknown token": 404,
                "report": 200, "report refused": 401, "webhook refused": 403, "static": 200,
                "no such page": 404}
    assert {name: r.status_code for name, r in responses.items()} == expected
    for name, response in responses.items():
        try:
            _assert_security_headers(response)
        except (AssertionError, KeyError) as error:
            raise AssertionError(f"{name}: {error!r} in {dict(response.headers)}") from None
        # PUBLIC_BASE_URL is http here: no HSTS (a browser would pin a host it cannot reach)
        assert "strict-transport-security" not in response.headers, name

    cache = {name: r.headers["cache-control"] for name, r in responses.items()}
    # answers with personal data are never stored; the routes' own policies are kept
    assert cache["graphql"] == cache["graphql GET"] == cache["graphiql"] == "no-store"
    assert cache["invite"] == "private, no-store"
    assert cache["venue feed"] == "public, max-age=300"
    assert cache["report"] == "private, no-store"
    assert cache["report refused"] == "no-store"
    assert cache["static"] == "no-cache"


async def test_hsts_only_when_the_public_url_is_https(db, settings_env):
    settings_env(PUBLIC_BASE_URL="https://support.example.jp")
    async with app_client() as c:
        response = await c.get("/healthz")
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    settings_env(PUBLIC_BASE_URL="http://support.example.jp")
    async with app_client() as c:
        assert "strict-transport-security" not in (await c.get("/healthz")).headers


# --- CORS ----------------------------------------------------------------------------------

def _preflight(origin: str) -> dict:
    return {"headers": {"Origin": origin, "Access-Control-Request-Method": "POST",
                        "Access-Control-Request-Headers": "authorization,content-type"}}


async def test_without_an_allow_list_no_origin_gets_cors_headers(client, town):
    preflight = await client.options("/graphql", **_preflight(ALLOWED))
    assert preflight.status_code in (400, 405)
    simple = await client.post("/graphql", **_post("{ me { email } }", town.tokens[Role.ADMIN],
                                                    Origin=ALLOWED))
    assert simple.status_code == 200  # answered, but a browser on another origin cannot read it
    for response in (preflight, simple):
        assert not [k for k in response.headers if k.startswith("access-control-")]


async def test_the_allow_list_lets_its_origins_read_and_nobody_else(town, settings_env):
    settings_env(CORS_ALLOWED_ORIGINS=f"{ALLOWED}, http://localhost:5173")
    token = town.tokens[Role.COORDINATOR]
    async with app_client() as c:
        ok = await c.options("/graphql", **_preflight(ALLOWED))
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == ALLOWED
        allowed_headers = ok.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed_headers and "content-type" in allowed_headers
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in ok.headers
        _assert_security_headers(ok)

        refused = await c.options("/graphql", **_preflight(OTHER))
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers

        simple = await c.post("/graphql", **_post("{ me { email } }", token, Origin=ALLOWED))
        assert simple.json()["data"]["me"]["email"] == "hiratsuka-coordinator@example.jp"
        assert simple.headers["access-control-allow-origin"] == ALLOWED
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
        assert "access-control-allow-credentials" not in simple.headers
        assert "origin" in simple.headers["vary"].lower()

        other = await c.post("/graphql", **_post("{ me { email } }", token, Origin=OTHER))
        assert "access-control-allow-origin" not in other.headers
        # a trailing-slash or http variant of the allowed origin is another origin
        for lookalike in (f"{ALLOWED}.attacker.example", "http://console.example.jp"):
            response = await c.post("/graphql", **_post("{ __typename }", Origin=lookalike))
            assert "access-control-allow-origin" not in response.headers, lookalike


def test_origins_are_normalised_as_browsers_send_them(settings_env):
    settings_env(CORS_ALLOWED_ORIGINS=" HTTPS://Console.Example.JP:443 ,http://127.0.0.1:8080,"
                                      "https://console.example.jp")
    assert get_settings().cors_allowed_origins == ("https://console.example.jp",
                                                   "http://127.0.0.1:8080")
    settings_env(CORS_ALLOWED_ORIGINS="")
    assert get_settings().cors_allowed_origins == ()


SCRIPT = Path(sys.executable).with_name("divide-support")


@pytest.mark.parametrize("value", [
    "https://console.example.jp/", "*", "console.example.jp", "https://console.example.jp/app",
    "ftp://console.example.jp", "https://user@console.example.jp", "https://console.example.jp:99999",
    "https://console.example.jp, https://exa mple.jp", "https://console..example.jp",
])
def test_a_malformed_origin_is_refused_in_japanese(value):
    env = {**os.environ, "CORS_ALLOWED_ORIGINS": value}
    ran = subprocess.run([str(SCRIPT), "export-schema"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 2
    assert "環境変数 CORS_ALLOWED_ORIGINS の値が正しくありません" in ran.stderr
    assert "オリジンとして正しくありません" in ran.stderr
    assert "Traceback" not in ran.stderr and ran.stdout == ""


# --- introspection -------------------------------------------------------------------------

async def _introspection(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/graphql", **_post(INTROSPECTION))


def _refused(response: httpx.Response, field: str) -> None:
    body = response.json()
    assert "data" not in body, body
    # graphql-core names each introspection field (`__schema`, then `queryType` ...)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert body["errors"][0]["message"] == ("GraphQL introspection has been disabled, but the "
                                            f"requested query contained the field '{field}'.")


async def test_introspection_follows_the_mode_unless_set(client, db, settings_env):
    settings_env(DATABASE_URL=None, GRAPHQL_INTROSPECTION=None)  # embedded: a developer's machine
    assert (await _introspection(client)).json() == {
        "data": {"__schema": {"queryType": {"name": "Query"}}}}
    settings_env(DATABASE_URL="postgres://app@db.example.jp/divide")  # production
    _refused(await _introspection(client), "__schema")
    settings_env(GRAPHQL_INTROSPECTION="true")
    assert (await _introspection(client)).json()["data"]["__schema"]["queryType"]["name"] == "Query"
    settings_env(DATABASE_URL=None, GRAPHQL_INTROSPECTION="false")
    _refused(await _introspection(client), "__schema")


async def test_without_introspection_schema_and_type_are_refused_but_typename_answers(
        client, town, settings_env):
    settings_env(GRAPHQL_INTROSPECTION="false")
    token = town.tokens[Role.COORDINATOR]
    _refused(await client.post("/graphql", **_post('{ __type(name: "Resident") { fields { name } } }',
                                                    token)), "__type")
    # in an operation the request does not even run
    _refused(await client.post("/graphql", **_post(f"query A {{ me {{ email }} }} query B {INTROSPECTION}",
                                                    token, "A")), "__schema")
    # aliased and inside a fragment: still refused
    _refused(await client.post("/graphql", **_post(
        "{ ...F } fragment F on Query { s: __schema { types { name } } }", token)), "__schema")
    over_get = await client.get("/graphql", params={"query": INTROSPECTION},
                                headers={"Accept": "application/graphql-response+json"})
    assert over_get.status_code == 400
    _refused(over_get, "__schema")
    answered = await client.post("/graphql", **_post("{ __typename me { __typename email } }", token))
    assert answered.json() == {"data": {"__typename": "Query", "me": {
        "__typename": "User", "email": "hiratsuka-coordinator@example.jp"}}}


async def test_the_validation_cache_never_answers_for_the_other_setting(client, db, settings_env):
    """The same document, parsed and validated once under each setting, switched back and forth:
    the cached validation of one never decides for the other."""
    for _ in range(2):
        settings_env(GRAPHQL_INTROSPECTION="true")
        assert "data" in (await _introspection(client)).json()
        settings_env(GRAPHQL_INTROSPECTION="false")
        _refused(await _introspection(client), "__schema")


# --- GraphiQL --------------------------------------------------------------------------------

class _Page(HTMLParser):
    """Every URL the page makes the browser load, and anything inline."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (kind, url)
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "style" in a:
            self.inline.append(f"style attribute on <{tag}>")
        if any(name.startswith("on") for name in a):
            self.inline.append(f"event handler on <{tag}>")
        if tag == "script":
            self._in_script = True
            if not a.get("src"):
                self.inline.append("inline <script>")
            else:
                self.urls.append(("script", a["src"]))
        elif tag == "style":
            self.inline.append("<style> element")
        elif tag == "link" and a.get("href"):
            self.urls.append((a.get("rel") or "link", a["href"]))
        for name in ("src", "href", "data", "action", "poster") if tag not in ("script", "link") else ():
            if a.get(name):
                self.urls.append((tag, a[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("script body")


async def test_graphiql_loads_only_same_origin_files_served_with_the_right_types(client, db,
                                                                                  settings_env):
    settings_env(GRAPHIQL="true")
    page = await client.get("/graphql", headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    parser = _Page()
    parser.feed(page.text)
    assert parser.inline == []
    kinds = {kind for kind, _ in parser.urls}
    assert {"script", "stylesheet"} <= kinds
    expected_type = {"script": "text/javascript; charset=utf-8",
                     "stylesheet": "text/css; charset=utf-8"}
    scripts = []
    for kind, url in parser.urls:
        if url.startswith("data:"):
            assert kind == "icon", url
            continue
        # a path on this server: not another host, not protocol-relative
        assert url.startswith("/") and not url.startswith("//"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"] == expected_type[kind], url
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert len(asset.content) > 100, url
        if kind == "script":
            scripts.append((url, asset.text))
    names = [url.rsplit("/", 1)[-1] for url, _ in scripts]
    # React before ReactDOM before GraphiQL before our start-up script
    assert names == ["react.production.min.js", "react-dom.production.min.js", "graphiql.min.js",
                     "graphiql-init.js"]
    init = scripts[-1][1]
    assert 'new URL("/graphql", window.location.origin)' in init
    assert "isHeadersEditorEnabled: true" in init and "shouldPersistHeaders: false" in init
    assert "subscriptionUrl" not in init.replace("// No subscriptions", "")
    # the vendored files say what they are and under which licence
    readme = await client.get("/static/vendor/graphiql/README.md")
    assert "graphiql 3.8.3" in readme.text and "react 18.3.1" in readme.text
    licences = await client.get("/static/vendor/graphiql/THIRD-PARTY-LICENSES.txt")
    assert "MIT License" in licences.text and "codemirror" in licences.text


async def test_graphiql_is_a_plain_404_when_off(client, db, settings_env):
    settings_env(DATABASE_URL="postgres://app@db.example.jp/divide", GRAPHIQL=None)
    off = await client.get("/graphql", headers=BROWSER)
    assert off.status_code == 404
    assert off.headers["content-type"] == "text/plain; charset=utf-8"
    assert "GraphiQL は有効になっていません" in off.text and "<" not in off.text
    _assert_security_headers(off)
    # the API itself still answers GETs
    api = await client.get("/graphql", params={"query": "{ __typename }"},
                           headers={"Accept": "text/html, application/json"})
    assert api.json() == {"data": {"__typename": "Query"}}
    settings_env(GRAPHIQL="true")
    assert (await client.get("/graphql", headers=BROWSER)).status_code == 200
    settings_env(DATABASE_URL=None, GRAPHIQL="false")
    assert (await client.get("/graphql", headers=BROWSER)).status_code == 404
    settings_env(GRAPHIQL=None)
    assert (await client.get("/graphql", headers=BROWSER)).status_code == 200


async def test_static_files_are_only_the_files(client, db):
    assert (await client.get("/static/vendor/graphiql/")).status_code == 404  # no listing
    assert (await client.get("/static/../app.py")).status_code == 404
    assert (await client.get("/static/%2e%2e/app.py")).status_code == 404
    assert (await client.get("/static/vendor/graphiql/graphiql.min.js.map")).status_code == 404
