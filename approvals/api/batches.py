"""Batches: open one, submit up to 1000 proposals at once, watch it, stop it, discard it."""

from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from ninja import Path, Router

from approvals.api.auth import PipelineRequest
from approvals.api.body import read_json, validate
from approvals.api.problems import error_body, problems
from approvals.api.proposals import KEY_HEADER, MAX_ID, body_doc
from approvals.api.responses import created_body, json_response, review_url_prefix, run_keyed
from approvals.api.schemas import (
    MAX_BATCH_ITEMS,
    BatchDiscardOut,
    BatchIn,
    BatchItemsOut,
    BatchOut,
    DiscardIn,
    ProposalIn,
    StopIn,
)
from approvals.intake.selectors import batch_get_for_workflow, batch_summary
from approvals.intake.services import ProposalData, batch_open, proposal_submit_many
from approvals.models import Batch, Proposal, StopSwitch
from approvals.stops.services import stop_engage_for_own_batch
from approvals.waiting.discard import batch_discard_by_pipeline
from core.errors import ApplicationError, TooLarge, ValidationFailed

router = Router(tags=["batches"])


def _stop_body(stop: StopSwitch | None) -> dict[str, Any] | None:
    if stop is None:
        return None
    return {
        "scope": stop.scope,
        "reason": stop.reason,
        "engaged_at": stop.engaged_at,
        "engaged_by": stop.engaged_by_label,
    }


def _discarded_body(batch: Batch) -> dict[str, Any] | None:
    if batch.discarded_at is None:
        return None
    return {
        "at": batch.discarded_at,
        "by": batch.discarded_by_label,
        "reason": batch.discard_reason,
        "cancelled": batch.discard_cancelled,
    }


def batch_body(batch: Batch) -> dict[str, Any]:
    summary = batch_summary(batch=batch)
    return {
        "id": batch.pk,
        "name": batch.name,
        "run_id": batch.run_id,
        "expected_size": batch.expected_size,
        "requested_by": batch.requested_by,
        "created_at": batch.created_at,
        "total": summary.total,
        "counts": summary.counts,
        "stopped": summary.stop is not None,
        "stop": _stop_body(summary.stop),
        "discarded": _discarded_body(batch),
    }


@router.post(
    "/batches",
    response={201: BatchOut, **problems(400, 401, 403, 409, 413, 422, 423)},
    openapi_extra=body_doc("BatchIn"),
    summary="Open a batch for a bulk job",
)
def batch_create(request: PipelineRequest, idempotency_key: str | None = KEY_HEADER) -> HttpResponse:
    body = read_json(request)
    payload = validate(BatchIn, body)
    account = request.auth

    def work() -> tuple[int, Any]:
        batch = batch_open(
            account=account,
            name=payload.name,
            run_id=payload.run_id,
            expected_size=payload.expected_size,
            requested_by=payload.requested_by or "",
        )
        return 201, batch_body(batch)

    return run_keyed(request, account=account, key=idempotency_key, body=body, work=work)


@router.get(
    "/batches/{batch_id}",
    response={200: BatchOut, **problems(401, 404, 422)},
    summary="A batch's counts by status, and whether it is stopped",
)
def batch_read(request: PipelineRequest, batch_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return batch_body(batch_get_for_workflow(workflow=request.auth.workflow, batch_id=batch_id))


def _items(body: Any) -> list[Any]:
    if isinstance(body, dict) and set(body) == {"proposals"} and isinstance(body["proposals"], list):
        items: list[Any] = body["proposals"]
    elif isinstance(body, list):
        items = body
    else:
        raise ValidationFailed([("proposals", 'send {"proposals": [...]}, or a JSON array of proposals')])
    if not items:
        raise ValidationFailed([("proposals", "must hold at least one proposal")])
    if len(items) > MAX_BATCH_ITEMS:
        raise TooLarge(
            f"a batch request takes at most {MAX_BATCH_ITEMS} proposals (got {len(items)}); split it",
            field="proposals",
        )
    return items


def _item_answers(results: list[Proposal | ApplicationError], prefix: str) -> list[dict[str, Any]]:
    """One answer per item, in order: 201 and the proposal created, or the problem that refused it."""
    return [
        {"index": index, "status_code": result.status_code, "body": error_body(result)}
        if isinstance(result, ApplicationError)
        else {"index": index, "status_code": 201, "body": created_body(result, prefix)}
        for index, result in enumerate(results)
    ]


def _read_item(item: Any) -> ProposalData | ApplicationError:
    try:
        return validate(ProposalIn, item, root="proposal").to_data()
    except ApplicationError as error:
        return error


@router.post(
    "/batches/{batch_id}/proposals",
    response={200: BatchItemsOut, **problems(400, 401, 403, 404, 409, 413, 422, 423)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": 'Up to 1000 proposals: {"proposals": [...]} or a bare JSON array.',
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/BatchProposalsIn"},
                            {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/ProposalIn"},
                                "maxItems": MAX_BATCH_ITEMS,
                            },
                        ]
                    }
                }
            },
        }
    },
    summary="Submit up to 1000 proposals at once",
    description=(
        "One result per item, in order, each with its own status code and body: 201 `{id, status, review_url}` "
        "or a problem naming the field. One bad item does not sink the rest. More than 1000 items, or a body over "
        "the size limit, is 413; a halted batch is 409; a paused or stopped workflow is 423."
    ),
)
def batch_proposals_create(
    request: PipelineRequest, batch_id: int = Path(..., ge=1, le=MAX_ID), idempotency_key: str | None = KEY_HEADER
) -> HttpResponse:
    account = request.auth
    batch = batch_get_for_workflow(workflow=account.workflow, batch_id=batch_id)
    body = read_json(request)
    items = [_read_item(item) for item in _items(body)]

    def work() -> tuple[int, Any]:
        answers = _item_answers(
            proposal_submit_many(account=account, items=items, batch=batch), review_url_prefix(request)
        )
        accepted = sum(1 for answer in answers if answer["status_code"] == 201)
        return 200, {"batch_id": batch.pk, "accepted": accepted, "refused": len(answers) - accepted, "results": answers}

    return run_keyed(request, account=account, key=idempotency_key, body=body, work=work)


@router.post(
    "/batches/{batch_id}/stop",
    response={200: BatchOut, **problems(400, 401, 404, 409, 413, 422)},
    openapi_extra=body_doc("StopIn"),
    summary="Halt this pipeline's own batch",
    description="No write of the batch is applied while it is stopped. Only a person can release it.",
)
def batch_stop(request: PipelineRequest, batch_id: int = Path(..., ge=1, le=MAX_ID)) -> HttpResponse:
    account = request.auth
    batch = batch_get_for_workflow(workflow=account.workflow, batch_id=batch_id)
    payload = validate(StopIn, read_json(request))
    stop_engage_for_own_batch(account=account, batch=batch, reason=payload.reason)
    return json_response(200, batch_body(batch))


@router.post(
    "/batches/{batch_id}/discard",
    response={200: BatchDiscardOut, **problems(400, 401, 404, 413, 422)},
    openapi_extra=body_doc("DiscardIn"),
    summary="Discard this pipeline's own batch",
    description=(
        "Cancels the batch's pending proposals (each gets the status `cancelled` and a `cancelled` callback) "
        "and closes the batch to new proposals (409). What was decided is untouched: applied changes stay until "
        "a person undoes them (`undo_url`), approved ones are still written unless the batch is stopped, "
        "conflicts wait for a person. Discarding again answers 200 with `already_discarded: true`, cancelling "
        "only what is still pending. A reason is required (422); another workflow's batch is 404."
    ),
)
def batch_discard(request: PipelineRequest, batch_id: int = Path(..., ge=1, le=MAX_ID)) -> HttpResponse:
    account = request.auth
    batch = batch_get_for_workflow(workflow=account.workflow, batch_id=batch_id)
    payload = validate(DiscardIn, read_json(request))
    discarded = batch_discard_by_pipeline(account=account, batch=batch, reason=payload.reason)
    undo_url = request.build_absolute_uri(f"{reverse('undo-bulk')}?batch={batch.pk}")
    return json_response(
        200,
        batch_body(discarded.batch)
        | {
            "cancelled": discarded.cancelled,
            "already_discarded": discarded.already,
            "undo_url": undo_url if discarded.standing.applied else None,
        },
    )
