"""Reads of batches for the pipeline that opened them."""

from dataclasses import dataclass

from django.db.models import Count

from approvals.models import Batch, ProposalStatus, StopSwitch, Workflow
from approvals.selectors.stops import stop_covering
from core.errors import NotFound


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
