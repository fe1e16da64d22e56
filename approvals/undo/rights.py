"""Who may undo: ops managers any change; others the changes of the workflows they were granted to
undo (a workflow's approver group). Being staff or a superuser gives no right to undo. A bulk undo's
progress is also shown to the person who started it, and they may cancel it. The undo pages, the
rollback command and the services all ask here.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from approvals.models import UndoJob
from approvals.workflows.rights import Viewer, is_ops_manager, workflows_undoable_by
from core.errors import NotAllowed
from records.models import Change

NO_WORKFLOW = "(no workflow)"


@dataclass(frozen=True)
class UndoRights:
    everything: bool
    workflow_slugs: frozenset[str]

    @property
    def any(self) -> bool:
        return self.everything or bool(self.workflow_slugs)

    def may_undo(self, *, workflow_slug: str) -> bool:
        return self.everything or (bool(workflow_slug) and workflow_slug in self.workflow_slugs)

    def refused(self, workflow_slugs: Iterable[str]) -> list[str]:
        """Of these workflows (a change with none is named "(no workflow)"), those not undoable."""
        return sorted({slug or NO_WORKFLOW for slug in workflow_slugs if not self.may_undo(workflow_slug=slug)})

    def check_undo(self, workflow_slugs: Iterable[str]) -> None:
        """NotAllowed, naming the workflows, unless every one of them may be undone."""
        if refused := self.refused(workflow_slugs):
            raise NotAllowed(f"you may not undo changes of {', '.join(refused)}", field="workflow")

    def check_cancel(self, *, job: UndoJob, user: Viewer) -> None:
        """Its starter may cancel a bulk undo; anyone else needs the right to undo every workflow it touches."""
        if job.requested_by_id == user.pk:
            return
        touched = Change.objects.filter(pk__in=job.items.values("change_id")).values_list("workflow_slug", flat=True)
        self.check_undo(set(touched))

    def may_follow(self, *, job: UndoJob, user: Viewer) -> bool:
        """May see a bulk undo's progress (and ask to cancel it): its starter, or anyone who may undo its workflow."""
        if self.everything or job.requested_by_id == user.pk:
            return True
        return job.workflow is not None and self.may_undo(workflow_slug=job.workflow.slug)


NO_UNDO_RIGHTS = UndoRights(everything=False, workflow_slugs=frozenset())


def undo_rights_for_user(*, user: Viewer) -> UndoRights:
    if not user.is_authenticated or not user.is_active:
        return NO_UNDO_RIGHTS
    if is_ops_manager(user):
        return UndoRights(everything=True, workflow_slugs=frozenset())
    granted = workflows_undoable_by(user=user)
    return UndoRights(everything=False, workflow_slugs=frozenset(granted.values_list("slug", flat=True)))
