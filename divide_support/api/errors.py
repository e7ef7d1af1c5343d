"""DomainError -> UserError (payload data) and the GraphQL error codes of the contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError, GraphQLInputObjectType, get_named_type
from strawberry.utils.str_converters import to_camel_case

from divide_support.accounts.errors import AccountsCode
from divide_support.api.context import Info
from divide_support.audit import service as audit
from divide_support.core.errors import CoreCode, DomainError
from divide_support.core.ids import parse_global_id
from divide_support.followups.errors import FollowupsCode
from divide_support.messaging.errors import MessagingCode
from divide_support.paper.errors import PaperCode
from divide_support.people.errors import PeopleCode
from divide_support.privacy.errors import PrivacyCode
from divide_support.reports.errors import ReportsCode
from divide_support.scheduling.errors import SchedulingCode

T = TypeVar("T")
P = TypeVar("P")

# Codes a GraphQL error may carry; anything else is masked as INTERNAL.
PUBLIC_CODES = frozenset(
    {"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"}
)


# Every area's error codes, in one place: each area keeps its own StrEnum (core/errors.py,
# scheduling/errors.py, ...); a code shared by areas lives in core. tests/test_error_codes.py
# checks that every raise names a member and that the SDL lists them all.
ERROR_CODE_ENUMS = (CoreCode, AccountsCode, PeopleCode, MessagingCode, FollowupsCode,
                    SchedulingCode, ReportsCode, PrivacyCode, PaperCode)
ALL_ERROR_CODES = sorted(str(member) for enum in ERROR_CODE_ENUMS for member in enum)


@strawberry.type(description="An expected, user-facing problem with a mutation's input.")
class UserError:
    code: str = strawberry.field(
        description="Machine-readable, one of: " + ", ".join(ALL_ERROR_CODES) + "."
    )
    message: str = strawberry.field(
        description="Human-readable message (Japanese or English per Accept-Language; "
        "Japanese by default)."
    )
    field: list[str] | None = strawberry.field(
        description='Input field path the problem refers to, e.g. ["input", "phone"].'
    )


def input_path(info: Info, name: str | None) -> list[str] | None:
    """The client's path to what a service's error names. Services speak the domain
    ("resident_id"); the path is where the mutation takes it: ["input", "residentId"] inside
    an input object, ["sessionId"] as a plain argument."""
    if name is None:
        return None
    wanted = to_camel_case(name)
    raw = info._raw_info
    arguments = raw.parent_type.fields[raw.field_name].args
    if wanted in arguments:
        return [wanted]
    for argument_name, argument in arguments.items():
        named = get_named_type(argument.type)
        if isinstance(named, GraphQLInputObjectType) and wanted in named.fields:
            return [argument_name, wanted]
    return ["input", wanted] if "input" in arguments else [wanted]


def to_user_error(error: DomainError, info: Info) -> UserError:
    message = error.message_en if info.context.language == "en" else error.message
    return UserError(code=error.code, message=message, field=input_path(info, error.field))


async def attempt(info: Info, action: Callable[[], Awaitable[T]]) -> tuple[T | None,
                                                                         list[UserError]]:
    """Run a mutation's service call; expected problems become UserErrors and change nothing.

    A refused mutation is audited too (who tried what, and why it was refused): a curious
    caller probing other people's records leaves a trail even when nothing changed."""
    try:
        return await action(), []
    except DomainError as error:
        actor = info.context.actor
        user_error = to_user_error(error, info)
        if actor is not None:
            await audit.record(actor, "mutation.refused", None, [],
                               {"mutation": info.field_name, "code": error.code,
                                "field": user_error.field, "objects": _objects_named(info)})
        return None, [user_error]


async def mutate(info: Info, payload: Callable[..., P], action: Callable[[], Awaitable[Any]],
                 **shape: Callable[[Any], Any]) -> P:
    """A mutation's whole answer: `action` (its one service call) through attempt(), and the
    payload with the result shaped (`venue=Venue.from_model`; null when refused) and the
    errors. Resolvers only check who asks and call this."""
    result, errors = await attempt(info, action)
    return payload(errors=errors, **{name: None if result is None else convert(result)
                                     for name, convert in shape.items()})


def _objects_named(info: Info) -> list[str]:
    """The objects a mutation's input named ("Resident:3"), so a refused probe of someone's
    record says whose. Only well-formed IDs, decoded; nothing typed by people."""
    found: list[str] = []

    def walk(value: object, key: str = "") -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, name)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif isinstance(value, str) and (key == "id" or key.endswith(("Id", "Ids"))):
            parsed = parse_global_id(value)
            if parsed is not None:
                found.append(f"{parsed[0][:32]}:{parsed[1]}")

    for selected in info.selected_fields:
        walk(selected.arguments)
    return sorted(set(found))[:20]


class PublicError(GraphQLError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


def unauthenticated() -> PublicError:
    return PublicError("ログインが必要です。 (authentication required)", "UNAUTHENTICATED")


def forbidden() -> PublicError:
    return PublicError("この情報を見る権限がありません。 (forbidden)", "FORBIDDEN")


def bad_input(message: str) -> PublicError:
    return PublicError(message, "BAD_USER_INPUT")


def query_error(error: DomainError) -> PublicError:
    """A DomainError raised while reading (not mutating) becomes a GraphQL error."""
    code = error.code if error.code in PUBLIC_CODES else "BAD_USER_INPUT"
    return PublicError(error.message, code)


async def raise_as_graphql(action: Callable[[], Awaitable[T] | T]) -> T:
    """Run a read; a DomainError becomes a GraphQL error with its code (queries have no
    payload to carry UserErrors)."""
    try:
        result = action()
        if hasattr(result, "__await__"):
            result = await result  # type: ignore[misc]
        return result  # type: ignore[return-value]
    except DomainError as error:
        raise query_error(error) from error
