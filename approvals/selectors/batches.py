"""Reads of batches for the pipeline that opened them."""

from dataclasses import dataclass

from django.db.models import Count, Q

from approvals.models import Batch, Proposal, ProposalStatus, Stage, StopSwitch, Workflow
from approvals.selectors.applying import APPLYING_STAGES, CANARY_CAP_REASON, canary_workflows_capped
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


@dataclass(frozen=True)
class BatchInProgress:
    """A batch with approved writes still to apply, as the banner names it; `held` says why none is
    being written now (the canary cap), and is empty while it writes."""

    batch_id: int
    name: str
    workflow_id: int
    workflow_slug: str
    written: int
    waiting: int
    held: str = ""


def batches_in_progress(*, workflow_ids: frozenset[int] | None, limit: int = 5) -> list[BatchInProgress]:
    """Batches (of these workflows; None means every workflow) whose approved proposals are being applied.

    Only canary and live workflows write; a batch of a shadow, draft or paused one is not in progress.
    One query, and one more when a canary workflow is among them: the approved rows find the batches
    (index on status), and only those batches' rows are counted (index on batch and status), however
    many finished batches the table holds.
    """
    approved = Proposal.objects.filter(
        status=ProposalStatus.APPROVED, batch__isnull=False, workflow__stage__in=APPLYING_STAGES
    )
    if workflow_ids is not None:
        approved = approved.filter(workflow_id__in=workflow_ids)
    rows = list(
        Batch.objects.filter(pk__in=approved.values("batch_id"))
        .annotate(
            waiting=Count("proposals", filter=Q(proposals__status=ProposalStatus.APPROVED)),
            written=Count("proposals", filter=Q(proposals__status=ProposalStatus.APPLIED)),
        )
        .values_list(
            "pk",
            "name",
            "workflow_id",
            "workflow__slug",
            "written",
            "waiting",
            "workflow__stage",
            "workflow__canary_daily_limit",
        )
        .order_by("pk")[:limit]
    )
    capped = canary_workflows_capped(limits={row[3]: row[7] for row in rows if row[6] == Stage.CANARY})
    return [
        BatchInProgress(
            batch_id,
            name,
            workflow_id,
            slug,
            written,
            waiting,
            held=CANARY_CAP_REASON if slug in capped else "",
        )
        for batch_id, name, workflow_id, slug, written, waiting, _, _ in rows
    ]
