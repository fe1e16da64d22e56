"""Reads for the pipeline API: a record as the workflow may see it, its batches and proposals."""

from dataclasses import dataclass
from typing import Any

from django.db.models import Count

from approvals.models import Batch, Proposal, ProposalStatus, Stage, StopSwitch, Workflow
from approvals.stops.selectors import stop_covering
from approvals.workflows.selectors import workflow_policy_map
from core.errors import Locked, NotAllowed, NotFound, ValidationFailed
from records.catalogue import RECORD_TYPES
from records.store import RecordNotFound, RecordRef, get_store


@dataclass(frozen=True)
class BatchSummary:
    batch: Batch
    counts: dict[str, int]
    total: int
    stop: StopSwitch | None


def batch_get_for_workflow(*, workflow: Workflow, batch_id: int) -> Batch:
    """The batch, if it belongs to `workflow`; another workflow's batch is as good as absent."""
    batch = Batch.objects.select_related("workflow").filter(pk=batch_id, workflow=workflow).first()
    if batch is None:
        raise NotFound(f"no batch {batch_id} for workflow {workflow.slug}", field="batch_id")
    return batch


def batch_summary(*, batch: Batch) -> BatchSummary:
    """Counts by status (every status, zero included) and the stop switch that halts it, if any."""
    counts = dict.fromkeys(ProposalStatus.values, 0)
    for row in batch.proposals.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return BatchSummary(
        batch=batch,
        counts=counts,
        total=sum(counts.values()),
        stop=stop_covering(workflow_id=batch.workflow_id, batch_id=batch.pk),
    )


def proposal_get_for_workflow(*, workflow: Workflow, proposal_id: int) -> Proposal:
    """The proposal, if `workflow` submitted it. Another workflow's proposal is as good as absent."""
    proposal = Proposal.objects.select_related("decided_by").filter(pk=proposal_id, workflow=workflow).first()
    if proposal is None:
        raise NotFound(f"no proposal {proposal_id} for workflow {workflow.slug}", field="proposal_id")
    return proposal


@dataclass(frozen=True)
class RecordContext:
    record_type: str
    record_id: str
    version: int
    fields: dict[str, Any]


class UnreadableFields(NotAllowed):
    """Fields asked for that the workflow may not read; every one is named."""

    def __init__(self, workflow: Workflow, record_type: str, names: list[str]) -> None:
        self.names = names
        listed = ", ".join(f"{record_type}.{name}" for name in names)
        super().__init__(f"workflow {workflow.slug} may not read {listed}", field="fields")

    @property
    def errors(self) -> list[dict[str, str]]:
        return [{"field": "fields", "message": f"may not read {name}"} for name in self.names]


def record_readable_fields(*, workflow: Workflow, record_type: str) -> list[str]:
    """The fields of `record_type` the workflow may read (any policy grants reading), in catalogue order."""
    policies = workflow_policy_map(workflow=workflow)
    return [name for name in RECORD_TYPES[record_type].field_names if (record_type, name) in policies]


def _refuse_switched_off(workflow: Workflow) -> None:
    """A paused or draft workflow's pipeline reads nothing, as intake takes nothing from it."""
    if workflow.stage == Stage.PAUSED:
        raise Locked(f"workflow {workflow.slug} is paused: its pipeline reads no records until a person resumes it")
    if workflow.stage == Stage.DRAFT:
        raise Locked(
            f"workflow {workflow.slug} is still in draft: its pipeline reads records once it moves to shadow, "
            "canary or live"
        )


def record_context_for_workflow(
    *, workflow: Workflow, record_type: str, record_id: str, fields: list[str] | None = None
) -> RecordContext:
    """The record reduced to what `workflow` may read, narrowed to `fields` when given.

    Asking for a field outside the policy is refused naming it; nothing else is ever returned.
    A record type the workflow has no policy on is refused before the record is looked up, so a
    pipeline cannot even learn which records exist there; a paused or draft workflow is refused first.
    """
    _refuse_switched_off(workflow)
    spec = RECORD_TYPES.get(record_type)
    if spec is None:
        raise NotFound(
            f"unknown record type '{record_type[:40]}'; use one of {', '.join(RECORD_TYPES)}", field="record_type"
        )
    readable = record_readable_fields(workflow=workflow, record_type=record_type)
    if not readable:
        raise NotAllowed(f"workflow {workflow.slug} has no access to {record_type} records", field="record_type")
    wanted = readable
    if fields is not None:
        unknown = [name for name in fields if not spec.has_field(name)]
        if unknown or not fields:
            message = (
                f"{record_type} has no field {', '.join(repr(name[:64]) for name in unknown)}"
                if unknown
                else "must name at least one field, separated by commas"
            )
            raise ValidationFailed([("fields", message)])
        unreadable = [name for name in fields if name not in readable]
        if unreadable:
            raise UnreadableFields(workflow, record_type, unreadable)
        wanted = [name for name in readable if name in fields]
    try:
        state = get_store(record_type).fetch(RecordRef(record_type, record_id), fields=wanted)
    except RecordNotFound:
        raise NotFound(f"no {record_type} '{record_id[:64]}'", field="record_id") from None
    return RecordContext(record_type=record_type, record_id=record_id, version=state.version, fields=state.values)
