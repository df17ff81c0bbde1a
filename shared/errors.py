"""One error base for every service, rendered as RFC 9457 problem+json.

Domain code raises ``ServiceError`` subclasses; the handlers installed by ``install_error_handlers`` turn
them, request-validation errors and any unexpected exception into ``application/problem+json``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.logging import get_logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = get_logger(__name__)


class FieldProblem(BaseModel):
    """One invalid input: where it is (JSON path) and why it was rejected."""

    field: str = Field(description="JSON path of the offending value, e.g. `body.author.id`.")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] | None = None


class ServiceError(Exception):
    """Base of every error a service raises on purpose."""

    status_code: int = 500
    title: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.errors = errors
        self.headers = headers
        self.extra = extra or {}


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class Unauthorized(ServiceError):
    status_code = 401

    def __init__(self, message: str = "A valid bearer token is required.") -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="switchboard"'})


class Forbidden(ServiceError):
    status_code = 403


class TooManyRequests(ServiceError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class Unavailable(ServiceError):
    status_code = 503

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


def problem_response(
    *,
    status: int,
    detail: str | None,
    request: Request | None = None,
    title: str | None = None,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    problem = Problem(
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=str(request.url.path) if request is not None else None,
        errors=errors,
    )
    body = problem.model_dump(exclude_none=True)
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def validation_problems(errors: Any) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    for err in errors:
        loc = ".".join(str(part) for part in err.get("loc", ()))
        out.append(FieldProblem(field=loc or "body", reason=str(err.get("msg", "invalid"))))
    return out


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)  # noqa: S101 - registered for this type only
    return problem_response(
        status=exc.status_code,
        detail=exc.message,
        request=request,
        title=exc.title,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    return problem_response(
        status=422,
        detail="The request is not valid.",
        request=request,
        errors=validation_problems(exc.errors()),
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    return problem_response(
        status=exc.status_code,
        detail=str(exc.detail),
        request=request,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database_unavailable", path=request.url.path, error_type=type(exc).__name__)
    return problem_response(
        status=503,
        detail="The service cannot reach its database; nothing was stored. Retry later.",
        request=request,
        headers={"Retry-After": "5"},
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
    return problem_response(status=500, detail="An unexpected error occurred.", request=request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Database outages are not the caller's fault and not a bug: 503 with Retry-After, never a 500.
    for db_error in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, ConnectionError):
        app.add_exception_handler(db_error, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)


#: OpenAPI description of the problem responses, for routes' ``responses=``.
def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {
            "model": Problem,
            "description": HTTPStatus(code).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for code in codes
    }
