"""Answers that several endpoints share: JSON responses, keyed (idempotent) processing, review links."""

import json
from collections.abc import Callable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from approvals.intake.idempotency import (
    Replay,
    idempotency_begin,
    idempotency_complete,
    idempotency_release,
    request_fingerprint,
)
from approvals.models import IdempotencyKey, Proposal, ServiceAccount

REVIEW_PATH = "/review/{id}/"


def render(body: Any) -> str:
    return json.dumps(body, cls=DjangoJSONEncoder)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    """`body` as JSON; a string is taken as JSON already rendered."""
    content = body if isinstance(body, str) else render(body)
    response = HttpResponse(content, status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def review_url_prefix(request: HttpRequest) -> str:
    return request.build_absolute_uri(REVIEW_PATH.format(id=0))[: -len("0/")]


def created_body(proposal: Proposal, prefix: str) -> dict[str, Any]:
    return {"id": proposal.pk, "status": proposal.status, "review_url": f"{prefix}{proposal.pk}/"}


def run_keyed(
    request: HttpRequest,
    *,
    account: ServiceAccount,
    key: str | None,
    body: Any,
    work: Callable[[], tuple[int, Any]],
) -> HttpResponse:
    """Do `work` in one transaction and answer with its (status, body); with an Idempotency-Key,
    a replay gets the first answer again, byte for byte (see `_run_claimed`)."""
    if key is None:
        with transaction.atomic():
            status, answer = work()
        return json_response(status, answer)
    fingerprint = request_fingerprint(method=request.method or "", path=request.path, body=body)
    claim = idempotency_begin(account=account, key=key, fingerprint=fingerprint)
    if isinstance(claim, Replay):
        return json_response(claim.status_code, claim.body, headers={"Idempotent-Replayed": "true"})
    return _run_claimed(claim, work)


def _run_claimed(claim: IdempotencyKey, work: Callable[[], tuple[int, Any]]) -> HttpResponse:
    """The answer's exact text is stored in the transaction that does the work; a refusal stores
    nothing and frees the key."""
    try:
        with transaction.atomic():
            status, answer = work()
            content = render(answer)
            idempotency_complete(claim=claim, status_code=status, body=content)
    except BaseException:
        idempotency_release(claim=claim)
        raise
    return json_response(status, content)
