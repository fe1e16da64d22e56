"""Reading request bodies: JSON only, size-limited, only text we accept (`core.text`), each refusal naming its field."""

import json
from typing import Any, NoReturn

import pydantic
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from approvals.api.problems import MAX_LISTED_ERRORS, pydantic_problems
from core.errors import ApplicationError, TooLarge, ValidationFailed
from core.text import refused_character, text_problem

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


def body_problems(data: Any, *, root: str) -> list[tuple[str, str]]:
    """Each string in `data`, key or value, that is not text we accept (`core.text`), and each place
    nested deeper than MAX_DEPTH, as (field, reason); a problem with the whole document names `root`.

    A refused key is named by the object that holds it, and nothing under it is looked at: a field
    path through it would carry the refused text back to the caller.
    """
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack and len(found) < MAX_LISTED_ERRORS:
        where, value, depth = stack.pop()
        if isinstance(value, str):
            if problem := text_problem(value):
                found.append((where or root, problem))
        elif isinstance(value, dict | list) and depth >= MAX_DEPTH:
            found.append((where or root, f"is nested more than {MAX_DEPTH} levels deep"))
        elif isinstance(value, dict):
            children = []
            for key, item in value.items():
                if character := refused_character(key):
                    found.append((where or root, f"has a key with {character}"))
                else:
                    children.append((_path(where, key), item, depth + 1))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([(_path(where, index), item, depth + 1) for index, item in enumerate(value)]))
    return found


def validate[Model: pydantic.BaseModel](model: type[Model], data: Any, *, root: str = "body") -> Model:
    """`data` checked against `model` (strict types, no unknown keys), or ValidationFailed naming each field.

    Text we refuse and deep nesting are looked for first, anywhere in `data`, free-form values included.
    """
    problems = body_problems(data, root=root)
    if problems:
        raise ValidationFailed(problems)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise ValidationFailed(pydantic_problems(error.errors(include_url=False), root=root)) from None
