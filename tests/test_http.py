"""GraphQL over HTTP through the ASGI app: media types, status codes, limits, error masking.

See https://graphql.github.io/graphql-over-http/ (the audit suite in
test_graphql_http_audit.py checks the same against a real server).
"""

from __future__ import annotations

import json
import logging

import pytest

from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.people import service as people
from divide_support.people.models import Resident
from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import Venue

GQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"

LEAKS = ("Traceback", "SELECT", "INSERT", "asyncpg", "tortoise", 'File "', "postgres", "0x00")


def _media(response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def _assert_no_leak(text: str) -> None:
    for marker in LEAKS:
        assert marker not in text, f"{marker!r} leaked into the response: {text}"


def _headers(accept: str = JSON, token: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": accept, **extra}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _nested(levels: int) -> str:
    """`levels` nested fields under `me` (me -> supporter -> assignments -> session -> ...) and a
    leaf `id`: depth `levels + 1` as graphql-depth-limit counts it (the root field is depth 0)."""
    chain = ["supporter", "assignments", "session", "assignments"]
    inner = "id"
    fields = [chain[i % len(chain)] for i in range(levels)]
    for name in reversed(fields):
        inner = f"{name} {{ {inner} }}"
    return f"{{ me {{ {inner} }} }}"


# --- plain endpoints ---------------------------------------------------------------------

async def test_graphiql_is_served_to_browsers(client):
    response = await client.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readyz_checks_the_database(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"


# --- request errors ----------------------------------------------------------------------

async def test_body_over_one_megabyte_is_413(client):
    padding = "x" * 1_000_100
    body = json.dumps({"query": "{ __typename }", "variables": {"pad": padding}})
    response = await client.post("/graphql", content=body, headers=_headers())
    assert response.status_code == 413
    assert "data" not in response.json()


async def test_streamed_body_over_one_megabyte_is_413_without_content_length(client):
    async def chunks():
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(20):
            yield b"x" * 60_000
        yield b'"}}'

    response = await client.post("/graphql", content=chunks(), headers=_headers())
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413


async def test_body_just_under_the_limit_is_accepted(client):
    padding = "x" * 900_000
    body = json.dumps({"query": "{ __typename }", "variables": {"pad": padding}})
    response = await client.post("/graphql", content=body, headers=_headers())
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", [JSON, GQL_RESPONSE])
async def test_malformed_json_is_400(client, accept):
    response = await client.post("/graphql", content=b'{"query": "{ __typename }"',
                                 headers=_headers(accept))
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["message"]


async def test_body_that_is_not_an_object_is_400(client):
    response = await client.post("/graphql", content=b'["{ __typename }"]', headers=_headers())
    assert response.status_code == 400


@pytest.mark.parametrize("accept", [JSON, GQL_RESPONSE])
async def test_missing_query_is_400(client, accept):
    response = await client.post("/graphql", json={"variables": {}}, headers=_headers(accept))
    assert response.status_code == 400
    assert "data" not in response.json()
    response = await client.post("/graphql", json={"query": 42}, headers=_headers(accept))
    assert response.status_code == 400


async def test_variables_must_be_an_object(client):
    response = await client.post("/graphql", json={"query": "{ __typename }", "variables": "[]"},
                                 headers=_headers())
    assert response.status_code == 400


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/graphql"])
async def test_wrong_content_type_is_415(client, content_type):
    response = await client.post(
        "/graphql", content=json.dumps({"query": "{ __typename }"}),
        headers={"Content-Type": content_type, "Accept": JSON})
    assert response.status_code == 415


async def test_content_type_with_charset_is_accepted(client):
    response = await client.post(
        "/graphql", content=json.dumps({"query": "{ __typename }"}).encode(),
        headers={"Content-Type": "application/json; charset=utf-8", "Accept": GQL_RESPONSE})
    assert response.status_code == 200
    assert _media(response) == GQL_RESPONSE
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_unacceptable_accept_is_406(client):
    response = await client.post("/graphql", json={"query": "{ __typename }"},
                                 headers=_headers("text/csv"))
    assert response.status_code == 406


# --- media types and status codes --------------------------------------------------------

async def test_graphql_response_json_parse_error_is_400_without_data(client):
    response = await client.post("/graphql", json={"query": "{ __typename "},
                                 headers=_headers(GQL_RESPONSE))
    assert response.status_code == 400
    assert _media(response) == GQL_RESPONSE
    assert "charset=utf-8" in response.headers["content-type"].lower()
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["message"]
    assert body["errors"][0]["locations"]


async def test_graphql_response_json_validation_error_is_400(client):
    response = await client.post("/graphql", json={"query": "{ noSuchField }"},
                                 headers=_headers(GQL_RESPONSE))
    assert response.status_code == 400
    assert _media(response) == GQL_RESPONSE
    body = response.json()
    assert "data" not in body
    assert "noSuchField" in body["errors"][0]["message"]


async def test_graphql_response_json_variable_error_is_400(client):
    response = await client.post(
        "/graphql",
        json={"query": "query ($n: Int!) { understaffedSessions(weeks: $n) { id } }",
              "variables": {"n": "four"}},
        headers=_headers(GQL_RESPONSE))
    assert response.status_code == 400
    assert "data" not in response.json()


async def test_graphql_response_json_success(client, gql):
    response = await client.post("/graphql", json={"query": "{ me { email role } }"},
                                 headers=_headers(GQL_RESPONSE, gql().token))
    assert response.status_code == 200
    assert _media(response) == GQL_RESPONSE
    assert response.json()["data"]["me"]["role"] == "COORDINATOR"


async def test_execution_errors_keep_200_and_data_with_graphql_response_json(client):
    # Unauthenticated is a field error during execution: the response has `data`.
    response = await client.post("/graphql", json={"query": "{ me { id } }"},
                                 headers=_headers(GQL_RESPONSE))
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"me": None}
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("query", ["{ __typename ", "{ noSuchField }"])
async def test_application_json_reports_the_same_errors_with_200(client, query):
    response = await client.post("/graphql", json={"query": query}, headers=_headers(JSON))
    assert response.status_code == 200
    assert _media(response) == JSON
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["message"]


@pytest.mark.parametrize(("accept", "status"), [(GQL_RESPONSE, 400), (JSON, 200)])
async def test_an_operation_name_the_document_lacks_is_a_request_error(client, accept, status):
    """Was a 500 INTERNAL: strawberry raises when operationName names no operation."""
    response = await client.post("/graphql", headers=_headers(accept), json={
        "query": "query Today { __typename } query Tomorrow { __typename }",
        "operationName": "Yesterday"})
    assert response.status_code == status
    assert _media(response) == accept
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "operationName" in body["errors"][0]["message"]


async def test_no_accept_header_means_application_json(client):
    response = await client.post("/graphql", json={"query": "{ __typename }"},
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert _media(response) == JSON


async def test_accept_prefers_the_higher_quality(client):
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"},
        headers=_headers(f"{JSON};q=0.5, {GQL_RESPONSE};q=0.9"))
    assert _media(response) == GQL_RESPONSE


async def test_query_over_get(client):
    response = await client.get("/graphql", params={"query": "{ __typename }"},
                                headers={"Accept": GQL_RESPONSE})
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_mutation_over_get_is_405(client, gql):
    query = 'mutation { createVenue(input: {name: "x", kind: OTHER}) { errors { code } } }'
    response = await client.get("/graphql", params={"query": query},
                                headers={"Accept": JSON, "Authorization": f"Bearer {gql().token}"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert await Venue.all().count() == 0


async def test_the_request_id_is_the_servers_and_the_clients_is_kept_beside_it(client):
    # Audit rows are found by the request id: a client must not choose it (it could reuse
    # another request's id), so ours is always generated here and the client's comes back apart.
    response = await client.post("/graphql", json={"query": "{ __typename }"},
                                 headers=_headers(**{"X-Request-ID": "counter-42"}))
    ours = response.headers["x-request-id"]
    assert ours != "counter-42" and len(ours) == 32
    assert response.headers["x-client-request-id"] == "counter-42"
    again = await client.post("/graphql", json={"query": "{ __typename }"},
                              headers=_headers(**{"X-Request-ID": "counter-42"}))
    assert again.headers["x-request-id"] != ours
    response = await client.post("/graphql", json={"query": "{ __typename }"},
                                 headers=_headers(**{"X-Request-ID": "bad id\twith tab"}))
    assert len(response.headers["x-request-id"]) == 32
    assert "x-client-request-id" not in response.headers
    # Every route has one, not only /graphql.
    assert len((await client.get("/healthz")).headers["x-request-id"]) == 32


# --- GraphQL limits ----------------------------------------------------------------------

async def test_depth_limit(client, gql):
    token = gql().token
    ok = await client.post("/graphql", json={"query": _nested(9)}, headers=_headers(GQL_RESPONSE, token))
    assert ok.status_code == 200, ok.text
    assert "errors" not in ok.json(), ok.text

    # depth 10 is the limit; depth 11 is refused during validation, before anything runs
    too_deep = await client.post("/graphql", json={"query": _nested(10)},
                                 headers=_headers(GQL_RESPONSE, token))
    assert too_deep.status_code == 400, too_deep.text
    body = too_deep.json()
    assert "data" not in body
    assert "depth" in body["errors"][0]["message"]


async def test_alias_limit(client, gql):
    token = gql().token
    thirty = "{ " + " ".join(f"a{i}: __typename" for i in range(30)) + " }"
    response = await client.post("/graphql", json={"query": thirty},
                                 headers=_headers(GQL_RESPONSE, token))
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 30

    many = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(31)) + " }"
    response = await client.post("/graphql", json={"query": many},
                                 headers=_headers(GQL_RESPONSE, token))
    assert response.status_code == 400, response.text
    body = response.json()
    assert "data" not in body
    assert "alias" in body["errors"][0]["message"].lower()


async def test_token_limit(client):
    # 3000 tokens (limit 2000): refused by the parser before any work is done.
    huge = "{ " + " ".join("__typename" for _ in range(3000)) + " }"
    response = await client.post("/graphql", json={"query": huge}, headers=_headers(GQL_RESPONSE))
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert "token" in body["errors"][0]["message"].lower()


async def test_page_size_is_capped_and_negative_refused(gql):
    # `first` over 100 is capped, never refused; negative is refused (BAD_USER_INPUT).
    body = await gql()("{ residents(first: 1000) { totalCount edges { cursor } } }")
    assert "errors" not in body
    body = await gql()("{ residents(first: -1) { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# --- error masking -----------------------------------------------------------------------

async def test_an_unexpected_exception_is_masked_and_logged_with_the_request_id(client, gql, monkeypatch,
                                                                                caplog):
    # No healthy code path fails on purpose, so a service fails here the way a broken query
    # would: with SQL and driver names in its message. None of it may reach the client.
    def broken(actor):
        raise RuntimeError('asyncpg.exceptions.UndefinedColumnError: SELECT "phone" FROM "resident" '
                           "WHERE municipality_id=1\nTraceback (most recent call last)")

    monkeypatch.setattr(scheduling, "venues_query", broken)
    token = gql().token
    with caplog.at_level(logging.ERROR, logger="divide_support.graphql"):
        response = await client.post("/graphql", json={"query": "{ venues { id } me { role } }"},
                                     headers=_headers(JSON, token))
    assert response.status_code == 200
    _assert_no_leak(response.text)
    assert "resident" not in response.text and "phone" not in response.text
    body = response.json()
    assert body["data"] is None  # venues is non-null, so the whole data goes
    [error] = body["errors"]
    assert error["path"] == ["venues"]
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {"code": "INTERNAL", "requestId": request_id}
    assert set(error) <= {"message", "locations", "path", "extensions"}
    # Operators find the real cause in the log under the same request id.
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info and "UndefinedColumnError" in str(logged[0].exc_info[1])


async def test_an_unexpected_exception_in_a_mutation_is_masked(client, gql, monkeypatch):
    async def broken(**kwargs):
        raise RuntimeError('INSERT INTO "resident" ("phone") VALUES ($1): asyncpg pool exhausted')

    monkeypatch.setattr(people, "create_resident", broken)
    response = await client.post(
        "/graphql", headers=_headers(GQL_RESPONSE, gql().token),
        json={"query": 'mutation { createResident(input: {familyName: "山田", givenName: "花子"}) '
                       "{ resident { id } errors { code } } }"})
    _assert_no_leak(response.text)
    body = response.json()
    assert response.status_code == 200  # execution started: a field error, not a request error
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL"


@pytest.mark.parametrize(("query", "variables"), [
    ("query ($s: String) { residents(search: $s) { totalCount } }", {"s": "山\u0000田"}),
    ("query ($s: String) { supporters(skill: $s) { totalCount } }", {"s": "\u0000"}),
    ('mutation ($n: String!) { createResident(input: {familyName: $n, givenName: "花子"}) '
     "{ resident { id } errors { code field } } }", {"n": "山\u0000田"}),
])
async def test_nul_characters_never_leak_database_errors(client, gql, query, variables):
    # PostgreSQL refuses NUL in text (copied from a PDF, say): asyncpg raises in the resolver.
    # Whether the API rejects it up front or masks the failure, nothing internal gets out
    # and nothing is stored.
    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                 headers=_headers(JSON, gql().token))
    assert response.status_code == 200
    _assert_no_leak(response.text)
    body = response.json()
    problems = [e["extensions"]["code"] for e in body.get("errors", [])]
    for payload in (body.get("data") or {}).values():
        if isinstance(payload, dict) and "errors" in payload:
            problems += [e["code"] for e in payload["errors"]]
    # searches: a clean BAD_USER_INPUT; mutations: a UserError naming the field
    assert problems and set(problems) <= {"BAD_USER_INPUT", "INVALID_CHARACTERS"}, body
    assert await Resident.all().count() == 0


@pytest.mark.parametrize(("query", "variables"), [
    ("query ($n: Int!) { understaffedSessions(weeks: $n) { id } }", {"n": "four"}),
    ("query ($d: DateTime) { sessions(from: $d) { totalCount } }", {"d": "not a date"}),
    ("query ($d: Date) { followUps(dueBefore: $d) { totalCount } }", {"d": "2024-02-30"}),
])
async def test_bad_variable_values_are_the_clients_mistake_not_internal(client, gql, caplog, query,
                                                                        variables):
    token = gql().token
    with caplog.at_level(logging.ERROR, logger="divide_support.graphql"):
        strict = await client.post("/graphql", json={"query": query, "variables": variables},
                                   headers=_headers(GQL_RESPONSE, token))
        lenient = await client.post("/graphql", json={"query": query, "variables": variables},
                                    headers=_headers(JSON, token))
    assert (strict.status_code, lenient.status_code) == (400, 200)
    for response in (strict, lenient):
        body = response.json()
        assert "data" not in body
        [error] = body["errors"]
        # The client must learn which variable is wrong; INTERNAL would send them to us instead.
        assert error["extensions"]["code"] in ("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"), body
        assert "$" + next(iter(variables)) in error["message"], body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a client mistake was logged as an error"


async def test_a_datetime_outside_the_database_range_is_bad_input(gql):
    body = await gql()('{ sessions(from: "0001-01-01T00:00:00+14:00") { totalCount } }')
    assert body["errors"][0]["extensions"]["code"] in ("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"), body


async def test_request_errors_leak_nothing(client):
    for content, headers in (
        (b"{not json", _headers()),
        (b"\xff\xfe\x00garbage", _headers()),
        (json.dumps({"query": "{ __typename"}).encode(), _headers(GQL_RESPONSE)),
        (json.dumps({"query": "query { node(id: 1 }"}).encode(), _headers(GQL_RESPONSE)),
    ):
        response = await client.post("/graphql", content=content, headers=headers)
        assert response.status_code in (400, 200)
        _assert_no_leak(response.text)


async def test_huge_ids_are_misses_not_errors(gql):
    big = to_global_id("Session", 2**40)
    body = await gql()("query ($id: ID!) { node(id: $id) { id } }", {"id": big})
    assert body == {"data": {"node": None}}
    body = await gql()("query { node(id: \"!!not-base64!!\") { id } }")
    assert body == {"data": {"node": None}}
    body = await gql()("""mutation ($id: ID!) {
      register(input: {sessionId: $id, residentId: $id}) { registration { id } errors { code field } }
    }""", {"id": big})
    assert "errors" not in body
    [error] = body["data"]["register"]["errors"]
    assert error["code"] == "NOT_FOUND"
    _assert_no_leak(json.dumps(body, ensure_ascii=False))


# --- language ----------------------------------------------------------------------------

BAD_PHONE = """mutation {
  createResident(input: {familyName: "山田", givenName: "花子", phone: "03-1234-5678"}) {
    resident { id } errors { code message field }
  }
}"""


async def test_user_errors_are_japanese_by_default(gql):
    body = await gql()(BAD_PHONE)
    [error] = body["data"]["createResident"]["errors"]
    assert error["code"] == "INVALID_PHONE"
    assert "携帯電話" in error["message"]


@pytest.mark.parametrize("header", ["en", "en-US,en;q=0.9,ja;q=0.8", "EN-gb"])
async def test_user_errors_in_english_on_request(gql, header):
    body = await gql()(BAD_PHONE, **{"Accept-Language": header})
    [error] = body["data"]["createResident"]["errors"]
    assert error["code"] == "INVALID_PHONE"
    assert error["message"] == "Enter a Japanese mobile number (070, 080 or 090)."


async def test_japanese_first_stays_japanese(gql):
    body = await gql()(BAD_PHONE, **{"Accept-Language": "ja-JP,en;q=0.8"})
    [error] = body["data"]["createResident"]["errors"]
    assert "携帯電話" in error["message"]


async def test_planner_sees_forbidden_in_english(gql):
    body = await gql(Role.PLANNER)(BAD_PHONE, **{"Accept-Language": "en"})
    [error] = body["data"]["createResident"]["errors"]
    assert error["code"] == "FORBIDDEN"
    assert error["message"] == "You are not allowed to do this."
