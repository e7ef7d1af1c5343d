"""DomainError: the one way services report expected, user-facing problems."""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """An expected problem the user can act on. Carries a stable machine code.

    `field` is the input path the problem refers to (e.g. ("input", "phone")).
    Messages are Japanese by default; `message_en` serves Accept-Language: en.
    """

    def __init__(
        self,
        code: str,
        message: str,
        field: Sequence[str] | None = None,
        *,
        message_en: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.message_en = message_en or message
        self.field = list(field) if field else None


class NotFound(DomainError):
    def __init__(self, what: str = "対象", field: Sequence[str] | None = None) -> None:
        super().__init__(
            "NOT_FOUND",
            f"{what}が見つかりません。",
            field,
            message_en="The requested object was not found.",
        )


class Forbidden(DomainError):
    def __init__(self, field: Sequence[str] | None = None) -> None:
        super().__init__(
            "FORBIDDEN",
            "この操作を行う権限がありません。",
            field,
            message_en="You are not allowed to do this.",
        )

