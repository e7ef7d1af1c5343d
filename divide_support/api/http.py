"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/) on Starlette.

Written out rather than using strawberry's view so the media types, status codes
and error masking follow the spec and the contract exactly: parse, validation and
variable errors are 400 with application/graphql-response+json (200 with
application/json), mutations over GET are 405, bodies over the limit 413, and no
error ever carries a stack trace or SQL.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from divide_support.accounts import service as accounts
from divide_support.api import personal_data
from divide_support.api.context import Context, language_from
from divide_support.api.errors import PublicError, query_error
from divide_support.api.input_guard import check_request
from divide_support.api.schema import schema_for_request
from divide_support.core import requestctx
from divide_support.core.actor import Actor
from divide_support.core.errors import DomainError
from divide_support.core.settings import get_settings

log = logging.getLogger("divide_support.graphql")

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


class RequestTooLarge(Exception):
    pass


def request_id_of(request: Request) -> str:
    """The server's id of this request (RequestContextMiddleware made it)."""
    info = request.scope.get("state", {}).get("request_info")
    return info.request_id if info else requestctx.new_request_id()


def _negotiate(accept: str | None) -> str | None:
    """The response media type, or None when we can offer nothing acceptable."""
    if not accept:
        return JSON
    ranked: list[tuple[float, str]] = []
    for part in accept.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        ranked.append((q, media.lower()))
    ranked.sort(key=lambda item: -item[0])
    for q, media in ranked:
        if q <= 0:
            continue
        if media == GRAPHQL_RESPONSE:
            return GRAPHQL_RESPONSE
        if media in (JSON, "*/*", "application/*"):
            return JSON
    return None


def encode_json(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as json.dumps(ensure_ascii=False, separators=(",", ":")) writes
    it, by orjson (several times faster on a page of sessions, issue 12): the same bytes,
    except that a float may be written in another notation of the same number (0.00001 for
    1e-05). What orjson refuses (an integer past 64 bits) goes the slow way, so nothing new
    fails."""
    try:
        return orjson.dumps(payload)
    except TypeError:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _json(payload: dict[str, Any], status: int, media: str, request_id: str,
          headers: dict[str, str] | None = None) -> Response:
    return Response(encode_json(payload), status_code=status,
                    media_type=f"{media}; charset=utf-8", headers=headers)


def _request_error(message: str, status: int, media: str, request_id: str,
                   headers: dict[str, str] | None = None) -> Response:
    return _json({"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]},
                 status, media, request_id, headers)


async def read_body(request: Request) -> bytes:
    limit = get_settings().max_request_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    original = error.original_error
    if isinstance(original, DomainError):
        public = query_error(original)
        return {"message": public.message, "locations": _locations(error), "path": error.path,
                "extensions": public.extensions}
    if error.path is None and isinstance(original, GraphQLError | ValueError | TypeError):
        # A variable that does not fit its type (e.g. "four" for Int!): the client's mistake.
        formatted = error.formatted
        formatted["extensions"] = {"code": "BAD_USER_INPUT"}
        return formatted
    if original is None or isinstance(original, PublicError):
        formatted = error.formatted
        formatted.setdefault("extensions", {})
        if original is None and "code" not in formatted["extensions"]:
            formatted["extensions"]["code"] = "GRAPHQL_VALIDATION_FAILED"
            if not get_settings().introspection_enabled:
                # "Did you mean 'familyName'?" would spell out the schema introspection hides.
                formatted["message"] = _SUGGESTION.sub("", formatted["message"])
        return formatted
    log.error("unexpected error in GraphQL request %s", request_id, exc_info=original)
    return {
        "message": "内部エラーが発生しました。時間をおいてもう一度お試しください。"
                   f" (internal error; request id {request_id})",
        "locations": _locations(error),
        "path": error.path,
        "extensions": {"code": "INTERNAL", "requestId": request_id},
    }


def _locations(error: GraphQLError) -> list[dict[str, int]] | None:
    if not error.locations:
        return None
    return [{"line": loc.line, "column": loc.column} for loc in error.locations]


def _is_request_error(result: ExecutionResult) -> bool:
    """Errors before execution started: the response carries no `data` entry."""
    if isinstance(result, PreExecutionError):
        return True
    # Variable coercion fails inside execute(); such errors have no path.
    return result.data is None and bool(result.errors) and all(
        e.path is None and not isinstance(e.original_error, PublicError | DomainError)
        for e in result.errors
    )


async def _params_from_request(request: Request, media: str, request_id: str
                               ) -> dict[str, Any] | Response:
    if request.method == "GET":
        query_params = request.query_params
        params: dict[str, Any] = {"query": query_params.get("query"),
                                  "operationName": query_params.get("operationName")}
        for key in ("variables", "extensions"):
            raw = query_params.get(key)
            if raw:
                try:
                    params[key] = json.loads(raw)
                except (ValueError, RecursionError):  # RecursionError: [[[[... nested too deep
                    return _request_error(f"{key} is not valid JSON", 400, media, request_id)
        return params
    content_type = request.headers.get("content-type", "")
    mime = content_type.split(";")[0].strip().lower()
    if mime != JSON:
        return _request_error("Content-Type must be application/json", 415, media, request_id)
    try:
        body = await read_body(request)
    except RequestTooLarge:
        return _request_error("request body too large", 413, media, request_id)
    try:
        params = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[... too deep
        return _request_error("request body is not valid JSON", 400, media, request_id)
    if not isinstance(params, dict):
        return _request_error("request body must be a JSON object", 400, media, request_id)
    return params


def _check_params(params: dict[str, Any]) -> str | None:
    if not isinstance(params.get("query"), str) or not params["query"].strip():
        return "query must be a non-empty string"
    if params.get("operationName") is not None and not isinstance(params["operationName"], str):
        return "operationName must be a string"
    for key in ("variables", "extensions"):
        if params.get(key) is not None and not isinstance(params[key], dict):
            return f"{key} must be a JSON object"
    return None


async def execute(request: Request | None, *, actor: Actor | None, token: str,
                  query: str, variables: dict[str, Any] | None = None,
                  operation_name: str | None = None,
                  allowed: set[OperationType] | None = None,
                  language: str | None = None) -> tuple[ExecutionResult, Context]:
    """Run one GraphQL document as `actor`: the one path of every request, whether it came
    over HTTP or from the staff console in the same process. The personal data it read is
    in the audit log before this returns (if that fails, nothing is answered)."""
    request_id = request_id_of(request) if request is not None else requestctx.new_request_id()
    if language is None:
        language = language_from(request.headers.get("accept-language")) if request else "ja"
    context = Context(request=request, actor=actor, request_id=request_id,
                      token=token if actor else None, language=language)
    result = await schema_for_request().execute(
        query, variable_values=variables, context_value=context,
        operation_name=operation_name,
        allowed_operation_types=allowed or {OperationType.QUERY, OperationType.MUTATION})
    await personal_data.record_reads(context)
    return result, context


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """An error as the client sees it (codes of the contract; never a trace or SQL)."""
    return _format_error(error, request_id)


async def graphql_endpoint(request: Request) -> Response:
    request_id = request_id_of(request)
    try:
        return await _handle(request, request_id)
    except Exception:  # never a stack trace to the client; the log has it with the request id
        log.exception("unhandled error in GraphQL request %s", request_id)
        media = _negotiate(request.headers.get("accept")) or JSON
        return _json({"errors": [{"message": "内部エラーが発生しました。 (internal error)",
                                  "extensions": {"code": "INTERNAL", "requestId": request_id}}]},
                     500, media, request_id)


async def _handle(request: Request, request_id: str) -> Response:
    # A browser opening /graphql gets GraphiQL (or a 404) from divide_support.web before this.
    accept = request.headers.get("accept")
    media = _negotiate(accept)
    if media is None:
        return _request_error("Accept must allow application/graphql-response+json or "
                              "application/json", 406, JSON, request_id)
    params = await _params_from_request(request, media, request_id)
    if isinstance(params, Response):
        return params
    problem = _check_params(params)
    if problem:
        return _request_error(problem, 400, media, request_id)
    refused = check_request(params)  # NUL, lone surrogates, huge strings: never to a resolver
    if refused is not None:
        return _json({"errors": [refused]}, 400 if media == GRAPHQL_RESPONSE else 200, media,
                     request_id)

    token = accounts.bearer_token(request.headers.get("authorization"))
    actor = await accounts.authenticate(token)
    allowed = {OperationType.QUERY} if request.method == "GET" else {
        OperationType.QUERY, OperationType.MUTATION}
    try:
        result, _ = await execute(request, actor=actor, token=token, query=params["query"],
                                  variables=params.get("variables"),
                                  operation_name=params.get("operationName"), allowed=allowed)
    except InvalidOperationTypeError:
        return _request_error("mutations need POST", 405, media, request_id, {"Allow": "POST"})
    except CannotGetOperationTypeError:  # operationName names no operation of the document
        return _request_error("operationName does not name an operation in the document",
                              400 if media == GRAPHQL_RESPONSE else 200, media, request_id)
    if result.errors and any(isinstance(e.original_error, InvalidOperationTypeError)
                             for e in result.errors):
        return _request_error("mutations need POST", 405, media, request_id, {"Allow": "POST"})

    payload: dict[str, Any] = {}
    request_error = _is_request_error(result)
    if not request_error:
        payload["data"] = result.data
    if result.errors:
        payload["errors"] = [_format_error(e, request_id) for e in result.errors]
    status = 400 if request_error and media == GRAPHQL_RESPONSE else 200
    return _json(payload, status, media, request_id)


__all__ = ["JSONResponse", "execute", "format_error", "graphql_endpoint", "read_body"]
