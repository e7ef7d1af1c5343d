"""The safety net at the GraphQL edge: no string reaches a resolver (and so the database
driver, a log line or a response) if it holds a NUL, a lone surrogate, or more characters
than any field takes. Each service still cleans its own text (core.text.clean_text) with the
field's own limits and Japanese message; this catches what a field might forget.

Two places: the request's variables (walked before execution, without recursion, so deep
nesting cannot exhaust the stack) and the string literals of the document (a validation
rule, cached with the document like the other limits).
"""

from __future__ import annotations

import re
from typing import Any

from graphql import GraphQLError, StringValueNode, ValidationRule

from divide_support.core.text import excerpt
from divide_support.reports.surveys import MAX_DOCUMENT_CHARS

MAX_STRING_CHARS = MAX_DOCUMENT_CHARS  # the longest input there is: a survey document
MAX_VARIABLE_DEPTH = 32  # inputs nest a few levels; lists of lists do not occur

_NOT_TEXT = "に使えない文字（NUL または対になっていないサロゲート）が含まれています。"
_REFUSED = re.compile("[\x00\ud800-\udfff]")
_VARIABLE = re.compile(r"\$([_A-Za-z][_0-9A-Za-z]*)")


def _problem(text: str) -> str | None:
    if len(text) > MAX_STRING_CHARS:
        return f"は長すぎます（{MAX_STRING_CHARS}文字まで）。"
    if _REFUSED.search(text):
        return _NOT_TEXT
    return None


def _name(path: list[str | int]) -> str:
    """The place, for the message: "$input.familyName", "$ids[3]"."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            shown = part if _problem(part) is None and len(part) <= 40 else excerpt(part, 40)
            text += f".{shown}" if text else f"${shown}"
    return text or "$"


def _error(message: str) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": "BAD_USER_INPUT"}}


def check_request(params: dict[str, Any]) -> dict[str, Any] | None:
    """A GraphQL error (BAD_USER_INPUT, Japanese message naming the place) for the first bad
    string in the request's variables, operation name or extensions; None when all is well.
    (The document itself: its lexer refuses lone surrogates, StringLiteralRule the rest.)"""
    name = params.get("operationName")
    if isinstance(name, str) and (problem := _problem(name)):
        return _error(f"operationName{problem} (invalid operationName)")
    variables = params.get("variables")
    if isinstance(variables, dict):
        # Only what the document can use ($name anywhere in it): the rest never reaches a
        # resolver, and the body limit bounds it already.
        named = set(_VARIABLE.findall(params.get("query") or ""))
        found = _walk({k: v for k, v in variables.items() if k in named})
        if found is not None:
            path, problem = found
            return _error(f"{_name(path)}{problem} (invalid variables)")
    found = _walk(params.get("extensions"))
    if found is not None:
        path, problem = found
        return _error(f"extensions{_name(path)[1:]}{problem} (invalid extensions)")
    return None


def _walk(value: Any) -> tuple[list[str | int], str] | None:
    """The first bad string (or too deep a nesting) in a JSON value, iteratively."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if len(path) > MAX_VARIABLE_DEPTH:
            return path[:MAX_VARIABLE_DEPTH], f"の入れ子が深すぎます（{MAX_VARIABLE_DEPTH}段まで）。"
        if isinstance(item, str):
            if problem := _problem(item):
                return path, problem
        elif isinstance(item, dict):
            for key, child in item.items():
                if problem := _problem(key):
                    return path, f"の項目名{problem}"
                stack.append((child, [*path, key]))
        elif isinstance(item, list):
            stack.extend((child, [*path, index]) for index, child in enumerate(item))
    return None


class StringLiteralRule(ValidationRule):
    """String literals in the document: the same refusal as for variables."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        problem = _problem(node.value)
        if problem:
            self.report_error(GraphQLError(f"文字列{problem} (invalid string literal)", node,
                                           extensions={"code": "BAD_USER_INPUT"}))
