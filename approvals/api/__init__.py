"""The pipeline API, v1: the public contract in DESIGN.md. Handlers only translate: parse, call one
service or selector, serialize. Every error is `application/problem+json`."""

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Schema, Swagger
from ninja.openapi.schema import OpenAPISchema

from approvals.api import batches, proposals, records
from approvals.api.auth import ServiceAccountBearer
from approvals.api.problems import PROBLEM_CONTENT_TYPE, install_problem_handlers, problem_response, status_problem
from approvals.api.schemas import BODY_MODELS
from audit.selectors import audit_chain_broken


def _problem_for_plain_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A method the path does not take is 405 as a problem, like every other error."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and response.get("Content-Type", "") != PROBLEM_CONTENT_TYPE:
            allowed = response.get("Allow", "")
            body = status_problem(405, f"{request.method} is not allowed here; allowed: {allowed}")
            return problem_response(body, headers={"Allow": allowed})
        return response

    return wrapped


@csrf_exempt
def _unmatched(request: HttpRequest, unmatched: str = "") -> HttpResponse:
    return problem_response(status_problem(404, "there is nothing at this address; see /api/v1/docs"))


class PipelineAPI(NinjaAPI):
    def _get_urls(self) -> list[URLResolver | URLPattern]:
        urls = super()._get_urls()
        for pattern in urls:
            if isinstance(pattern, URLPattern):
                pattern.callback = _problem_for_plain_errors(pattern.callback)
        urls.append(path("<path:unmatched>", _unmatched, name="unmatched"))
        return urls

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: Any = None) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in BODY_MODELS:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        for path_item in schema["paths"].values():
            for operation in path_item.values():
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(code) >= 400 and "application/json" in content:
                        response["content"] = {PROBLEM_CONTENT_TYPE: content["application/json"]}
        return schema


api = PipelineAPI(
    title="Countersign pipeline API",
    version="1",
    description=(
        "Propose changes to customer records; a person countersigns what changes the source of truth. "
        "Authenticate with `Authorization: Bearer <token>` (a service account's token, which belongs to one "
        "workflow). Errors are `application/problem+json` (RFC 9457) with `type`, `title`, `status`, `detail` and "
        "`errors: [{field, message}]`. No text in a request, keys included, may hold a NUL, a lone surrogate or a "
        "bidirectional control character (U+202A to U+202E, U+2066 to U+2069): each field that does is named in a 422."
    ),
    urls_namespace="api-v1",
    auth=ServiceAccountBearer(),
    # Served from ninja's own static files (ninja is an installed app); no validator badge from elsewhere.
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": True}),
)
install_problem_handlers(api)


class HealthOut(Schema):
    status: str


@api.get(
    "/health",
    response={200: HealthOut},
    auth=None,
    tags=["health"],
    summary="Liveness",
    description=(
        "200 `{status: ok}` while the service runs and its audit chain is sound; 503 (a problem document "
        "naming the broken event) once the scheduled verification has found the chain broken."
    ),
    openapi_extra={"responses": {503: {"description": "The audit chain was found broken"}}},
)
def health(request: HttpRequest) -> dict[str, str] | HttpResponse:
    broken = audit_chain_broken()
    if broken is not None:
        return problem_response(status_problem(503, broken.reason))
    return {"status": "ok"}


api.add_router("", records.router)
api.add_router("", proposals.router)
api.add_router("", batches.router)

__all__ = ["api"]
