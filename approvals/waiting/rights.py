"""Who may discard a batch: the people who may decide its workflow's proposals (its approver
group). A pipeline may discard a batch of its own workflow (`discard.batch_discard_by_pipeline`)."""

from approvals.models import Batch
from approvals.workflows.rights import Viewer, workflows_reviewable_by


def discard_refusal(*, user: Viewer, batch: Batch) -> str:
    """Why `user` may not discard `batch` (its workflow read), or "" when they may."""
    if workflows_reviewable_by(user=user).filter(pk=batch.workflow_id).exists():
        return ""
    group = batch.workflow.approver_group.name if batch.workflow.approver_group else "its approver group"
    return f"only those who decide the proposals of {batch.workflow.slug} ({group}) may discard its batches"
