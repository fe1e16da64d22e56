"""Who may engage and who may release stop switches. The Stop control, the banner, the stop pages and
the services all ask here.

Engaging is quick to grant, because halting writes is always safe: ops managers engage any switch,
a workflow's approvers that workflow's switch and its batches'. Releasing lets writes through
again, so it needs the release right of the switch's scope: for a workflow or batch switch, the
workflow's owner or the group on override duty for it now (the day group in its hours, the
after-hours group outside them); for the global switch, the ops managers. Ops managers, who may
release the switch over everything, may release any narrower one too. A lead may therefore engage
a stop at night that only the group on duty (or the owner) releases. A pipeline halts only its own
batch, and only a person releases a switch.

Only those groups give a right: being staff or a superuser (which opens the admin) gives none.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone

from approvals.models import Batch, StopScope, StopSwitch, Workflow
from approvals.workflows.rights import Viewer, workflows_reviewable_by
from approvals.workflows.schedule import override_duty
from core.errors import NotAllowed


@dataclass(frozen=True)
class StopRights:
    everything: bool  # an ops manager: engages and releases any switch
    workflow_ids: frozenset[int]  # the workflows whose switches (and batches') this person may engage
    user_id: int | None = None
    group_ids: frozenset[int] = frozenset()

    @property
    def any(self) -> bool:
        return self.everything or bool(self.workflow_ids)

    def may_stop(self, *, workflow_id: int | None) -> bool:
        return self.everything or (workflow_id is not None and workflow_id in self.workflow_ids)

    def release_refusal(self, switch: StopSwitch, *, at: datetime | None = None) -> str:
        """Why this person may not release `switch` now; '' when they may. Needs the switch's
        workflow loaded with its override groups (`stops.selectors` loads them)."""
        if self.everything:
            return ""
        if switch.scope == StopScope.GLOBAL:
            return "only an ops manager may release the stop switch for everything"
        workflow = switch.workflow or (switch.batch.workflow if switch.batch is not None else None)
        if workflow is None or self.user_id is None:
            return f"you may not release the stop switch for {switch.label}"
        if workflow.owner_id == self.user_id:
            return ""
        duty = override_duty(workflow=workflow, at=at or timezone.now())
        if duty.group is not None and duty.group.pk in self.group_ids:
            return ""
        on_duty = f"{duty.group.name}, on override duty now" if duty.group is not None else "no group is on duty"
        return (
            f"you may not release the stop switch for {switch.label}: only the owner of workflow "
            f"{workflow.slug} or the group on override duty for it ({on_duty}) may"
        )

    def may_release(self, switch: StopSwitch, *, at: datetime | None = None) -> bool:
        return not self.release_refusal(switch, at=at)

    def check_stop(self, *, scope: str, workflow: Workflow | None, batch: Batch | None) -> None:
        """NotAllowed, naming the field, unless these rights reach the switch asked for."""
        if scope == StopScope.GLOBAL and not self.everything:
            raise NotAllowed("only an ops manager may stop everything", field="scope")
        if scope == StopScope.BATCH and batch is not None:
            workflow = batch.workflow
        if scope != StopScope.GLOBAL and workflow is not None and not self.may_stop(workflow_id=workflow.pk):
            raise NotAllowed(f"you may not stop workflow {workflow.slug}", field="workflow")

    def check_release(self, switch: StopSwitch) -> None:
        if refusal := self.release_refusal(switch):
            raise NotAllowed(refusal)


NO_STOP_RIGHTS = StopRights(everything=False, workflow_ids=frozenset())


def stop_rights_for_user(*, user: Viewer) -> StopRights:
    """Two queries: the person's groups, and (unless an ops manager) the workflows they approve."""
    if not user.is_authenticated or not user.is_active:
        return NO_STOP_RIGHTS
    groups = dict(Group.objects.filter(user=user.pk).values_list("name", "pk"))
    group_ids = frozenset(groups.values())
    user_id = int(user.pk)  # type: ignore[arg-type]
    if settings.COUNTERSIGN["OPS_MANAGER_GROUP"] in groups:
        return StopRights(everything=True, workflow_ids=frozenset(), user_id=user_id, group_ids=group_ids)
    approved = frozenset(workflows_reviewable_by(user=user).values_list("pk", flat=True))
    return StopRights(everything=False, workflow_ids=approved, user_id=user_id, group_ids=group_ids)
