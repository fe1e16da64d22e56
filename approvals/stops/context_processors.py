import math
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from approvals.applying.selectors import BatchInProgress, batches_in_progress
from approvals.models import Override, StopScope, StopSwitch
from approvals.overrides.selectors import stop_overrides_in_force
from approvals.stops.rights import NO_STOP_RIGHTS, StopRights, stop_rights_for_user
from approvals.stops.selectors import stop_in_sight, stop_list_engaged
from approvals.workflows.rights import Viewer
from core.visibility import scope_for


@dataclass(frozen=True)
class StopLine:
    """One engaged switch as the banner shows it: whether this person may release it, and the
    override that lets its writes pass for now, if one does."""

    switch: StopSwitch
    releasable: bool
    override: Override | None
    seconds_left: int

    @property
    def minutes_left(self) -> int:
        return math.ceil(self.seconds_left / 60)


@dataclass(frozen=True)
class StopChrome:
    """What every page shows of the stop switch: the engaged switches this person may see, what they
    may do, and the batches still writing that they may stop."""

    lines: list[StopLine]
    rights: StopRights
    in_progress: list[BatchInProgress]

    @property
    def engaged(self) -> list[StopSwitch]:
        return [line.switch for line in self.lines]

    @property
    def counting_down(self) -> bool:
        return any(line.override is not None for line in self.lines)


def _chrome(request: HttpRequest) -> StopChrome:
    user = request.user
    if not user.is_authenticated:
        return StopChrome(lines=[], rights=NO_STOP_RIGHTS, in_progress=[])
    engaged = list(stop_list_engaged())
    # What the person may see, and the overrides of a stop, are read only when a stop of some workflow
    # is engaged; everyone sees a global one, and nobody overrides it.
    overrides: dict[int, Override] = {}
    if any(switch.scope != StopScope.GLOBAL for switch in engaged):
        scope = scope_for(user)
        engaged = [switch for switch in engaged if stop_in_sight(switch, scope)]
        # Under the global stop no override lets a write pass.
        if not any(switch.scope == StopScope.GLOBAL for switch in engaged):
            overrides = stop_overrides_in_force(switches=engaged)
    rights = stop_rights_for_user(user=user)
    now = timezone.now()
    lines = []
    for switch in engaged:
        override = overrides.get(switch.pk)
        seconds = override.seconds_left(at=now) if override is not None else 0
        lines.append(StopLine(switch, rights.may_release(switch, at=now), override, seconds))
    return StopChrome(lines=lines, rights=rights, in_progress=_unstopped_batches_in_progress(user, rights, engaged))


def _unstopped_batches_in_progress(
    user: Viewer, rights: StopRights, engaged: list[StopSwitch]
) -> list[BatchInProgress]:
    """The batches this person may stop and see that are writing now; a halted one is named by its
    stop banner."""
    if not rights.any or any(switch.scope == StopScope.GLOBAL for switch in engaged):
        return []
    stopped_workflows = {switch.workflow_id for switch in engaged if switch.scope == StopScope.WORKFLOW}
    stopped_batches = {switch.batch_id for switch in engaged if switch.scope == StopScope.BATCH}
    workflow_ids = None if rights.everything else rights.workflow_ids
    return [
        batch
        for batch in batches_in_progress(workflow_ids=workflow_ids)
        if batch.batch_id not in stopped_batches
        and batch.workflow_id not in stopped_workflows
        and scope_for(user).sees_workflow(batch.workflow_slug)
    ]


def stop_switch(request: HttpRequest) -> dict:
    """`stop_switch` for base.html: read only when a page renders the banner or the Stop control."""
    return {"stop_switch": SimpleLazyObject(lambda: _chrome(request))}
