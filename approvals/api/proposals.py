"""POST /proposals, GET /proposals/{id}, and artifacts."""

import base64
import binascii
from typing import Any

from django.http import HttpResponse
from ninja import Header, Path, Router

from approvals.api.auth import PipelineRequest
from approvals.api.body import read_json, validate
from approvals.api.problems import problems
from approvals.api.responses import created_body, json_response, review_url_prefix, run_keyed
from approvals.api.schemas import ArtifactIn, ArtifactOut, ProposalCreated, ProposalIn, ProposalOut
from approvals.applying.outcome import proposal_outcome
from approvals.intake.artifacts import artifact_attach
from approvals.intake.selectors import proposal_get_for_workflow
from approvals.intake.services import proposal_submit
from audit.models import Artifact
from core.errors import ValidationFailed

router = Router(tags=["proposals"])
MAX_ID = 9_223_372_036_854_775_807
KEY_HEADER = Header(
    None,
    alias="Idempotency-Key",
    max_length=255,
    description=(
        "a replay with the same key and body gets the first answer, and makes nothing new; without a key, "
        "sending the same request again makes a second one"
    ),
)


def body_doc(schema: str, description: str = "") -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


@router.post(
    "/proposals",
    response={201: ProposalCreated, **problems(400, 401, 403, 404, 409, 413, 422, 423)},
    openapi_extra=body_doc("ProposalIn", "`merge` carries `merge_into` instead of `changes`"),
    summary="Submit one proposal",
    description=(
        "Answers 201 `{id, status, review_url}` with status `pending` (a person countersigns), `approved` (every "
        "changed field has write access: no review) or `shadowed` (the workflow is in shadow). 403 names a field or "
        "action outside the policy, 404 an unknown record, 422 each bad value, 423 a paused or stopped workflow.\n\n"
        "Send an `Idempotency-Key` with every proposal: without one, a retry (after a timeout or a lost answer) "
        "creates a second proposal. The answer does not wait on the workers' queue: if its broker is down, the "
        "proposal is stored and answered all the same, and an approved one is applied once the broker is back."
    ),
)
def proposal_create(request: PipelineRequest, idempotency_key: str | None = KEY_HEADER) -> HttpResponse:
    body = read_json(request)
    data = validate(ProposalIn, body).to_data()
    account = request.auth

    def work() -> tuple[int, Any]:
        proposal = proposal_submit(account=account, data=data)
        return 201, created_body(proposal, review_url_prefix(request))

    return run_keyed(request, account=account, key=idempotency_key, body=body, work=work)


@router.get(
    "/proposals/{proposal_id}",
    response={200: ProposalOut, **problems(401, 404, 422)},
    summary="A proposal's status, decision and change id",
    description="Only the workflow that submitted a proposal may read it.",
)
def proposal_read(request: PipelineRequest, proposal_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    proposal = proposal_get_for_workflow(workflow=request.auth.workflow, proposal_id=proposal_id)
    return proposal_outcome(proposal=proposal)


def _artifact_content(payload: ArtifactIn) -> str | bytes:
    if (payload.content is None) == (payload.content_base64 is None):
        raise ValidationFailed([("content", "send exactly one of content (text) or content_base64 (binary)")])
    if payload.content is not None:
        return payload.content
    try:
        return base64.b64decode(payload.content_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed([("content_base64", "is not valid base64")]) from None


def _artifact_body(artifact: Artifact) -> dict[str, Any]:
    return {
        "id": str(artifact.id),
        "proposal_id": artifact.proposal_id,
        "kind": artifact.kind,
        "bucket": artifact.bucket,
        "name": artifact.name,
        "sha256": artifact.sha256,
        "size": artifact.size,
        "expires_at": artifact.expires_at.isoformat(),
    }


def _store_artifact(request: PipelineRequest, proposal_id: int | None) -> HttpResponse:
    payload = validate(ArtifactIn, read_json(request))
    content = _artifact_content(payload)
    artifact = artifact_attach(
        account=request.auth,
        proposal_id=proposal_id,
        kind=payload.kind,
        bucket=payload.bucket,
        content=content,
        name=payload.name or "",
    )
    return json_response(201, _artifact_body(artifact))


ARTIFACT_DESCRIPTION = (
    "Stores a prompt, output, attachment, cache entry or error log in a bucket. It expires by the workflow's "
    "retention rule for that kind and bucket, never by the caller; with no rule (or a rule of 0) it is refused "
    "with 422 naming the rule. The training bucket needs its own approval and is refused here."
)


@router.post(
    "/proposals/{proposal_id}/artifacts",
    response={201: ArtifactOut, **problems(400, 401, 403, 404, 413, 422, 423)},
    openapi_extra=body_doc("ArtifactIn"),
    summary="Attach an artifact to a proposal",
    description=ARTIFACT_DESCRIPTION,
)
def proposal_artifact_create(request: PipelineRequest, proposal_id: int = Path(..., ge=1, le=MAX_ID)) -> HttpResponse:
    return _store_artifact(request, proposal_id)


@router.post(
    "/artifacts",
    response={201: ArtifactOut, **problems(400, 401, 403, 413, 422, 423)},
    openapi_extra=body_doc("ArtifactIn"),
    summary="Store an artifact of the workflow (drafts and summaries of an assist-lane workflow)",
    description=ARTIFACT_DESCRIPTION,
)
def artifact_create(request: PipelineRequest) -> HttpResponse:
    return _store_artifact(request, None)
