"""Text from outside is cleaned the same way everywhere (issue 9, finding 10).

- core.text.clean_text, which every service uses for inputs and filters, refuses NUL and other
  control characters, lone surrogates and bidirectional overrides, and bounds the length;
- the GraphQL edge refuses any variable or string literal with a NUL, a lone surrogate or more
  characters than any field takes (BAD_USER_INPUT), before anything reaches a resolver;
- request bodies and GET variables nested too deep for json are a 400, not a 500;
- the calendar and report URLs accept exactly the tokens and IDs they hand out (no trailing
  newline, no "²" for a digit);
- a resident's SMS with such characters is stored with them replaced, never lost, never a 500.
"""

from __future__ import annotations

import json
import logging
import secrets
from urllib.parse import quote

import factories
import pytest
from fake_twilio import PUBLIC_BASE_URL
from twilio.request_validator import RequestValidator

from divide_support.core.actor import Role
from divide_support.core.errors import DomainError
from divide_support.core.ids import parse_global_id, to_global_id
from divide_support.core.settings import get_settings
from divide_support.core.text import clean_text, excerpt, replace_refused
from divide_support.messaging import service as messaging
from divide_support.messaging.models import InboundMessage
from divide_support.people import service as people
from divide_support.people.models import Resident, Supporter
from divide_support.reports import service as reports
from divide_support.reports.service import ReportFilter
from divide_support.scheduling import service as scheduling

GQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
LEAKS = ("Traceback", "SELECT ", "INSERT ", "asyncpg", "tortoise", 'File "', "UnicodeEncodeError",
         "postgres")


def _assert_no_leak(text: str) -> None:
    for marker in LEAKS:
        assert marker not in text, f"{marker!r} leaked: {text[:500]}"


def _headers(accept: str, token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


# --- clean_text, the one cleaning function -------------------------------------------------

@pytest.mark.parametrize("typed", [
    "山\x00田", "\ud800", "山田\udfff", "\x1b[31m山田", "山\x07田", "\x7f", "山\u0085田",
    "\u202e田山", "山\u2066田", "山\u2028田",
])
def test_clean_text_refuses_controls_lone_surrogates_and_bidi_overrides(typed):
    with pytest.raises(DomainError) as refused:
        clean_text(typed, "family_name", "姓", 50)
    assert refused.value.code == "INVALID_CHARACTERS"
    assert refused.value.field == "family_name"
    assert "使えない文字" in refused.value.message


@pytest.mark.parametrize("typed", [
    "山田", "ｶﾅ", "髙橋", "葛\U000e0100城", "😀👨\u200d👩\u200d👧", "O'Brien-Smith", "\ue000",
])
def test_clean_text_keeps_what_people_really_type(typed):
    """Full-width and half-width forms, 異体字 selectors, emoji sequences with ZWJ, private-use
    外字 all stay."""
    assert clean_text(f" {typed} ", "familyName", "姓", 50) == typed


def test_clean_text_allows_newlines_and_tabs_only_in_multiline_text():
    assert clean_text("1行目\n2行目\t続き\u2028", "notes", "メモ", 100, multiline=True) == \
        "1行目\n2行目\t続き"
    for single in ("1行目\n2行目", "a\tb"):
        with pytest.raises(DomainError):
            clean_text(single, "title", "タイトル", 100)
    with pytest.raises(DomainError):
        clean_text("a\x00b", "notes", "メモ", 100, multiline=True)


def test_clean_text_bounds_the_length_first_and_names_the_path():
    with pytest.raises(DomainError) as refused:
        clean_text("a" * 101 + "\ud800", "districts", "地区", 100)
    assert refused.value.code == "TOO_LONG"
    assert refused.value.field == "districts"


def test_replace_refused_keeps_the_message_and_replaces_only_what_cannot_be_stored():
    assert replace_refused("停止\x00して\ud800\n") == "停止\ufffdして\ufffd\n"
    assert replace_refused("普通の返信") == "普通の返信"


def test_excerpt_is_short_whatever_it_quotes():
    assert len(excerpt("x" * 100_000)) <= 60
    nested: list = []
    for _ in range(10):
        nested = [nested] * 10
    assert len(excerpt(nested)) <= 60
    assert len(excerpt(16 ** 100_000)) <= 60
    assert "\x00" not in excerpt("a\x00b") and "\ud800" not in excerpt("\ud800")


# --- filters reaching SQL, at the service ---------------------------------------------------

@pytest.mark.parametrize("bad", ["\ud800", "山\x00", "\x1b", "あ" * 101])
async def test_resident_search_and_supporter_skill_are_cleaned_before_sql(town, bad):
    with pytest.raises(DomainError) as refused:
        await people.residents_query(town.coordinator, bad).count()
    assert refused.value.field == "search"
    with pytest.raises(DomainError) as refused:
        await people.supporters_query(town.coordinator, skill=bad[:60]).count()
    assert refused.value.code in ("INVALID_CHARACTERS", "TOO_LONG")


async def _a_survey(town):
    from divide_support.reports.models import Survey
    from divide_support.seed import load_reference_data

    await load_reference_data()
    return await Survey.get(municipality_id=town.municipality.id, key="hiratsuka-2020-internet-use")


@pytest.mark.parametrize(("districts", "code"), [
    (["中原", "\ud800"], "INVALID_CHARACTERS"),
    (["中\x00原"], "INVALID_CHARACTERS"),
    (["あ" * 101], "TOO_LONG"),
    ([f"地区{i}" for i in range(101)], "TOO_MANY"),
])
async def test_report_districts_are_cleaned_and_bounded_before_sql(town, districts, code):
    survey = await _a_survey(town)
    period = factories.at().date()
    with pytest.raises(DomainError) as refused:
        await reports.participation_report(
            actor=town.coordinator, survey_id=survey.id, metric="internet_use.using",
            report_filter=ReportFilter(date_from=period, date_to=period, districts=districts))
    assert refused.value.code == code
    assert refused.value.field == "districts"


async def test_report_districts_that_are_clean_still_filter(town):
    survey = await _a_survey(town)
    period = factories.at().date()
    report = await reports.participation_report(
        actor=town.coordinator, survey_id=survey.id, metric="internet_use.using",
        report_filter=ReportFilter(date_from=period, date_to=period, districts=[" 中原 ", ""]))
    assert report.filter.districts == ["中原"]


async def test_an_unknown_metric_is_quoted_only_in_part(town):
    survey = await _a_survey(town)
    period = factories.at().date()
    with pytest.raises(DomainError) as refused:
        await reports.participation_report(
            actor=town.coordinator, survey_id=survey.id, metric="m" * 5000,
            report_filter=ReportFilter(date_from=period, date_to=period))
    assert refused.value.code == "TOO_LONG" and len(refused.value.message) < 200


# --- the GraphQL edge ------------------------------------------------------------------------

EDGE_CASES = [
    ("query ($s: String) { residents(search: $s) { totalCount } }", "s"),
    ("query ($s: String) { supporters(skill: $s) { totalCount } }", "s"),
    ("query ($s: String) { auditLog(action: $s) { totalCount } }", "s"),
    ("query ($s: String) { auditLog(objectType: $s) { totalCount } }", "s"),
    ("query ($s: [String!]) { participationReport(surveyId: \"U3VydmV5OjE\", metric: \"x\", "
     "filter: {from: \"2026-01-01\", to: \"2026-01-31\", districts: $s}) { total { registrations } } }", "s"),
    ("query ($s: String!) { participationReport(surveyId: \"U3VydmV5OjE\", metric: $s, "
     "filter: {from: \"2026-01-01\", to: \"2026-01-31\"}) { total { registrations } } }", "s"),
    ("query ($s: ID!) { node(id: $s) { id } }", "s"),
    ("query ($s: String) { residents(after: $s) { totalCount } }", "s"),
    ("mutation ($s: String!) { login(input: {email: $s, password: \"x\"}) { token errors { code } } }", "s"),
    ("mutation ($s: String!) { createResident(input: {familyName: $s, givenName: \"花子\"}) "
     "{ resident { id } errors { code field } } }", "s"),
    ("mutation ($s: String) { createResident(input: {familyName: \"山田\", givenName: \"花子\", "
     "notes: $s}) { resident { id } errors { code field } } }", "s"),
    ("mutation ($s: String!) { importSurvey(input: {document: $s}) { errors { code } } }", "s"),
]
BAD_VALUES = {
    "lone surrogate": "山田\ud800",
    "NUL": "山\x00田",
    "over-long": "a" * 200_001,
}


@pytest.mark.parametrize(("query", "variable"), EDGE_CASES)
@pytest.mark.parametrize("bad", list(BAD_VALUES))
async def test_the_edge_refuses_nul_lone_surrogates_and_huge_strings_in_any_variable(
        client, town, caplog, query, variable, bad):
    value = BAD_VALUES[bad]
    if "[String!]" in query:
        value = ["中原", value]
    payload = json.dumps({"query": query, "variables": {variable: value}})  # \\ud800 escaped
    with caplog.at_level(logging.WARNING):
        strict = await client.post("/graphql", content=payload,
                                   headers=_headers(GQL_RESPONSE, town.tokens[Role.ADMIN]))
        lenient = await client.post("/graphql", content=payload,
                                    headers=_headers(JSON, town.tokens[Role.ADMIN]))
    assert (strict.status_code, lenient.status_code) == (400, 200), strict.text[:500]
    for response in (strict, lenient):
        _assert_no_leak(response.text)
        body = response.json()
        assert "data" not in body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert f"${variable}" in error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await Resident.all().count() == 0


@pytest.mark.parametrize("literal", ['"山\x00田"', '"山\\u0000田"', '"""山\x00田"""',
                                     '"' + "a" * 200_001 + '"'])
async def test_the_edge_refuses_such_string_literals_in_the_document(client, town, caplog, literal):
    query = f"{{ residents(search: {literal}) {{ totalCount }} }}"
    with caplog.at_level(logging.WARNING):
        response = await client.post("/graphql", json={"query": query},
                                     headers=_headers(GQL_RESPONSE, town.tokens[Role.COORDINATOR]))
    assert response.status_code == 400, response.text[:500]
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "使えない文字" in error["message"] or "長すぎます" in error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_lone_surrogates_in_the_document_are_a_syntax_error_not_internal(client, town):
    for query in ('{ residents(search: "\ud800") { totalCount } }',
                  '{ residents(search: "\\ud800") { totalCount } }', "# \udfff\n{ me { email } }"):
        response = await client.post("/graphql", content=json.dumps({"query": query}),
                                     headers=_headers(GQL_RESPONSE, town.tokens[Role.COORDINATOR]))
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["extensions"]["code"] in (
            "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT")


async def test_operation_names_and_keys_inside_variables_are_checked_too(client, town):
    for payload in ({"query": "query Q { me { email } }", "operationName": "Q\ud800"},
                    {"query": "query ($i: CreateResidentInput!) { me { email } }",
                     "variables": {"i": {"familyName\x00": "山田"}}}):
        response = await client.post("/graphql", content=json.dumps(payload),
                                     headers=_headers(JSON, town.tokens[Role.COORDINATOR]))
        assert response.status_code == 200
        _assert_no_leak(response.text)
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_variables_the_document_does_not_use_are_left_alone(client, town):
    """They never reach a resolver (and the body limit bounds them)."""
    payload = json.dumps({"query": "{ __typename }", "variables": {"pad": "\x00" * 100_000}})
    response = await client.post("/graphql", content=payload, headers=_headers(JSON, None))
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_deeply_nested_variables_are_refused_without_recursion(client, town):
    deep: object = "中原"
    for _ in range(500):
        deep = [deep]
    payload = json.dumps({"query": "query ($d: [String!]) { residents(search: \"x\") { totalCount } }",
                          "variables": {"d": deep}})
    response = await client.post("/graphql", content=payload,
                                 headers=_headers(JSON, town.tokens[Role.COORDINATOR]))
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "深すぎ" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("accept", [GQL_RESPONSE, JSON])
async def test_a_body_of_a_thousand_brackets_is_a_400_not_a_500(client, accept):
    for body in ("[" * 1000, "[" * 100_000 + "]" * 100_000,
                 '{"query": "{ me { email } }", "variables": {"a": ' + "[" * 5000 + "]" * 5000 + "}}"):
        response = await client.post("/graphql", content=body, headers=_headers(accept, None))
        assert response.status_code == 400, response.text[:300]
        assert response.headers["content-type"].startswith(accept)
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        _assert_no_leak(response.text)


async def test_get_variables_nested_too_deep_are_a_400(client, town):
    response = await client.get("/graphql", params={"query": "{ me { email } }",
                                                    "variables": "[" * 5000 + "]" * 5000},
                                headers=_headers(JSON, town.tokens[Role.COORDINATOR]))
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_control_characters_in_filters_are_bad_user_input_over_graphql(gql, caplog):
    with caplog.at_level(logging.WARNING):
        for query, variables in (
            ("query ($s: String) { residents(search: $s) { totalCount } }", {"s": "\x1b[2J"}),
            ("query ($s: String) { supporters(skill: $s) { totalCount } }", {"s": "i\u202ePhone"}),
            ("query ($s: String) { residents(search: $s) { totalCount } }", {"s": "あ" * 5000}),
        ):
            body = await gql()(query, variables)
            assert body["data"] is None, body
            assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_report_filter_over_graphql_with_a_control_character_is_bad_user_input(gql, town):
    survey = await _a_survey(town)
    body = await gql()(
        "query ($s: ID!, $d: [String!]) { participationReport(surveyId: $s, metric: "
        "\"internet_use.using\", filter: {from: \"2026-01-01\", to: \"2026-01-31\", districts: $d}) "
        "{ total { registrations } } }",
        {"s": to_global_id("Survey", survey.id), "d": ["中原", "\x07"]})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_mutations_still_name_the_field_for_other_control_characters(gql):
    body = await gql()("mutation ($n: String!) { createResident(input: {familyName: $n, "
                       "givenName: \"花子\"}) { resident { id } errors { code field } } }",
                       {"n": "山\x1b田"})
    assert body["data"]["createResident"]["errors"] == [
        {"code": "INVALID_CHARACTERS", "field": ["input", "familyName"]}]


# --- IDs and tokens in URLs --------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    to_global_id("Venue", 1) + "\n", to_global_id("Venue", 1) + "\x00", " " + to_global_id("Venue", 1),
    to_global_id("Venue", 1) + "!", "VmVudWU6MV8w",  # "Venue:1_0"
    "VmVudWU62aM",  # "Venue:٣" (an Arabic-Indic digit)
    "VmVudWU6MDE",  # "Venue:01"
    "VmVudWU6LTE",  # "Venue:-1"
    "",
])
def test_global_ids_are_exactly_what_to_global_id_writes(value):
    assert parse_global_id(value) is None


def test_global_ids_parse_with_or_without_padding():
    plain = to_global_id("Registration", 12345)
    assert parse_global_id(plain) == ("Registration", 12345)
    assert parse_global_id(plain + "=" * (-len(plain) % 4)) == ("Registration", 12345)


async def _calendar_tokens(town):
    actor = town.coordinator
    session = await factories.session(actor, factories.at(days=3, hour=10))
    resident = await factories.resident(actor)
    registration = await scheduling.register(actor=actor, session_id=session.id,
                                             resident_id=resident.id)
    supporter = await factories.supporter(actor)
    assignment = await scheduling.assign_supporter(actor=actor, session_id=session.id,
                                                   supporter_id=supporter.id)
    supporter = await Supporter.get(id=supporter.id)
    return {"registrations": registration.calendar_token, "assignments": assignment.calendar_token,
            "supporters": supporter.calendar_token}, session.venue_id


JUNK_SUFFIXES = ["%0A", "%0D%0A", "%00", "%20", "x", "%E2%80%AE", "0"]


async def test_calendar_token_urls_accept_the_token_and_nothing_else(client, town):
    tokens, _ = await _calendar_tokens(town)
    for kind, token in tokens.items():
        assert (await client.get(f"/calendar/{kind}/{token}.ics")).status_code == 200
        for junk in JUNK_SUFFIXES:
            for path in (f"/calendar/{kind}/{token}{junk}.ics", f"/calendar/{kind}/{junk}{token}.ics",
                         f"/calendar/{kind}/{token.upper()}.ics", f"/calendar/{kind}/{token[:31]}.ics"):
                response = await client.get(path)
                assert response.status_code == 404, (path, response.status_code, response.text[:200])
                assert response.text == "not found"


@pytest.mark.parametrize("raw", ["%C2%B2", "%D9%A3", "1%0A", "0", "00001", "1" * 10, "-1", "%EF%BC%91",
                                 "1%00", "9" * 9])
async def test_venue_feed_urls_take_ascii_digits_only(client, town, raw):
    response = await client.get(f"/calendar/venues/{raw}.ics")
    assert response.status_code == 404, (raw, response.status_code, response.text[:200])


async def test_the_venue_feed_itself_still_answers(client, town):
    _, venue_id = await _calendar_tokens(town)
    assert (await client.get(f"/calendar/venues/{venue_id}.ics")).status_code == 200


@pytest.mark.parametrize("path", ["/reports/participation.csv", "/reports/participation.svg"])
async def test_report_files_refuse_junk_in_ids_and_filters_with_a_4xx(client, town, path):
    survey = await _a_survey(town)
    good = {"surveyId": to_global_id("Survey", survey.id), "metric": "internet_use.using",
            "from": "2026-01-01", "to": "2026-01-31"}
    headers = {"Authorization": f"Bearer {town.tokens[Role.COORDINATOR]}"}
    assert (await client.get(path, params=good, headers=headers)).status_code == 200
    for change in ({"surveyId": good["surveyId"] + "\n"}, {"surveyId": good["surveyId"] + "\x00"},
                   {"metric": "internet_use.using\x00"}, {"metric": "m" * 10_000},
                   {"districts": "中原,\x00"}, {"districts": "中原,\x1b"}, {"districts": "あ" * 500},
                   {"venueIds": to_global_id("Venue", 1) + "\n"}, {"from": "2026-01-01\n"},
                   {"kinds": "CLASS\n"}):
        response = await client.get(path, params={**good, **change}, headers=headers)
        assert 400 <= response.status_code < 500, (change, response.status_code, response.text[:200])
        _assert_no_leak(response.text)
        assert len(response.text) < 1000


async def test_activity_file_refuses_junk_ids_with_a_4xx(client, town):
    headers = {"Authorization": f"Bearer {town.tokens[Role.COORDINATOR]}"}
    for venue_ids in (to_global_id("Venue", 1) + "\n", "\x00", "VmVudWU6MV8w"):
        response = await client.get("/reports/activity.csv", headers=headers, params={
            "from": "2026-01-01", "to": "2026-01-31", "venueIds": venue_ids})
        assert response.status_code == 404, response.text


# --- a resident's SMS ----------------------------------------------------------------------------

TWILIO_TOKEN = secrets.token_hex(16)
INBOUND = "/webhooks/twilio/inbound?municipality=142034"


@pytest.fixture
def twilio_env(monkeypatch):
    get_settings.cache_clear()
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


async def _post_signed(client, path: str, params: dict[str, str]):
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + path, params)
    return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def _inbound(body: str, sid: str | None = None, sender: str = "+819012345678") -> dict[str, str]:
    return {"MessageSid": sid or "SM" + secrets.token_hex(16), "From": sender, "To": "+815012345678",
            "Body": body, "NumSegments": "1"}


async def test_a_signed_sms_with_nul_is_stored_with_it_replaced(client, town, twilio_env):
    await factories.resident(town.coordinator, phone="090-1234-5678", sms=True)
    params = _inbound("明日\x00行けません\x07")
    response = await _post_signed(client, INBOUND, params)
    assert response.status_code == 200, response.text
    stored = await InboundMessage.get(provider_id=params["MessageSid"])
    assert stored.body == "明日\ufffd行けません\ufffd"
    assert stored.resident_id is not None


async def test_a_signed_sms_with_junk_in_every_field_is_never_a_500(client, town, twilio_env):
    for params, path in (
        (_inbound("停止", sid="SM\x00" + "a" * 100, sender="\x00+81\x1b"), INBOUND),
        (_inbound("ヘルプ"), "/webhooks/twilio/inbound?municipality=142034%00"),
        (_inbound("ヘルプ"), "/webhooks/twilio/inbound?municipality=" + "1" * 50),
    ):
        response = await _post_signed(client, path, params)
        assert response.status_code == 200, (params, response.text)
    assert await InboundMessage.all().count() == 3


async def test_a_signed_sms_with_a_lone_surrogate_s_bytes_is_stored_with_it_replaced(client, town,
                                                                                   twilio_env):
    """UTF-8 cannot carry a lone surrogate; its bytes (ED A0 80) arrive and are read as U+FFFD."""
    params = _inbound("\ufffd\ufffd\ufffd 行けます")  # what the server reads: one per byte
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + INBOUND, params)
    raw = "&".join(f"{k}={quote(v)}" for k, v in params.items()).replace(
        quote("\ufffd\ufffd\ufffd"), "%ED%A0%80")
    response = await client.post(INBOUND, content=raw.encode(), headers={
        "X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    assert (await InboundMessage.get(provider_id=params["MessageSid"])).body == params["Body"]


async def test_receive_reply_replaces_lone_surrogates_in_the_body(town):
    await factories.resident(town.coordinator, phone="090-1234-5678", sms=True)
    inbound, municipality = await messaging.receive_reply(
        provider_id="SM" + secrets.token_hex(16), from_number="+819012345678",
        body="行けます\ud800\udfff", municipality_code="142034")
    assert municipality is not None
    assert (await InboundMessage.get(id=inbound.id)).body == "行けます\ufffd\ufffd"


async def test_status_callbacks_with_junk_are_acknowledged_not_a_500(client, town, twilio_env):
    for params, query in (
        ({"MessageSid": "SM\x00x", "MessageStatus": "delivered"}, ""),
        ({"MessageSid": "SM" + "a" * 200, "MessageStatus": "delivered"}, ""),
        ({"MessageSid": "SMabc", "MessageStatus": "delivered", "ErrorCode": "1" * 100}, ""),
        ({"MessageSid": "SMabc", "MessageStatus": "sent\x00"}, "?message_id=" + "9" * 30 + "&attempt=1"),
        ({"MessageSid": "SMabc", "MessageStatus": "sent"}, "?message_id=%D9%A3&attempt=%00"),
    ):
        response = await _post_signed(client, "/webhooks/twilio/status" + query, params)
        assert response.status_code == 204, (params, response.text)
