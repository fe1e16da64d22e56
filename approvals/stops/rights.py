"""Who may engage and release stop switches: ops managers any switch; a workflow's approvers that
workflow's switch and its batches'. A pipeline halts only its own batch, and only a person releases a
switch. The Stop control, the stop pages and the services all ask here.

Only those groups give the right: being staff or a superuser (which opens the admin) gives none.
"""

from dataclasses import dataclass

from approvals.models import Batch, StopScope, StopSwitch, Workflow
from approvals.workflows.rights import Viewer, is_ops_manager, workflows_reviewable_by
from core.errors import NotAllowed


@dataclass(frozen=True)
class StopRights:
    everything: bool
    workflow_ids: frozenset[int]

    @property
    def any(self) -> bool:
        return self.everything or bool(self.workflow_ids)

    def may_stop(self, *, workflow_id: int | None) -> bool:
        return self.everything or (workflow_id is not None and workflow_id in self.workflow_ids)

    def may_release(self, switch: StopSwitch) -> bool:
        if switch.scope == StopScope.GLOBAL:
            return self.everything
        return self.may_stop(workflow_id=switch.workflow_id)

    def check_stop(self, *, scope: str, workflow: Workflow | None, batch: Batch | None) -> None:
        """NotAllowed, naming the field, unless these rights reach the switch asked for."""
        if scope == StopScope.GLOBAL and not self.everything:
            raise NotAllowed("only an ops manager may stop everything", field="scope")
        if scope == StopScope.BATCH and batch is not None:
            workflow = batch.workflow
        if scope != StopScope.GLOBAL and workflow is not None and not self.may_stop(workflow_id=workflow.pk):
            raise NotAllowed(f"you may not stop workflow {workflow.slug}", field="workflow")

    def check_release(self, switch: StopSwitch) -> None:
        if not self.may_release(switch):
            raise NotAllowed(f"you may not release the stop switch for {switch.label}")


NO_STOP_RIGHTS = StopRights(everything=False, workflow_ids=frozenset())


def stop_rights_for_user(*, user: Viewer) -> StopRights:
    if not user.is_authenticated or not user.is_active:
        return NO_STOP_RIGHTS
    if is_ops_manager(user):
        return StopRights(everything=True, workflow_ids=frozenset())
    approved = workflows_reviewable_by(user=user)
    return StopRights(everything=False, workflow_ids=frozenset(approved.values_list("pk", flat=True)))
