"""Property-based fuzzing of the GraphQL API (issue 9): operations generated from our own
schema by hypothesis-graphql, posted over HTTP to the real app (in-process, through
httpx.ASGITransport) as every role and anonymously, against a municipality filled with the
demo data (and a second one, for IDs that belong elsewhere).

Whatever is sent: no 5xx, no error with extensions.code INTERNAL, no stack trace, SQL or
driver name in any body, no unexpected error in the log, and the server is healthy after.

Reproducible: derandomized with no example database, a fixed number of examples per test
(printed at the end). Failures are collected rather than shrunk (the database changes as
the fuzzer goes, so a replay would not be the same), and each distinct one is listed with the
operation and the role that found it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import graphql
import httpx
import pytest
from conftest import PASSWORD
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from divide_support.accounts import service as accounts
from divide_support.accounts.models import AuthToken, User
from divide_support.api.schema import export_sdl
from divide_support.core.actor import Role
from divide_support.core.ids import to_global_id
from divide_support.demo import load_demo
from divide_support.people.models import Supporter
from divide_support.scheduling.models import Assignment

SDL = export_sdl()
ROLES: tuple[str, ...] = ("ADMIN", "COORDINATOR", "SUPPORTER", "PLANNER", "anonymous")
GQL_RESPONSE = "application/graphql-response+json"
JSON_MEDIA = "application/json"
# What must never be in a body (unless the operation itself said it, e.g. in a string literal).
LEAKS = ("Traceback", 'File "', "SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", " WHERE ",
         "asyncpg", "tortoise", "psycopg", "postgres", "pgserver", "UniqueViolation",
         "UnicodeEncodeError", "RecursionError", "NoneType", "object has no attribute")

# --- values the generator puts in arguments --------------------------------------------------

NODE_TYPES = ("Municipality", "User", "Venue", "Course", "Session", "Assignment", "Registration",
              "Visit", "Resident", "Supporter", "FollowUp", "Message", "InboundMessage", "Survey",
              "AuditEntry")
JUNK_IDS = ("", " ", "0", "1", "-1", "null", "VmVudWU6MA", "VmVudWU6LTE", "VmVudWU6MV8w",
            to_global_id("Venue", 2**31), to_global_id("Venue", 2**63 - 1), "VmVudWU6MQ\n",
            "Venue:1", "\u202eVmVudWU6MQ", "=" * 8, "%00", "VmVudWU6MQ==", "U2Vzc2lvbjox" * 30)
# Real IDs: identities restart at 1 for every test, and the demo makes dozens of each kind;
# the second municipality's rows come after the first's.
REAL_IDS = st.builds(to_global_id, st.sampled_from(NODE_TYPES), st.integers(1, 400))

NOW = datetime.now(UTC)
JUNK_DATETIMES = st.one_of(
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "2026-02-30T10:00:00",
                     "2026-06-01", "now", "", "2026-06-01T25:00:00Z", "+275760-09-13T00:00:00Z"]),
    st.text(max_size=25))
GOOD_DATETIMES = st.datetimes(
    min_value=(NOW - timedelta(days=60)).replace(tzinfo=None),
    max_value=(NOW + timedelta(days=120)).replace(tzinfo=None),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=9))])).map(lambda d: d.isoformat())
JUNK_DATES = st.one_of(st.sampled_from(["0001-01-01", "9999-12-31", "2024-02-30", "20260601",
                                        "2026-W01-1", "", "today"]), st.text(max_size=12))
GOOD_DATES = st.dates(min_value=date.today() - timedelta(days=4000),
                      max_value=date.today() + timedelta(days=400)).map(date.isoformat)
SURVEY = """municipality: "142034"
key: fuzz-survey
title: ファズ調査
year: 2024
metric_groups:
  - key: use
    exhaustive: true
    metrics: [{key: using, need: complement}, {key: not_using}]
bands:
  - {label: 60代, min_age: 60, max_age: 69, respondents: 10, values: {use.using: 60, use.not_using: 40}}
  - {label: 70歳以上, min_age: 70, max_age: null, respondents: 10, values: {use.using: 30, use.not_using: 70}}
"""
GOOD_TEXTS = st.sampled_from([
    "山田", "花子", "ヤマダ ハナコ", "中原", "090-1234-5678", "０９０１２３４５６７８", "0463-21-1111",
    "+819012345678", "staff@example.jp", "hiratsuka-admin@example.jp", PASSWORD, "internet_use.using",
    "iPhone", "停止", "CLASS", "", " ", "1行目\n2行目", SURVEY, SURVEY.replace("142034", "222127"),
    # page cursors (`after`) as the API writes them, and a few it never would
    *(base64.urlsafe_b64encode(f"offset:{n}".encode()).decode() for n in (0, 1, 5, 19, 99, 10**12)),
    base64.urlsafe_b64encode(b"offset:-5").decode(), base64.urlsafe_b64encode(b"offset:1e3").decode()])
JUNK_TEXTS = st.one_of(
    st.sampled_from(["a" * 101, "あ" * 2001, "x" * 300 + "@example.jp", "山\x00田", "山\x1b田", "\u202e田山",
                     "'; DROP TABLE resident; --", "${jndi:ldap://x}", "<script>", "=cmd|' /C calc'!A0",
                     "a: &a [*a]", "[" * 300, "{" * 300, "0" * 5000, "-1", "null"]),
    st.text(max_size=40))
TEXTS = st.one_of(GOOD_TEXTS, GOOD_TEXTS, st.text(alphabet=st.characters(
    codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=60), JUNK_TEXTS)


def _mostly(good: st.SearchStrategy, junk: st.SearchStrategy) -> st.SearchStrategy:
    """Nine in ten values good: one bad literal refuses the whole document, and the fuzzer
    should get past validation into the resolvers most of the time."""
    return st.one_of(*([good] * 9), junk)


INTS = st.one_of(st.integers(-3, 30), st.integers(-2**31, 2**31 - 1),
                 st.sampled_from([0, 100, 101, 1000, 10**6])).map(nodes.Int)
FLOATS = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32),
                   st.sampled_from([0.0, -1.0, 1e308])).map(nodes.Float)
CUSTOM_SCALARS = {
    "ID": _mostly(REAL_IDS, st.one_of(st.sampled_from(JUNK_IDS), st.text(max_size=30))).map(nodes.String),
    "DateTime": _mostly(GOOD_DATETIMES, JUNK_DATETIMES).map(nodes.String),
    "Date": _mostly(GOOD_DATES, JUNK_DATES).map(nodes.String),
    "String": TEXTS.map(nodes.String),
    "Int": INTS,
    "Float": FLOATS,
}
SCHEMA = graphql.build_schema(SDL)


def _operations(make: Callable[..., st.SearchStrategy[str]], root: graphql.GraphQLObjectType
                ) -> st.SearchStrategy[str]:
    """Mostly one root field at a time (a failing argument elsewhere then hides nothing),
    sometimes several, sometimes with one deliberate schema violation."""
    one_field = st.sampled_from(sorted(root.fields)).flatmap(
        lambda name: make(SDL, fields=[name], custom_scalars=CUSTOM_SCALARS))
    return st.one_of(one_field, one_field, one_field, make(SDL, custom_scalars=CUSTOM_SCALARS),
                     make(SDL, custom_scalars=CUSTOM_SCALARS, mode=Mode.NEGATIVE))


OPERATIONS = {"queries": _operations(queries, SCHEMA.query_type),
              "mutations": _operations(mutations, SCHEMA.mutation_type)}
# About 60-90 s in all on the 2-core machine (the run prints how many it sent).
EXAMPLES = {"queries": 1100, "mutations": 1100}


# --- literals, or the same values as variables ---------------------------------------------

def _to_variables(operation: str) -> tuple[str, dict[str, Any]]:
    """The operation with every argument value lifted into a variable of the argument's
    type (what clients really send): variable coercion and the edge's checks get the values."""
    try:
        document = graphql.parse(operation)
    except graphql.GraphQLError:
        return operation, {}
    type_info = graphql.TypeInfo(SCHEMA)
    variables: dict[str, Any] = {}
    definitions: list[graphql.VariableDefinitionNode] = []

    class Lift(graphql.Visitor):
        def enter_argument(self, node: graphql.ArgumentNode, *_args: Any) -> graphql.ArgumentNode | None:
            argument = type_info.get_argument()
            if argument is None or isinstance(node.value, graphql.VariableNode):
                return None
            name = f"v{len(variables)}"
            variables[name] = graphql.value_from_ast_untyped(node.value)
            variable = graphql.VariableNode(name=graphql.NameNode(value=name))
            definitions.append(graphql.VariableDefinitionNode(
                variable=variable, type=graphql.parse_type(str(argument.type)), directives=()))
            return graphql.ArgumentNode(name=node.name, value=variable)

    lifted = graphql.visit(document, graphql.TypeInfoVisitor(type_info, Lift()))
    lifted = dataclasses.replace(lifted, definitions=tuple(
        dataclasses.replace(d, variable_definitions=tuple(definitions))
        if isinstance(d, graphql.OperationDefinitionNode) else d for d in lifted.definitions))
    return graphql.print_ast(lifted), variables


def _poison(value: Any, poison: str) -> bool:
    """Put poison into the first string of a JSON value (in place); whether there was one."""
    stack = [value]
    while stack:
        item = stack.pop()
        entries = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, child in list(entries):
            if isinstance(child, str):
                item[key] = child + poison
                return True
            stack.append(child)
    return False


# Variables can carry what no GraphQL literal can: lone surrogates (as JSON escapes).
POISONS = ("\ud800", "\udfff", "a\udc00b", "\x00", "x" * 200_001)


# --- what is known and left to others ---------------------------------------------------------

def _strings(operation: str, variables: dict[str, Any] | None = None) -> list[str]:
    """Every string the request carries: the document's literals and the variables' strings."""
    found: list[str] = []
    stack: list[Any] = [variables]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    try:
        document = graphql.parse(operation)
    except graphql.GraphQLError:
        return found

    class Strings(graphql.Visitor):
        def enter_string_value(self, node, *_args):
            found.append(node.value)

    graphql.visit(document, Strings())
    return found


@dataclass(frozen=True)
class Known:
    """A finding in code this branch does not own, reported to its owner; tolerated here
    only where it matches exactly, and counted in the printed summary."""

    name: str
    key: str
    matches: Callable[[list[str]], bool]  # given every string of the request


KNOWN: tuple[Known, ...] = ()  # failures known and reported elsewhere; none at present


# --- the town the fuzzer attacks -------------------------------------------------------------

@dataclass
class Findings:
    examples: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)  # error codes seen, "data" for answers
    problems: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # key -> (role, op, body)
    known: dict[str, int] = field(default_factory=dict)
    poisoned: int = 0  # examples with a lone surrogate, NUL or huge string in a variable
    known_requests: set[str] = field(default_factory=set)

    def add(self, key: str, role: str, operation: str, body: str) -> None:
        """The first example of each kind of finding, named by the root fields it used."""
        fields = _field_of(operation.split("\n  variables: ")[0])
        self.problems.setdefault(f"{key} ({fields})", (role, operation, body[:1500]))


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def fuzz_town(town, other_town, client):
    """The demo month in 平塚市 and in 焼津市, and a token for every role (a supporter of the
    demo with duties in 平塚市)."""
    await load_demo("142034")
    await load_demo("222127")
    assignment = await Assignment.filter(session__municipality_id=town.municipality.id).first()
    supporter = await Supporter.get(id=assignment.supporter_id)
    await accounts.create_user(email="fuzz-supporter@example.jp", role=Role.SUPPORTER,
                               municipality_code="142034", password=PASSWORD,
                               supporter_id=supporter.id)
    supporter_token = (await accounts.login(email="fuzz-supporter@example.jp",
                                            password=PASSWORD)).token
    tokens = {"ADMIN": town.tokens[Role.ADMIN], "COORDINATOR": town.tokens[Role.COORDINATOR],
              "PLANNER": town.tokens[Role.PLANNER], "SUPPORTER": supporter_token, "anonymous": None}
    log = _ErrorLog()
    logging.getLogger().addHandler(log)
    try:
        yield client, tokens, log
    finally:
        logging.getLogger().removeHandler(log)


def _check(response: httpx.Response, operation: str, variables: dict[str, Any] | None, role: str,
           findings: Findings) -> None:
    findings.by_status[response.status_code] = findings.by_status.get(response.status_code, 0) + 1
    text = response.text
    described = operation if variables is None else f"{operation}\n  variables: {variables!r:.2000}"
    if response.status_code >= 500:
        findings.add(f"HTTP {response.status_code}", role, described, text)
    for marker in LEAKS:
        if marker in text and marker not in described:
            findings.add(f"leak {marker!r}", role, described, text)
    try:
        body = response.json()
    except ValueError:
        findings.add("not JSON", role, described, text)
        return
    if body.get("data"):
        findings.by_code["data"] = findings.by_code.get("data", 0) + 1
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        findings.by_code[str(code)] = findings.by_code.get(str(code), 0) + 1
        if code == "INTERNAL" or code is None:
            where = ".".join(str(p) for p in error.get("path") or []) or "(request)"
            key = f"{code} at {where}"
            known = next((k for k in KNOWN
                          if k.key == key and k.matches(_strings(operation, variables))), None)
            if known is None:
                findings.add(key, role, described, text)
            else:
                findings.known[known.name] = findings.known.get(known.name, 0) + 1
                findings.known_requests.add(str(error["extensions"].get("requestId")))


def _field_of(operation: str) -> str:
    """The root fields of an operation, for naming a finding."""
    try:
        document = graphql.parse(operation)
    except graphql.GraphQLError:
        return "(unparsable)"
    names = []
    for definition in document.definitions:
        if isinstance(definition, graphql.OperationDefinitionNode):
            names += [s.name.value for s in definition.selection_set.selections
                      if isinstance(s, graphql.FieldNode)]
    return ",".join(sorted(set(names))) or "(none)"


async def _send(client: httpx.AsyncClient, token: str | None, operation: str,
                variables: dict[str, Any] | None, accept: str, use_get: bool) -> httpx.Response:
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    encoded = json.dumps(variables) if variables else None
    if use_get and len(operation) + len(encoded or "") < 30_000:  # what a URL can carry
        params = {"query": operation}
        if encoded:
            params["variables"] = encoded
        return await client.get("/graphql", params=params, headers=headers)
    return await client.post("/graphql", content=json.dumps({"query": operation, "variables": variables}),
                             headers={**headers, "Content-Type": "application/json"})


def _report(kind: str, findings: Findings, log: _ErrorLog, started: float, capsys) -> list[str]:
    lines = [f"fuzzed {kind}: {findings.examples} operations in {time.monotonic() - started:.0f} s, "
             f"HTTP statuses {dict(sorted(findings.by_status.items()))}, "
             f"answers and error codes {dict(sorted(findings.by_code.items()))}, "
             f"{findings.poisoned} with a poisoned variable"]
    for key, (role, operation, body) in sorted(findings.problems.items()):
        lines.append(f"FINDING {key} as {role}:\n  {operation}\n  -> {body}")
    for name, count in findings.known.items():
        lines[0] += f"\n  known, not fixed here ({count}x): {name}"
    for record in log.records:
        message = record.getMessage()
        if any(request_id in message for request_id in findings.known_requests):
            continue
        lines.append(f"FINDING log {record.levelname} {record.name}: {message[:300]}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    return lines[1:]


# Mutations that sign users out: without a fresh token afterwards the rest of the run would
# fuzz as nobody (every answer UNAUTHENTICATED) and try nothing behind the login.
SIGNING_OUT = ("logout", "revokeUserTokens", "setUserActive", "resetPassword",
               "changePassword")


async def _keep_everyone_signed_in(tokens: dict[str, str | None]) -> None:
    await User.all().update(active=True)
    for role, token in tokens.items():
        if token is None or await accounts.authenticate(token) is not None:
            continue
        [user_id] = await AuthToken.filter(token_hash=accounts.hash_token(token)).values_list(
            "user_id", flat=True)
        fresh = secrets.token_urlsafe(32)
        await AuthToken.create(user_id=user_id, token_hash=accounts.hash_token(fresh),
                               expires_at=datetime.now(UTC) + timedelta(hours=12))
        tokens[role] = fresh


async def _fuzz(kind: str, fuzz_town, capsys) -> None:
    """Hypothesis runs synchronously in a worker thread; each example's request runs on this
    test's event loop (where the database connections live), which stays free meanwhile."""
    client, tokens, log = fuzz_town
    findings = Findings()
    started = time.monotonic()
    loop = asyncio.get_running_loop()

    async def one(operation: str, variables: dict[str, Any] | None, role: str, accept: str,
                  use_get: bool) -> None:
        response = await _send(client, tokens[role], operation, variables, accept, use_get)
        _check(response, operation, variables, role, findings)
        if any(name in operation for name in SIGNING_OUT):
            await _keep_everyone_signed_in(tokens)

    @settings(max_examples=EXAMPLES[kind], derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(operation=OPERATIONS[kind], role=st.sampled_from(ROLES),
           form=st.sampled_from(["literals", "variables", "variables", "poisoned"]),
           poison=st.sampled_from(POISONS), accept=st.sampled_from([JSON_MEDIA, GQL_RESPONSE]),
           use_get=st.booleans())
    def run(operation: str, role: str, form: str, poison: str, accept: str, use_get: bool) -> None:
        findings.examples += 1
        variables = None
        if form != "literals":
            operation, variables = _to_variables(operation)
            if form == "poisoned":
                findings.poisoned += _poison(variables, poison)
        send = one(operation, variables, role, accept, use_get and kind == "queries")
        asyncio.run_coroutine_threadsafe(send, loop).result(60)

    await asyncio.to_thread(run)
    problems = _report(kind, findings, log, started, capsys)
    health = await client.get("/healthz")
    ready = await client.get("/readyz")
    assert (health.status_code, ready.status_code) == (200, 200), (health.text, ready.text)
    assert findings.examples == EXAMPLES[kind]
    assert not problems, "\n".join(problems)


async def test_fuzzed_queries_never_fail_inside(fuzz_town, capsys):
    await _fuzz("queries", fuzz_town, capsys)


async def test_fuzzed_mutations_never_fail_inside(fuzz_town, capsys):
    await _fuzz("mutations", fuzz_town, capsys)
