"""The JSON error answers of the file downloads (report CSV and SVG, the printed PDFs): the
same body as a GraphQL error, so a client reads both the same way."""

from __future__ import annotations

from starlette.responses import JSONResponse

from divide_support.core.errors import CoreCode, DomainError


def error_answer(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]},
                        status_code=status)


def unauthenticated_answer() -> JSONResponse:
    return error_answer(401, "UNAUTHENTICATED", "ログインが必要です。")


def domain_error_answer(error: DomainError) -> JSONResponse:
    """403 for a role that may not, 404 for what is not there (or another municipality's),
    400 for the rest."""
    status = {CoreCode.FORBIDDEN: 403, CoreCode.NOT_FOUND: 404}.get(error.code, 400)
    return error_answer(status, error.code, error.message)
