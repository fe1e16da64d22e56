"""Reads about retention: a workflow's rules, what is stored under them, and what was purged."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Min, Sum

from approvals.models import (
    RetentionChange,
    RetentionChangeStatus,
    RetentionRule,
    TrainingCopyRequest,
    TrainingCopyStatus,
    Workflow,
)
from approvals.workflows.retention_rules import retention_waiting_for, shown_window
from approvals.workflows.rights import retention_countersign_refusal, retention_owns_rules, retention_withdraw_refusal
from audit.models import Artifact, ArtifactKind, Bucket, Tombstone
from core.errors import NotFound


def retention_rule_of(*, workflow: Workflow, rule_id: int) -> RetentionRule:
    rule = RetentionRule.objects.filter(workflow=workflow, pk=rule_id).first()
    if rule is None:
        raise NotFound("no such retention rule in this workflow")
    return rule


def artifact_of(*, workflow: Workflow, artifact_id: uuid.UUID) -> Artifact:
    artifact = Artifact.objects.filter(pk=artifact_id, workflow_id=workflow.pk).first()
    if artifact is None:
        raise NotFound("the artifact has expired or was purged; nothing is left to copy")
    return artifact


def retention_change_of(*, workflow: Workflow, change_id: int) -> RetentionChange:
    change = RetentionChange.objects.filter(workflow=workflow, pk=change_id).select_related("proposed_by").first()
    if change is None:
        raise NotFound("no such retention change in this workflow")
    return change


def training_request_of(*, workflow: Workflow, request_id: int) -> TrainingCopyRequest:
    training = TrainingCopyRequest.objects.filter(workflow=workflow, pk=request_id).first()
    if training is None:
        raise NotFound("no such training copy request in this workflow")
    return training


def retention_rule_for(*, workflow: Workflow, kind: str, bucket: str) -> RetentionRule | None:
    return (
        RetentionRule.objects.select_related("owner", "workflow")
        .filter(workflow=workflow, kind=kind, bucket=bucket)
        .first()
    )


@dataclass
class RetentionCell:
    """One artifact kind in one bucket: its rule (if any) and what is stored under it now."""

    kind: str
    kind_label: str
    bucket: str
    bucket_label: str
    rule: RetentionRule | None
    stored: int = 0
    size: int = 0
    next_expiry: datetime | None = None
    pending: "WaitingChange | None" = None


@dataclass
class WaitingChange:
    """A change to one rule waiting for its second owner, and what the person looking may do with it."""

    change: RetentionChange
    waiting_for: str
    may_countersign: bool
    may_withdraw: bool  # its proposer
    may_reject: bool  # the other owner

    @property
    def window_before(self) -> str:
        return shown_window(self.change.window_before)

    @property
    def window_after(self) -> str:
        return shown_window(self.change.window_after)


@dataclass
class RetentionRow:
    kind: str
    label: str
    cells: list[RetentionCell] = field(default_factory=list)


@dataclass
class RetentionOverview:
    workflow: Workflow
    rows: list[RetentionRow]
    buckets: list[tuple[str, str]]
    stored: int
    size: int
    artifacts: list[Artifact]
    tombstones: list[Tombstone]
    pending_training: list[TrainingCopyRequest]
    training_asked_for: set[uuid.UUID]
    waiting: list[WaitingChange] = field(default_factory=list)
    # Whether the person looking owns the rules (and so may propose a change), and whether a second
    # owner is named at all: without one no change can take effect.
    may_propose: bool = False
    co_owner_named: bool = False

    @property
    def training_kinds(self) -> set[str]:
        """The kinds a training copy may be asked for: those whose training rule keeps anything."""
        return {
            cell.kind
            for row in self.rows
            for cell in row.cells
            if cell.bucket == Bucket.TRAINING and cell.rule and cell.rule.window
        }


def _waiting(workflow: Workflow, viewer: Any) -> list[WaitingChange]:
    changes = (
        RetentionChange.objects.filter(workflow=workflow, status=RetentionChangeStatus.PENDING)
        .select_related("proposed_by")
        .order_by("proposed_at", "pk")
    )
    waiting = []
    for change in changes:
        change.workflow = workflow
        proposer = change.proposed_by
        waiting.append(
            WaitingChange(
                change=change,
                waiting_for=retention_waiting_for(workflow=workflow, proposed_by=proposer),
                may_countersign=not retention_countersign_refusal(user=viewer, workflow=workflow, proposed_by=proposer),
                may_withdraw=viewer.pk == proposer.pk,
                may_reject=viewer.pk != proposer.pk
                and not retention_withdraw_refusal(user=viewer, workflow=workflow, proposed_by=proposer),
            )
        )
    return waiting


def retention_overview(
    *, workflow: Workflow, viewer: Any, recent_artifacts: int = 50, recent_tombstones: int = 20
) -> RetentionOverview:
    """Kinds x buckets for one workflow, with what is stored, the changes waiting for their second
    owner and the latest purges. Seven queries, with the workflow's owners already read."""
    waiting = _waiting(workflow, viewer)
    waiting_by_rule = {(item.change.kind, item.change.bucket): item for item in waiting}
    rules = {
        (rule.kind, rule.bucket): rule
        for rule in RetentionRule.objects.filter(workflow=workflow).select_related("owner", "workflow")
    }
    stored: dict[tuple[str, str], dict[str, Any]] = {
        (row["kind"], row["bucket"]): dict(row)
        for row in Artifact.objects.filter(workflow_id=workflow.pk)
        .values("kind", "bucket")
        .annotate(stored=Count("id"), size=Sum("size"), next_expiry=Min("expires_at"))
        .order_by()
    }
    rows = []
    for kind, kind_label in ArtifactKind.choices:
        row = RetentionRow(kind=kind, label=str(kind_label))
        for bucket, bucket_label in Bucket.choices:
            totals = stored.get((kind, bucket), {})
            row.cells.append(
                RetentionCell(
                    kind=kind,
                    kind_label=str(kind_label),
                    bucket=bucket,
                    bucket_label=str(bucket_label),
                    rule=rules.get((kind, bucket)),
                    stored=totals.get("stored", 0),
                    size=totals.get("size") or 0,
                    next_expiry=totals.get("next_expiry"),
                    pending=waiting_by_rule.get((kind, bucket)),
                )
            )
        rows.append(row)
    artifacts = list(
        Artifact.objects.filter(workflow_id=workflow.pk)
        .defer("content")
        .order_by("expires_at", "id")[:recent_artifacts]
    )
    tombstones = list(Tombstone.objects.filter(workflow_slug=workflow.slug).order_by("-id")[:recent_tombstones])
    asked_for = set(
        TrainingCopyRequest.objects.filter(
            workflow=workflow,
            artifact_id__in=[artifact.pk for artifact in artifacts],
            status__in=[TrainingCopyStatus.PENDING, TrainingCopyStatus.APPROVED],
        ).values_list("artifact_id", flat=True)
    )
    pending = list(
        TrainingCopyRequest.objects.filter(workflow=workflow, status=TrainingCopyStatus.PENDING)
        .select_related("requested_by")
        .order_by("requested_at")
    )
    return RetentionOverview(
        workflow=workflow,
        rows=rows,
        buckets=[(value, str(label)) for value, label in Bucket.choices],
        stored=sum(cell.stored for row in rows for cell in row.cells),
        size=sum(cell.size for row in rows for cell in row.cells),
        artifacts=artifacts,
        tombstones=tombstones,
        pending_training=pending,
        training_asked_for=asked_for,
        waiting=waiting,
        may_propose=retention_owns_rules(user=viewer, workflow=workflow),
        co_owner_named=workflow.retention_co_owner_id is not None,
    )
