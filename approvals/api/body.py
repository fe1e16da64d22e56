"""Reading request bodies: JSON only, size-limited, no NUL characters, every refusal naming its field."""

import json
from typing import Any, NoReturn

import pydantic
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from approvals.api.problems import pydantic_problems
from core.errors import ApplicationError, TooLarge, ValidationFailed

MAX_DEPTH = 32


class MalformedBody(ApplicationError):
    status_code = 400
    title = "Malformed request body"


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def read_json(request: HttpRequest) -> Any:
    """The request body as JSON. Too large is 413; empty or not JSON is 400, naming the body."""
    try:
        raw = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raise TooLarge(f"the request body is over the limit of {limit} bytes", field="body") from None
    if not raw.strip():
        raise MalformedBody("the request body is empty: send a JSON document", field="body")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise MalformedBody("the request body is nested too deeply", field="body") from None
    except ValueError as error:
        raise MalformedBody(f"the request body is not valid JSON: {str(error)[:200]}", field="body") from None


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key[:64]}" if parent else key[:64]


def plain_problem(data: Any, *, root: str) -> tuple[str, str] | None:
    """The first NUL character or excessive nesting in `data`, as (field, reason), or None."""
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        where, value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return where or root, "must not contain NUL characters"
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                return where or root, f"is nested more than {MAX_DEPTH} levels deep"
            if isinstance(value, dict):
                for key, item in value.items():
                    if "\x00" in key:
                        return where or root, "has a key with a NUL character"
                    stack.append((_path(where, key), item, depth + 1))
            else:
                stack.extend((_path(where, index), item, depth + 1) for index, item in enumerate(value))
    return None


def may_hold_nul(request: HttpRequest) -> bool:
    """Whether the JSON body could hold a NUL character: only as the escape \\u0000."""
    return b"\\u0000" in request.body


def validate[Model: pydantic.BaseModel](
    model: type[Model], data: Any, *, root: str = "body", check_plain: bool = True
) -> Model:
    """`data` checked against `model` (strict types, no unknown keys), or ValidationFailed naming each field.

    `check_plain` looks for NUL characters and deep nesting first; skip it only when the raw body
    cannot hold a NUL (see `may_hold_nul`).
    """
    problem = plain_problem(data, root=root) if check_plain else None
    if problem:
        raise ValidationFailed([problem])
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise ValidationFailed(pydantic_problems(error.errors(include_url=False), root=root)) from None
