"""Reads about undoing: which changes a bulk undo covers, its dry run, and what one change's undo does."""

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db.models import Count, Max, QuerySet

from approvals.applying.followups import NOT_RETRACTABLE
from approvals.models import Batch, FollowUp, FollowUpStatus, Proposal, RollbackDrill, UndoJob, UndoScope, Workflow
from approvals.models.undo import DRILL_WORKFLOW
from approvals.undo.rights import UndoRights, undo_rights_for_user
from approvals.workflows.rights import Viewer
from core.confirmations import Confirmation
from core.errors import NotFound
from core.visibility import ViewerScope, scope_for
from records.models import Change, ChangeAction
from records.selectors import changes_undone
from records.services.revert import RevertOutcome, RevertResult, RevertWorkspace, changes_revert_preview
from records.store import store_side_effects

PREVIEW_CHUNK = 500


@dataclass(frozen=True)
class UndoSelection:
    """What a bulk undo covers: a batch, a workflow's changes since a time, or one prompt version.

    `in_sight`, when given, narrows it to the changes of those workflows: a person undoes, and sees
    in the dry run, only the changes of the workflows they may see."""

    scope: str
    batch: Batch | None = None
    workflow: Workflow | None = None
    since: datetime | None = None
    until: datetime | None = None
    prompt_version: str = ""
    in_sight: frozenset[str] | None = None

    def describe(self) -> str:
        window = f" until {self.until:%Y-%m-%d %H:%M} UTC" if self.until else ""
        if self.scope == UndoScope.BATCH and self.batch is not None:
            return f"batch {self.batch.pk} ({self.batch.name})"
        if self.scope == UndoScope.WORKFLOW and self.workflow is not None and self.since is not None:
            return f"workflow {self.workflow.slug} since {self.since:%Y-%m-%d %H:%M} UTC{window}"
        since = f" since {self.since:%Y-%m-%d %H:%M} UTC" if self.since else ""
        return f"prompt version {self.prompt_version}{since}{window}"


def undo_selection_changes(*, selection: UndoSelection) -> QuerySet[Change]:
    """Every change the selection names (undos themselves excluded), newest first."""
    changes = Change.objects.exclude(action=ChangeAction.REVERT)
    if selection.scope == UndoScope.BATCH and selection.batch is not None:
        changes = changes.filter(batch_id=selection.batch.pk)
    elif selection.scope == UndoScope.WORKFLOW and selection.workflow is not None and selection.since is not None:
        changes = changes.filter(workflow_slug=selection.workflow.slug, applied_at__gte=selection.since)
    elif selection.scope == UndoScope.PROMPT_VERSION and selection.prompt_version:
        changes = changes.filter(prompt_version=selection.prompt_version)
        if selection.since is not None:
            changes = changes.filter(applied_at__gte=selection.since)
    else:
        return Change.objects.none()
    if selection.until is not None:
        changes = changes.filter(applied_at__lte=selection.until)
    if selection.in_sight is not None:
        changes = changes.filter(workflow_slug__in=sorted(selection.in_sight))
    return changes.order_by("-applied_at", "-version_after")


@dataclass(frozen=True)
class UndoCandidates:
    changes: list[Change]
    already_undone: int


def undo_candidates(*, selection: UndoSelection, ids_only: bool = False) -> UndoCandidates:
    """The selection's changes still in force, newest first (the order they are undone in).

    With `ids_only`, each change comes with its id, record and workflow only (enough to plan a job).
    """
    selected = undo_selection_changes(selection=selection)
    touched = Change.objects.filter(action=ChangeAction.REVERT, reverts__in=selected.values("pk"))
    undone = set(changes_undone(change_ids=touched.values_list("reverts_id", flat=True).distinct()))
    if ids_only:
        selected = selected.only("id", "record_type", "record_id", "workflow_slug")
    changes = [change for change in selected if change.id not in undone]
    return UndoCandidates(changes=changes, already_undone=len(undone))


@dataclass(frozen=True)
class FollowUpsAffected:
    """What undoing some changes does to their follow-ups."""

    to_cancel: list[FollowUp] = field(default_factory=list)
    not_retractable: list[FollowUp] = field(default_factory=list)


def followups_affected(*, change_ids: list) -> FollowUpsAffected:
    """Held follow-ups an undo cancels, and those already sending or sent (they cannot be retracted)."""
    rows: list[FollowUp] = []
    for start in range(0, len(change_ids), PREVIEW_CHUNK):
        rows.extend(
            FollowUp.objects.select_related("proposal")
            .filter(change_id__in=change_ids[start : start + PREVIEW_CHUNK])
            .order_by("change_id", "position")
        )
    return FollowUpsAffected(
        to_cancel=[row for row in rows if row.status == FollowUpStatus.HELD],
        not_retractable=[row for row in rows if row.status in NOT_RETRACTABLE],
    )


@dataclass
class UndoPlan:
    """A dry run: how many changes would be undone, which would conflict, and which follow-ups are affected."""

    selection: UndoSelection
    changes: list[Change]
    already_undone: int
    results: list[RevertResult]
    followups: FollowUpsAffected
    workflow_slugs: list[str]

    @property
    def total(self) -> int:
        return len(self.changes)

    @property
    def conflicts(self) -> list[RevertResult]:
        return [r for r in self.results if r.outcome in (RevertOutcome.CONFLICT, RevertOutcome.MISSING)]

    @property
    def would_revert(self) -> int:
        return sum(1 for r in self.results if r.outcome == RevertOutcome.REVERTED)


def undo_plan(*, selection: UndoSelection) -> UndoPlan:
    """The dry run of a bulk undo: every change simulated in order, newest first; nothing written or locked."""
    candidates = undo_candidates(selection=selection)
    workspace = RevertWorkspace(dry_run=True)
    results: list[RevertResult] = []
    for start in range(0, len(candidates.changes), PREVIEW_CHUNK):
        results.extend(
            changes_revert_preview(changes=candidates.changes[start : start + PREVIEW_CHUNK], workspace=workspace)
        )
    return UndoPlan(
        selection=selection,
        changes=candidates.changes,
        already_undone=candidates.already_undone,
        results=results,
        followups=followups_affected(change_ids=[change.id for change in candidates.changes]),
        workflow_slugs=sorted({change.workflow_slug for change in candidates.changes}),
    )


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def undo_confirmation(*, plan: UndoPlan) -> Confirmation:
    """The question starting a bulk undo asks first: how many changes, of what, and what is left."""
    selection = plan.selection
    where = "in" if selection.scope == UndoScope.BATCH else "of"
    left = []
    if conflicts := len(plan.conflicts):
        left.append(
            f"{_counted(conflicts, 'record')} changed since: left as {'it is' if conflicts == 1 else 'they are'}"
        )
    if sent := len(plan.followups.not_retractable):
        left.append(f"{_counted(sent, 'follow-up')} already sent cannot be retracted")
    return Confirmation(
        question=f"Undo {_counted(plan.total, 'change')} {where} {selection.describe()}?",
        detail="; ".join(left) + "." if left else "Each record gets back what the change replaced.",
        verb=f"Undo {_counted(plan.total, 'change')}",
        answer=str(plan.total),
    )


def undo_confirmed(*, selection: UndoSelection, answer: str | None) -> bool:
    """Whether `answer` confirms undoing as many changes as the selection still holds."""
    return answer == str(len(undo_candidates(selection=selection, ids_only=True).changes))


@dataclass
class ChangeUndoView:
    """What the undo page of one change shows."""

    change: Change
    preview: RevertResult
    proposal: Proposal | None
    undone_by: Change | None
    reverts: Change | None
    followups: list[FollowUp]
    may_undo: bool
    side_effects: list[str] = field(default_factory=list)  # what the system of record does on this undo's writes

    @property
    def can_undo(self) -> bool:
        """Something can be undone without overwriting a later change."""
        parts = self.preview.parts
        blocked = any(part.conflict and part.required for part in parts)
        return self.preview.outcome != "missing" and not blocked and any(not part.conflict for part in parts)


def change_for_viewer(*, change_id: UUID, scope: ViewerScope) -> Change:
    """The change, if `scope` sees its workflow; NotFound otherwise, as if there were none."""
    change = Change.objects.filter(pk=change_id).first()
    if change is None or not scope.sees_workflow(change.workflow_slug):
        raise NotFound(f"no change {change_id} that you may see")
    return change


def change_undo_view(*, change: Change, rights: UndoRights) -> ChangeUndoView:
    """The change, what undoing it would do now (parts, conflicts), its follow-ups and who may undo it."""
    [preview] = changes_revert_preview(changes=[change])
    undone_by = None
    if preview.undone_by is not None:
        undone_by = Change.objects.filter(pk=preview.undone_by).first()
    root = change
    while root.action == ChangeAction.REVERT and root.reverts_id is not None:
        root = Change.objects.get(pk=root.reverts_id)
    proposal = None
    if root.proposal_id is not None:
        proposal = Proposal.objects.select_related("workflow", "batch").filter(pk=root.proposal_id).first()
    return ChangeUndoView(
        change=change,
        preview=preview,
        proposal=proposal,
        undone_by=undone_by,
        reverts=Change.objects.filter(pk=change.reverts_id).first() if change.reverts_id else None,
        followups=list(FollowUp.objects.filter(change_id=root.id).order_by("position")),
        may_undo=rights.may_undo(workflow_slug=change.workflow_slug),
        side_effects=_side_effects(preview),
    )


def _side_effects(preview: RevertResult) -> list[str]:
    """What the systems of record do themselves when the undo writes its fields back."""
    declared = {t: store_side_effects(record_type=t) for t in {part.record.record_type for part in preview.parts}}
    return sorted(
        {
            declared[part.record.record_type][part.field].sentence
            for part in preview.parts
            if part.field in declared[part.record.record_type]
        }
    )


RECENT_BATCHES = 8


@dataclass(frozen=True)
class RecentBatch:
    batch: Batch
    changes: int  # the changes it wrote (undos of them not counted)
    last_applied_at: datetime


def recent_batches_to_undo(*, rights: UndoRights, scope: ViewerScope, limit: int = RECENT_BATCHES) -> list[RecentBatch]:
    """The batches whose changes this person may undo and see, the one written to most recently
    first, each with the number of changes it wrote: what the bulk undo form offers to pick. Two
    queries."""
    written = Change.objects.exclude(action=ChangeAction.REVERT).filter(batch_id__isnull=False)
    if not rights.everything:
        written = written.filter(workflow_slug__in=sorted(rights.workflow_slugs))
    if not scope.everything:
        written = written.filter(workflow_slug__in=sorted(scope.workflow_slugs))
    rows = list(
        written.order_by()
        .values("batch_id")
        .annotate(changes=Count("id"), last=Max("applied_at"))
        .order_by("-last", "-batch_id")[:limit]
    )
    batches = Batch.objects.select_related("workflow").in_bulk([row["batch_id"] for row in rows])
    return [
        RecentBatch(batches[row["batch_id"]], row["changes"], row["last"]) for row in rows if row["batch_id"] in batches
    ]


def undo_job_for_viewer(*, job_id: int, user: Viewer) -> UndoJob:
    """A bulk undo, for its starter or someone who may undo its workflow, and only while they see every
    workflow whose changes it covers. NotFound otherwise, as if there were none."""
    job = UndoJob.objects.select_related("workflow", "batch", "stop").filter(pk=job_id).first()
    if job is None or not undo_rights_for_user(user=user).may_follow(job=job, user=user):
        raise NotFound(f"no undo job {job_id} that you may see")
    scope = scope_for(user)
    if job.workflow is not None:
        covered = {job.workflow.slug}
    else:
        covered = set(
            Change.objects.filter(pk__in=job.items.values("change_id")).values_list("workflow_slug", flat=True)
        )
    if not all(scope.sees_workflow(slug) for slug in covered):
        raise NotFound(f"no undo job {job_id} that you may see")
    return job


def workflow_undo_context(*, user: Viewer, workflows: list[Workflow]) -> dict:
    """For the workflows page: the workflows this person may undo changes of, and the last rollback drill
    of a workflow on the page (or of the drill's own throwaway workflow)."""
    rights = undo_rights_for_user(user=user)
    shown = [w.slug for w in workflows] + [DRILL_WORKFLOW]
    return {
        "undoable_workflows": [w for w in workflows if rights.may_undo(workflow_slug=w.slug)],
        "may_undo_anything": rights.any,
        "last_drill": RollbackDrill.objects.filter(workflow_slug__in=shown).order_by("-started_at").first(),
    }
