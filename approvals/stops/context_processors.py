from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from approvals.applying.selectors import BatchInProgress, batches_in_progress
from approvals.models import StopScope, StopSwitch
from approvals.stops.rights import NO_STOP_RIGHTS, StopRights, stop_rights_for_user
from approvals.stops.selectors import stop_in_sight, stop_list_engaged
from approvals.workflows.rights import Viewer
from core.visibility import scope_for


@dataclass(frozen=True)
class StopChrome:
    """What every page shows of the stop switch: the engaged switches this person may see, what they
    may do, and the batches still writing that they may stop."""

    engaged: list[StopSwitch]
    rights: StopRights
    releasable: frozenset[int]
    in_progress: list[BatchInProgress]


def _chrome(request: HttpRequest) -> StopChrome:
    user = request.user
    if not user.is_authenticated:
        return StopChrome(engaged=[], rights=NO_STOP_RIGHTS, releasable=frozenset(), in_progress=[])
    engaged = list(stop_list_engaged())
    # What the person may see is read only when a stop of some workflow is engaged; everyone sees a global one.
    if any(switch.scope != StopScope.GLOBAL for switch in engaged):
        scope = scope_for(user)
        engaged = [switch for switch in engaged if stop_in_sight(switch, scope)]
    rights = stop_rights_for_user(user=user)
    return StopChrome(
        engaged=engaged,
        rights=rights,
        releasable=frozenset(switch.pk for switch in engaged if rights.may_release(switch)),
        in_progress=_unstopped_batches_in_progress(user, rights, engaged),
    )


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
