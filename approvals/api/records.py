"""GET /records/{record_type}/{record_id}: a record reduced to what the workflow may read."""

from typing import Any

from ninja import Path, Query, Router

from approvals.api.auth import PipelineRequest
from approvals.api.problems import problems
from approvals.api.schemas import RecordOut
from approvals.intake.selectors import record_context_for_workflow
from core.errors import ValidationFailed
from core.text import text_problem

router = Router(tags=["records"])


def refuse_unaccepted_text(**values: str | None) -> None:
    found = [(name, problem) for name, value in values.items() if value and (problem := text_problem(value))]
    if found:
        raise ValidationFailed(found)


@router.get(
    "/records/{record_type}/{record_id}",
    response={200: RecordOut, **problems(401, 403, 404, 422, 423)},
    summary="Read a record's minimal context",
    description=(
        "Only the fields the workflow may read (any policy: read, suggest or write), plus `version`. "
        "`?fields=a,b` narrows the answer; asking for a field outside the policy is 403 naming it. "
        "A paused or draft workflow reads nothing: 423."
    ),
)
def record_read(
    request: PipelineRequest,
    record_type: str = Path(..., max_length=32),
    record_id: str = Path(..., max_length=64),
    fields: str | None = Query(None, max_length=2000, description="comma-separated field names"),
) -> dict[str, Any]:
    refuse_unaccepted_text(record_type=record_type, record_id=record_id, fields=fields)
    names = None if fields is None else [name.strip() for name in fields.split(",") if name.strip()]
    context = record_context_for_workflow(
        workflow=request.auth.workflow, record_type=record_type, record_id=record_id, fields=names
    )
    return {
        "record_type": context.record_type,
        "record_id": context.record_id,
        "version": context.version,
        "fields": context.fields,
    }
