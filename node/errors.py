"""One place that turns errors into HTTP problem responses (RFC 9457).

Every error body is ``{"type", "title", "status", "code", "message", ...}``
with ``field`` and ``rule`` for malformed input. Nothing reaches a client as a
500 unless the node itself is broken.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.access import Unauthenticated
from ledger.errors import (
    Conflict,
    LedgerError,
    MalformedRecord,
    NotFound,
    PermissionDenied,
    Rejected,
    VerificationError,
)

PROBLEM = "application/problem+json"

STATUS: list[tuple[type[LedgerError], int]] = [
    (Unauthenticated, 401),
    (MalformedRecord, 400),
    (VerificationError, 400),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Rejected, 422),
    (LedgerError, 400),
]


def problem(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body = {"type": f"https://tradeledger.dev/problems/{code}", "title": code,
            "status": status, "code": code, "message": message, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def status_for(exc: LedgerError) -> int:
    if exc.code == "too_large":
        return 413
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def _ledger_error(_request: Request, exc: LedgerError) -> JSONResponse:
        extra = {k: v for k, v in exc.to_problem().items() if k not in ("code", "message")}
        return problem(status_for(exc), exc.code, exc.message, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid", "type": ""}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        return problem(400, "malformed", f"{'.'.join(loc) or 'request'}: {first.get('msg')}",
                       field=".".join(loc), rule=str(first.get("type", "")))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthenticated", 404: "not_found", 405: "method_not_allowed",
                413: "too_large"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))
