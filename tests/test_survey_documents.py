"""Survey documents from outside (importSurvey, `divide-support import-survey`) are bounded
before anything is expanded: size, nesting depth, aliases and what the aliases expand to,
the length of one value. Every refusal is INVALID_SURVEY with a short message that quotes at
most an excerpt of the offending value, and the server goes on answering while one is read."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from divide_support.core.actor import Role
from divide_support.core.errors import DomainError
from divide_support.reports.models import Survey
from divide_support.reports.surveys import parse_survey

GOOD = """
municipality: "142034"
key: test-survey
title: テスト調査
year: 2024
metric_groups:
  - key: use
    exhaustive: true
    metrics: [{key: using, need: complement}, {key: not_using}]
bands:
  - {label: 60代, min_age: 60, max_age: 69, respondents: 10, values: {use.using: 60, use.not_using: 40}}
  - {label: 70歳以上, min_age: 70, max_age: null, respondents: 10, values: {use.using: 30, use.not_using: 70}}
"""
SHORT = 400  # no refusal needs more characters than this to say where and why
IMPORT = """mutation ($d: String!) { importSurvey(input: {document: $d}) {
    survey { key } errors { code message field } } }"""


def laughs(levels: int, *, at: str = "municipality") -> str:
    """The "billion laughs": each level is ten aliases of the level before, all inside the
    one value (so nothing else about the document is wrong)."""
    parts = ['&l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]']
    for level in range(1, levels):
        parts.append(f"&l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    return f"{at}: [" + ", ".join(parts) + "]\n"


def refusal(text: str) -> DomainError:
    with pytest.raises(DomainError) as caught:
        parse_survey(text)
    error = caught.value
    assert error.code == "INVALID_SURVEY", error
    assert error.field == "document"
    assert len(error.message) <= SHORT and len(error.message_en) <= SHORT, error.message[:1000]
    return error


def test_the_393_byte_billion_laughs_is_refused_at_once_with_a_short_message():
    document = laughs(7)
    assert len(document.encode()) < 600
    started = time.monotonic()
    error = refusal(document)
    assert time.monotonic() - started < 2.0  # generous: expanded, it took seconds and 80 MB
    assert "別名" in error.message


@pytest.mark.parametrize("at", ["municipality", "title", "bands", "metric_groups", "key"])
def test_aliases_that_expand_beyond_any_survey_are_refused_whatever_they_fill(at):
    error = refusal(laughs(12, at=at))
    assert "別名" in error.message


def test_many_aliases_are_refused_even_when_each_is_small():
    anchors = "x: &x 1\n" + "".join(f"k{i}: *x\n" for i in range(500))
    assert "別名" in refusal(anchors).message


def test_an_alias_to_itself_is_refused():
    assert "別名" in refusal("municipality: &a [*a]\n").message


def test_the_shipped_documents_and_a_small_alias_still_load():
    document = GOOD.replace("metrics: [{key: using, need: complement}, {key: not_using}]",
                            "metrics: &m [{key: using, need: complement}, {key: not_using}]")
    assert parse_survey(document).key == "test-survey"
    assert parse_survey(GOOD).title == "テスト調査"


@pytest.mark.parametrize("text", [
    "[" * 50_000 + "]" * 50_000,
    "bands:\n" + "".join(" " * (2 * i) + "- \n" for i in range(300)),
    "{" * 50_000,
    json.dumps({"municipality": "142034"})[:-1] + ', "bands": ' + "[" * 20_000 + "]" * 20_000 + "}",
    '{"title": "' + "[" * 100 + '", "bands": ' + "[" * 100 + "]" * 100 + "}",
])
def test_deep_nesting_yaml_or_json_is_refused_not_a_recursion_error(text):
    error = refusal(text)
    assert "入れ子" in error.message or "読めません" in error.message


def test_brackets_inside_json_strings_are_not_nesting():
    document = json.loads(json.dumps(__import__("yaml").safe_load(GOOD)))
    document["title"] = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ {{{{{{{{{{{{{{{{{{{{{{{{{ \\\" ["
    assert parse_survey(json.dumps(document)).title == document["title"]


@pytest.mark.parametrize("change", [
    ("year: 2024", "year: " + "9" * 5000),                       # Python refuses int("9" * 5000)
    ("year: 2024", "year: 0x" + "f" * 100_000),                   # hex is not bounded by Python
    ("year: 2024", "year: 1" + ":30" * 30_000),                   # YAML 1.1 base 60
    ("year: 2024", "year: 2024\nfield_period: {from: 2020-02-30}"),  # no such day
    ("title: テスト調査", "title: !!binary 4p2k=="),
    ("title: テスト調査", "title: !!python/object/apply:os.system [echo]"),
])
def test_values_python_cannot_take_are_refused_as_the_document_s_fault(change):
    error = refusal(GOOD.replace(*change))
    assert "Traceback" not in error.message


def test_error_messages_quote_only_an_excerpt_of_a_long_value():
    long_code = "1" * 9_000
    error = refusal(GOOD.replace('municipality: "142034"', f'municipality: "{long_code}"'))
    assert "111111" in error.message  # it still says what it found
    long_year = GOOD.replace("year: 2024", "year: [" + ", ".join(["2024"] * 30_000) + "]")
    assert "2024, 2024" in refusal(long_year).message
    many_keys = GOOD + "".join(f"unknown_{i}_{'x' * 50}: 1\n" for i in range(2000))
    assert "unknown_" in refusal(many_keys).message


@pytest.mark.parametrize("title", ['"a\\0b"', '"\\ud800"', '"a\\x07b"', '"\\u202Eevil"'])
def test_control_characters_and_lone_surrogates_in_values_are_refused(title):
    error = refusal(GOOD.replace("title: テスト調査", f"title: {title}"))
    assert "title" in error.message and "使えない文字" in error.message


def test_json_escapes_of_nul_and_lone_surrogates_are_refused():
    import yaml

    document = yaml.safe_load(GOOD)
    for bad in ("a\x00b", "\ud800", "x\udfff"):
        document["bands"][0]["label"] = bad
        text = json.dumps(document)  # ensure_ascii: "\\u0000", "\\ud800"
        assert "使えない文字" in refusal(text).message


@pytest.mark.parametrize("text", ["前\x1b[2J後\x07", "\x00", GOOD + "\x1b", "\ud800: 1"])
def test_raw_control_characters_anywhere_in_the_text_are_refused_as_unreadable(text):
    assert "読めません" in refusal(text).message


def test_a_document_over_the_size_limit_is_refused_before_it_is_read():
    assert "大きすぎます" in refusal(GOOD + "#" * 200_001).message


YAMLISH = st.lists(
    st.sampled_from([
        "&a ", "*a", "&b ", "*b", "[", "]", "{", "}", ", ", ": ", "\n", "- ", "  ", "<<: ", '"',
        "\\0", "\\ud800", "!!binary ", "!!int ", "!!timestamp ", "0x1f", "2020-02-30", "1:2:3",
        "9" * 10, "~", "null", "true", "municipality", "bands", "metric_groups", "key", "title",
        "year", "values", "label", "min_age", "'", "#", "\t", "? ", "|\n", ">\n", "---\n", "%YAML 1.1\n",
        "\x1b", "\x00", "\x85", "\ufeff", "\ud800",
    ]),
    max_size=60,
).map("".join)


@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_whatever_the_text_parse_survey_answers_with_a_document_or_a_short_refusal(text):
    try:
        parse_survey(GOOD + text)
        parse_survey(text)
    except DomainError as error:
        assert error.code == "INVALID_SURVEY" and len(error.message) <= SHORT, error.message[:500]


async def _longest_stall(work) -> tuple[object, float]:
    """Run work and measure the longest time the event loop did not get round to a ticker:
    what any other request (/healthz, a registration) would have waited."""
    stalls = [0.0]
    done = asyncio.Event()

    async def tick():
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            stalls.append(now - last)
            last = now

    ticker = asyncio.ensure_future(tick())
    try:
        result = await asyncio.wait_for(work, timeout=60)
    finally:
        done.set()
        await ticker
    return result, max(stalls)


async def test_import_survey_over_http_refuses_the_billion_laughs_at_once(town, gql, client):
    started = time.monotonic()
    response, _ = await _longest_stall(gql(Role.ADMIN).post(IMPORT, {"d": laughs(7)}))
    assert time.monotonic() - started < 10.0  # generous; expanded it took 4.8 s and 80 MB
    assert response.status_code == 200
    assert len(response.content) < 2000
    [error] = response.json()["data"]["importSurvey"]["errors"]
    assert error["code"] == "INVALID_SURVEY" and error["field"] == ["input", "document"]
    assert await Survey.all().count() == 0
    assert (await client.get("/healthz")).status_code == 200


async def test_the_server_goes_on_answering_while_a_large_document_is_read(town, gql, client):
    """A document near the size limit takes a while to read (this one seconds, read the way
    it was): that happens beside the event loop, so other requests are not held up."""
    document = GOOD + "population: [" + "1, " * 66_000 + "1]\n"
    assert 190_000 < len(document) < 200_000
    response, stall = await _longest_stall(gql(Role.ADMIN).post(IMPORT, {"d": document}))
    [error] = response.json()["data"]["importSurvey"]["errors"]
    assert error["code"] == "INVALID_SURVEY"
    assert stall < 1.0, stall  # generous: reading it on the event loop stalled it for seconds
    assert (await client.get("/healthz")).status_code == 200


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.dates().map(str) | st.sampled_from(["142034", "use.using", "use", "60代", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10) | st.sampled_from(
        ["key", "label", "min_age", "max_age", "values", "metrics", "need", "use.using"]), inner, max_size=4),
    max_leaves=12,
)
PLACES = [("municipality",), ("key",), ("title",), ("year",), ("field_period",), ("source",),
          ("sample_size",), ("metric_groups",), ("metric_groups", 0, "key"),
          ("metric_groups", 0, "metrics"), ("metric_groups", 0, "metrics", 0, "need"),
          ("metric_groups", 0, "exhaustive"), ("bands",), ("bands", 0, "label"),
          ("bands", 0, "min_age"), ("bands", 1, "max_age"), ("bands", 0, "values"),
          ("bands", 1, "values", "use.using"), ("population",)]


@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PLACES), VALUES, st.booleans())
def test_whatever_value_stands_anywhere_the_answer_is_a_document_or_a_short_refusal(place, value,
                                                                                    as_json):
    import yaml

    document = yaml.safe_load(GOOD)
    target = document
    for step in place[:-1]:
        target = target[step]
    target[place[-1]] = value
    text = json.dumps(document, default=str) if as_json else yaml.safe_dump(document)
    try:
        parse_survey(text)
    except DomainError as error:
        assert error.code == "INVALID_SURVEY" and len(error.message) <= SHORT, error.message[:500]
