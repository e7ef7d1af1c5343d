"""The staff console's GraphQL client: named operations from the `.graphql` files beside the
templates, run in-process through the API's own schema as the signed-in user.

So the console inherits every rule of the API: roles, tenancy, masking, the audit of personal
data read, error codes and messages. A page never reads a model or calls a service itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    OperationDefinitionNode,
    Visitor,
    parse,
    print_ast,
    visit,
)
from starlette.requests import Request

from divide_support.api.http import execute, format_error, request_id_of
from divide_support.api.input_guard import check_request
from divide_support.core.actor import Actor


class PageProblem(Exception):
    """A top-level GraphQL error a page cannot show in place: the page layer turns it into
    the matching Japanese error page."""

    def __init__(self, code: str, message: str, request_id: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass
class Result:
    data: dict[str, Any]
    # Top-level GraphQL errors, formatted as the API sends them (code, Japanese message).
    errors: list[dict[str, Any]] = field(default_factory=list)
    request_id: str = ""


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.names.add(node.name.value)


def _spreads(node: Any) -> set[str]:
    visitor = _Spreads()
    visit(node, visitor)
    return visitor.names


@cache
def operations() -> dict[str, str]:
    """Every named operation of the console, each as a document with the fragments it uses.

    Names are unique across all files (a clash fails at load, and in the tests)."""
    operation_nodes: dict[str, OperationDefinitionNode] = {}
    fragments: dict[str, FragmentDefinitionNode] = {}
    folder = files("divide_support.web").joinpath("templates")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".graphql"):
            continue
        document = parse(entry.read_text("utf-8"))
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                name = definition.name.value
                if name in fragments:
                    raise ValueError(f"fragment {name} is defined twice ({entry.name})")
                fragments[name] = definition
            elif isinstance(definition, OperationDefinitionNode):
                if definition.name is None:
                    raise ValueError(f"an operation in {entry.name} has no name")
                name = definition.name.value
                if name in operation_nodes:
                    raise ValueError(f"operation {name} is defined twice ({entry.name})")
                operation_nodes[name] = definition
    documents: dict[str, str] = {}
    for name, node in operation_nodes.items():
        needed: dict[str, FragmentDefinitionNode] = {}
        pending = _spreads(node)
        while pending:
            fragment_name = pending.pop()
            if fragment_name in needed:
                continue
            needed[fragment_name] = fragments[fragment_name]
            pending |= _spreads(fragments[fragment_name]) - needed.keys()
        documents[name] = print_ast(DocumentNode(definitions=(node, *needed.values())))
    return documents


async def run(request: Request, actor: Actor | None, token: str, name: str,
              variables: dict[str, Any] | None = None, *, strict: bool = True) -> Result:
    """Run the console operation `name` (in Japanese, whatever the browser's language: the
    console is a Japanese service). With `strict`, any top-level error raises
    PageProblem (403, 404, 500 pages); mutations' UserErrors are data, never raised."""
    refused = check_request({"operationName": name, "variables": variables})
    if refused is not None:  # the API's edge net: NUL, lone surrogates, endless text
        request_id = request_id_of(request)
        if strict:
            raise PageProblem("BAD_USER_INPUT", refused["message"], request_id)
        return Result(data={}, errors=[refused], request_id=request_id)
    result, context = await execute(request, actor=actor, token=token,
                                    query=operations()[name], variables=variables,
                                    operation_name=name, language="ja")
    errors = [format_error(error, context.request_id) for error in result.errors or []]
    if strict and errors:
        first = errors[0]
        code = (first.get("extensions") or {}).get("code", "INTERNAL")
        raise PageProblem(code, first.get("message", ""), context.request_id)
    return Result(data=result.data or {}, errors=errors, request_id=context.request_id)
