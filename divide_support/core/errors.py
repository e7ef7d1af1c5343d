"""DomainError: the one way services report expected, user-facing problems."""

from __future__ import annotations

from enum import StrEnum


class CoreCode(StrEnum):
    """Core: shared by every area: input shape, not found, roles. api.errors lists every area's codes
    in one place (UserError.code in the SDL)."""

    BAD_USER_INPUT = "BAD_USER_INPUT"
    FORBIDDEN = "FORBIDDEN"
    INVALID_CHARACTERS = "INVALID_CHARACTERS"
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_TIME_RANGE = "INVALID_TIME_RANGE"
    NOT_FOUND = "NOT_FOUND"
    REQUIRED = "REQUIRED"
    SERVICE_ROLE_MISSING = "SERVICE_ROLE_MISSING"
    TOO_LONG = "TOO_LONG"


class DomainError(Exception):
    """An expected problem the user can act on. Carries a stable machine code: a member of
    the raising area's StrEnum (CoreCode here, SchedulingCode in scheduling/errors.py, ...).

    `field` names what the problem is about in the domain's words, as the service's parameter
    is called ("phone", "resident_id"); the API turns it into the client's input path
    (["input", "phone"]), so services know nothing of GraphQL's shapes.
    Messages are Japanese by default; `message_en` serves Accept-Language: en.
    """

    def __init__(
        self,
        code: StrEnum,
        message: str,
        field: str | None = None,
        *,
        message_en: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.message_en = message_en or message
        self.field = field or None


class NotFound(DomainError):
    def __init__(self, what: str = "対象", field: str | None = None) -> None:
        super().__init__(
            CoreCode.NOT_FOUND,
            f"{what}が見つかりません。",
            field,
            message_en="The requested object was not found.",
        )


class Forbidden(DomainError):
    def __init__(self, field: str | None = None) -> None:
        super().__init__(
            CoreCode.FORBIDDEN,
            "この操作を行う権限がありません。",
            field,
            message_en="You are not allowed to do this.",
        )

