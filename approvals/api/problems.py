"""Errors as `application/problem+json` (RFC 9457): type, title, status, detail and, naming each field, errors."""

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.text import slugify
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from core.errors import ApplicationError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE = "urn:countersign:problem:{}"
MAX_LISTED_ERRORS = 50


class ProblemField(Schema):
    field: str
    message: str


class Problem(Schema):
    """An error. `errors` names each field that was refused and why."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemField]


def problems(*codes: int) -> dict[int, type[Problem]]:
    """Documented error answers for an operation."""
    return dict.fromkeys(codes, Problem)


def problem_body(
    *, status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        **extra,
        "type": PROBLEM_TYPE.format(slugify(title)),
        "title": title,
        "status": status,
        "detail": detail,
        "errors": (errors or [])[:MAX_LISTED_ERRORS],
    }
    return body


def error_body(error: ApplicationError) -> dict[str, Any]:
    extra = {key: value for key, value in error.extra.items() if isinstance(key, str)}
    return problem_body(status=error.status_code, title=error.title, detail=error.message, errors=error.errors, **extra)


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=body["status"], content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def status_problem(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return problem_body(status=status, title=HTTPStatus(status).phrase, detail=detail, errors=errors)


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def pydantic_problems(errors: Sequence[Mapping[str, Any]], *, root: str) -> list[tuple[str, str]]:
    """(field, message) for each pydantic error; `root` names an error about the whole document."""
    found = []
    for error in errors[:MAX_LISTED_ERRORS]:
        field = _field_of(error.get("loc", ())) or root
        if error.get("type") == "missing":
            message = "is required"
        elif error.get("type") == "extra_forbidden":
            message = "is not a known key"
        else:
            message = str(error.get("msg", "is not valid"))
        found.append((field, message))
    return found


def _application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    return problem_response(error_body(exc))


def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = []
    for error in exc.errors:
        loc = list(error.get("loc", ()))
        source = str(loc.pop(0)) if loc else "request"
        errors.append({"field": _field_of(loc) or source, "message": str(error.get("msg", "is not valid"))})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(problem_body(status=422, title="Validation failed", detail=detail, errors=errors))


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc, AuthenticationError):
        body = status_problem(401, "send a valid service account token: Authorization: Bearer <token>")
        return problem_response(body, headers={"WWW-Authenticate": 'Bearer realm="countersign"'})
    if isinstance(exc.__cause__, RequestDataTooBig):
        return _too_big(request, exc.__cause__)
    return problem_response(status_problem(exc.status_code, str(exc)))


def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem_response(status_problem(404, "there is nothing at this address"))


def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return problem_response(status_problem(413, "the request body is over the size limit"))


def _suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
    return problem_response(status_problem(400, "the request was refused as malformed"))


def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("Unhandled error in %s %s", request.method, request.path)
    return problem_response(status_problem(500, "something went wrong on our side; nothing was written"))


_HANDLERS: tuple[tuple[type[Exception], Callable[[HttpRequest, Any], HttpResponse]], ...] = (
    (ApplicationError, _application_error),
    (NinjaValidationError, _validation_error),
    (HttpError, _http_error),
    (Http404, _not_found),
    (RequestDataTooBig, _too_big),
    (SuspiciousOperation, _suspicious),
    (Exception, _unexpected),
)


def install_problem_handlers(api: NinjaAPI) -> None:
    """Every error the API can meet answers as a problem, a 500 included (logged, nothing written)."""
    for exception, handler in _HANDLERS:
        api.add_exception_handler(exception, handler)
